import sharp from 'sharp';
import type { TransformOptions } from '../store/job-store.js';
import { ImageError } from './image-error.js';

export const EXTENSIONS = { jpeg: 'jpg', webp: 'webp', avif: 'avif', png: 'png' } as const;

/**
 * Re-encodes an image: orientation from EXIF applied, metadata stripped, fit inside the
 * requested box without enlarging, alpha kept where the output format has it and
 * flattened onto white where it does not. The input's type has been checked already
 * (image-type.ts); decoding errors surface from toBuffer.
 */
export async function transformImage(
  input: Buffer,
  options: TransformOptions,
  maxPixels: number,
): Promise<Buffer> {
  const source = sharp(input, { limitInputPixels: maxPixels, failOn: 'error' });
  let pipeline = source.rotate();
  if (options.maxWidth !== null || options.maxHeight !== null) {
    pipeline = pipeline.resize({
      width: options.maxWidth ?? undefined,
      height: options.maxHeight ?? undefined,
      fit: 'inside',
      withoutEnlargement: true,
    });
  }
  const quality = options.quality;
  switch (options.format) {
    case 'jpeg':
      pipeline = pipeline.flatten({ background: '#ffffff' }).jpeg({ quality });
      break;
    case 'webp':
      pipeline = pipeline.webp({ quality });
      break;
    case 'avif':
      pipeline = pipeline.avif({ quality });
      break;
    case 'png':
      pipeline = pipeline.png({ quality, compressionLevel: 9, palette: quality < 100 });
      break;
  }
  try {
    return await pipeline.toBuffer();
  } catch (err) {
    throw decodeError(err);
  }
}

function decodeError(err: unknown): ImageError {
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(message)) {
    return new ImageError('too_large', 'image has too many pixels (MAX_IMAGE_PIXELS)');
  }
  if (/unsupported image format/i.test(message)) return new ImageError('not_image', 'not an image');
  // libvips keeps its error text per thread; under concurrency sharp sometimes gets only
  // "Unknown error" back, which tells the user nothing.
  const detail = message.split('\n')[0]?.trim();
  if (!detail || /^unknown error$/i.test(detail)) {
    return new ImageError('decode', 'image could not be decoded (corrupt or truncated data)');
  }
  return new ImageError('decode', `image could not be decoded: ${detail}`);
}
