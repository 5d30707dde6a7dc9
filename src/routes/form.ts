import type { Multipart } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';

/** A multipart body the parser could not read: the client's doing, answered with 400. */
export class MalformedUpload extends Error {}

/**
 * The next multipart part. The parser's own errors (a missing boundary, a body cut off,
 * a second file) are the client's doing: they become a 400 that says what was wrong.
 * `file` names what the one file should be. A file over its size limit is not an error
 * here: the parser ends it early and marks it truncated, which the route answers.
 */
export async function nextPart(
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

/** The origin the client reached us at, for URLs handed back when PUBLIC_BASE_URL is unset. */
export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
