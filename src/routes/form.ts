import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A multipart body the parser could not read: the client's doing, answered with 400. */
export class MalformedUpload extends Error {}

/**
 * The next multipart part. The parser's own errors (a missing boundary, a body cut off,
 * a second file) are the client's doing: they become a 400 that says what was wrong.
 * `file` names what the one file should be. A file over its size limit is not an error
 * here: the parser ends it early and marks it truncated, which the route answers.
 */
async function nextPart(
  parts: AsyncIterableIterator<Multipart>,
  file: string,
): Promise<IteratorResult<Multipart>> {
  try {
    return await parts.next();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'FST_FILES_LIMIT') throw new MalformedUpload(`Send exactly one ${file}`);
    throw new MalformedUpload(`Malformed multipart/form-data body: ${e.message ?? String(err)}`);
  }
}

export interface Form<T> {
  fields: Record<string, string>;
  /** What `onFile` made of the one file; null when the form had none. */
  file: T | null;
  /** The client's name for the file. */
  filename: string | null;
  /** The file went past the parser's size limit and was cut short. */
  truncated: boolean;
}

/**
 * Reads a multipart form as it streams: the fields, and the one file through `onFile`
 * (fields may come before or after it). When reading fails, what `onFile` made is handed to
 * `discard` and the connection is closed after the answer: the rest of the body is never
 * read, and a kept-alive connection would wait for it (a shutdown then took ~70 s).
 * `file` names what the one file should be, for the error when there are more.
 */
export async function readForm<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  options: {
    file: string;
    limits?: { fileSize: number };
    onFile: (part: MultipartFile) => Promise<T>;
    discard: (made: T) => Promise<void>;
  },
): Promise<Form<T>> {
  const form: Form<T> = { fields: {}, file: null, filename: null, truncated: false };
  const parts = request.parts(options.limits ? { limits: options.limits } : undefined);
  try {
    for (;;) {
      const next = await nextPart(parts, options.file);
      if (next.done) break;
      const part = next.value;
      if (part.type === 'field') {
        form.fields[part.fieldname] = String(part.value);
        continue;
      }
      form.filename = part.filename;
      form.file = await options.onFile(part);
      // At the size limit the parser ends the file early and marks it truncated.
      form.truncated = part.file.truncated;
      if (form.truncated) break;
    }
  } catch (err) {
    if (form.file !== null) await options.discard(form.file);
    reply.header('connection', 'close');
    throw err;
  }
  if (form.truncated) reply.header('connection', 'close');
  return form;
}

/** The answer to a request that is not multipart/form-data, or has no file in it. */
export function noFile(reply: FastifyReply, error: string, message: string): FastifyReply {
  return reply.code(400).send({ error, details: [{ row: null, column: 'file', message }] });
}

export const NOT_MULTIPART = 'request is not multipart/form-data';

/** The origin the client reached us at, for URLs handed back when PUBLIC_BASE_URL is unset. */
export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
