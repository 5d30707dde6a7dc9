import sharp, { type Sharp } from 'sharp';
import type { TransformOptions } from '../store/job-store.js';
import { ImageError } from './image-error.js';

// libvips caches recent operations (sharp's default: up to 100 of them, 50 MB) so that a
// repeated one can be answered from memory. Every image here is a new input, so the cache
// never answers; it only holds memory and costs a lookup per operation. Measured on the
// benchmark's 900-image job: peak RSS 328 vs 339 MB, and CPU per image 36.9/39.5 vs
// 39.4/41.1 ms (two interleaved pairs).
sharp.cache(false);

export const EXTENSIONS = { jpeg: 'jpg', webp: 'webp', avif: 'avif', png: 'png' } as const;
export const CONTENT_TYPES = {
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
  png: 'image/png',
} as const;

export interface Transformed {
  /** The main output, encoded. */
  output: Buffer;
  /** The main output's size. */
  width: number;
  height: number;
  /** One encoded variant per `options.thumbnails` entry, in that order. */
  thumbnails: Array<{ name: string; bytes: Buffer }>;
  /** The input's size as stored, before its EXIF orientation is applied. */
  inputWidth: number;
  inputHeight: number;
  /** The input's EXIF orientation (1–8), null when it has none. */
  orientation: number | null;
  /** Whether the pixels were turned or mirrored upright (orientation 2–8). */
  rotated: boolean;
}

/**
 * Re-encodes an image: orientation from EXIF applied, metadata stripped, fit inside the
 * requested box without enlarging, alpha kept where the output format has it and
 * flattened onto white where it does not; then its thumbnails, the same way. The input's
 * type has been checked already (image-type.ts); decoding errors surface from toBuffer.
 *
 * The steps run one after another, so an image in flight holds one threadpool thread at
 * a time and the threads main.cts reserves stay free for file writes and lookups.
 */
export async function transformImage(
  input: Buffer,
  options: TransformOptions,
  maxPixels: number,
): Promise<Transformed> {
  const open = () => sharp(input, { limitInputPixels: maxPixels, failOn: 'error' });
  try {
    const main = await encode(
      fitInside(open().rotate(), options.maxWidth, options.maxHeight),
      options,
    ).toBuffer({ resolveWithObject: true });
    const thumbnails = await makeThumbnails(open, options);
    // sharp reports the output's size but not the input's; this reads the header only
    // (no decode): about 0.3 ms of CPU per image against ~30 ms for the encode above.
    const header = await open().metadata();
    const orientation = header.orientation ?? null;
    return {
      output: main.data,
      width: main.info.width,
      height: main.info.height,
      thumbnails,
      inputWidth: header.width,
      inputHeight: header.height,
      orientation,
      rotated: orientation !== null && orientation > 1,
    };
  } catch (err) {
    throw decodeError(err);
  }
}

/**
 * Every variant comes from one decode: the image, upright and fit inside the largest box
 * asked for, is kept as raw pixels (at most MAX_THUMBNAIL_DIMENSION² of them), and each
 * variant is resized from that and encoded. Fitting inside a smaller box from the larger
 * fit gives the same size as fitting the original, since both keep the aspect ratio.
 *
 * A box is first cut down to max_width × max_height, so that no thumbnail is larger than
 * the main output: fitting the original inside the smaller of the two boxes gives what
 * fitting the main output inside the thumbnail's box would.
 */
async function makeThumbnails(
  open: () => Sharp,
  options: TransformOptions,
): Promise<Transformed['thumbnails']> {
  if (options.thumbnails.length === 0) return [];
  const boxes = options.thumbnails.map((spec) => ({
    name: spec.name,
    width: Math.min(spec.width, options.maxWidth ?? spec.width),
    height: Math.min(spec.height, options.maxHeight ?? spec.height),
  }));
  const width = Math.max(...boxes.map((box) => box.width));
  const height = Math.max(...boxes.map((box) => box.height));
  const { data, info } = await fitInside(open().rotate(), width, height)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const thumbnails: Transformed['thumbnails'] = [];
  for (const box of boxes) {
    const resized = fitInside(sharp(data, raw), box.width, box.height);
    thumbnails.push({ name: box.name, bytes: await encode(resized, options).toBuffer() });
  }
  return thumbnails;
}

function fitInside(image: Sharp, width: number | null, height: number | null): Sharp {
  if (width === null && height === null) return image;
  return image.resize({
    width: width ?? undefined,
    height: height ?? undefined,
    fit: 'inside',
    withoutEnlargement: true,
  });
}

function encode(image: Sharp, options: TransformOptions): Sharp {
  const quality = options.quality;
  switch (options.format) {
    case 'jpeg':
      return image.flatten({ background: '#ffffff' }).jpeg({ quality });
    case 'webp':
      return image.webp({ quality });
    case 'avif':
      return image.avif({ quality });
    case 'png':
      return image.png({ quality, compressionLevel: 9, palette: quality < 100 });
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
