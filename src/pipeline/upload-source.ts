import fs from 'node:fs/promises';
import path from 'node:path';
import { ImageError } from './image-error.js';

/**
 * A directly uploaded image is saved under the uploads directory, named by its job's id,
 * and its image record points at it with an `upload:<request id>` URL. The scheme cannot
 * come from a CSV (only http and https URLs are accepted there), and the id is checked to
 * be a UUID before it becomes a path, so the record can only ever name a file in that one
 * directory.
 */
const SCHEME = 'upload:';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const uploadUrl = (requestId: string): string => `${SCHEME}${requestId}`;

export const isUploadUrl = (url: string): boolean => url.startsWith(SCHEME);

/** The saved file of a direct upload. */
export function uploadFile(uploadsDir: string, requestId: string): string {
  if (!UUID.test(requestId)) throw new ImageError('refused', 'malformed upload reference');
  return path.join(uploadsDir, requestId);
}

/** The fetch stage of a direct upload: the saved bytes, within the same cap as a download. */
export async function readUpload(
  uploadsDir: string,
  url: string,
  maxBytes: number,
): Promise<Buffer> {
  const file = uploadFile(uploadsDir, url.slice(SCHEME.length));
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ImageError('storage', 'the uploaded file is no longer stored');
    }
    throw err;
  }
  if (bytes.length > maxBytes) {
    throw new ImageError(
      'too_large',
      `image is ${bytes.length} bytes, over the ${maxBytes}-byte limit`,
    );
  }
  return bytes;
}
