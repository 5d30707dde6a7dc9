import { ImageError } from './image-error.js';

/** Formats the pipeline decodes; libvips would take more (SVG, PDF…), which we refuse. */
export type DecodableType = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'avif' | 'heif';

const ascii = (bytes: Buffer, start: number, end: number): string =>
  bytes.toString('latin1', start, end);

const HEIF_BRANDS: Record<string, DecodableType> = {
  avif: 'avif',
  avis: 'avif',
  heic: 'heif',
  heix: 'heif',
  hevc: 'heif',
  hevx: 'heif',
  heim: 'heif',
  heis: 'heif',
  mif1: 'heif',
  msf1: 'heif',
};

/**
 * Names an image's format from its first bytes, as libvips will when it picks a loader,
 * without a trip to the threadpool; `svg` and `pdf` are named so that their refusal can
 * say what they were. Null: not an image format we know.
 */
export function detectImageType(bytes: Buffer): DecodableType | 'svg' | 'pdf' | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return 'jpeg';
  }
  if (ascii(bytes, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (/^GIF8[79]a$/.test(ascii(bytes, 0, 6))) return 'gif';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  const tiff = ascii(bytes, 0, 4);
  if (tiff === 'II*\0' || tiff === 'MM\0*') return 'tiff';
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const brand = HEIF_BRANDS[ascii(bytes, 8, 12)];
    if (brand !== undefined) return brand;
  }
  if (ascii(bytes, 0, 5) === '%PDF-') return 'pdf';
  const head = ascii(bytes, 0, 512)
    .replace(/^\xEF\xBB\xBF/, '')
    .trimStart();
  if (head.startsWith('<') && /<svg[\s>]/i.test(head)) return 'svg';
  return null;
}

/** The check stage: refuses what the pipeline will not decode, naming what it was. */
export function checkImageType(bytes: Buffer): DecodableType {
  const type = detectImageType(bytes);
  if (type === null) throw new ImageError('not_image', 'not an image');
  if (type === 'svg' || type === 'pdf') {
    throw new ImageError('not_image', `not a supported image (${type})`);
  }
  return type;
}
