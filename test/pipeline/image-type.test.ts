import sharp from 'sharp';
import t from 'tap';
import { ImageError } from '../../src/pipeline/image-error.js';
import { checkImageType, detectImageType } from '../../src/pipeline/image-type.js';
import { makeJpeg } from '../helpers/images.js';

t.test('names every decodable format as libvips does, from real encoder output', async (t) => {
  const jpeg = await makeJpeg(40, 30);
  const source = () => sharp(jpeg);
  const samples = {
    jpeg,
    png: await source().png().toBuffer(),
    gif: await source().gif().toBuffer(),
    webp: await source().webp().toBuffer(),
    tiff: await source().tiff().toBuffer(),
    avif: await source().avif().toBuffer(),
  };
  for (const [expected, bytes] of Object.entries(samples)) {
    t.equal(detectImageType(bytes), expected, expected);
    // sharp reports AVIF as its container, HEIF.
    const libvips = (await sharp(bytes).metadata()).format;
    t.equal(libvips, expected === 'avif' ? 'heif' : expected, `libvips agrees on ${expected}`);
    t.equal(checkImageType(bytes), expected);
  }
  const bigEndianTiff = Buffer.concat([Buffer.from('MM\0*'), Buffer.alloc(8)]);
  t.equal(detectImageType(bigEndianTiff), 'tiff', 'big-endian TIFF');
});

t.test('refuses what is not an image, naming SVG and PDF', async (t) => {
  const svg = '<?xml version="1.0"?>\n<!-- a logo -->\n<svg xmlns="http://www.w3.org/2000/svg"/>';
  const cases: Array<[string, Buffer, string]> = [
    ['SVG with XML prolog', Buffer.from(svg), 'not a supported image (svg)'],
    ['SVG with a BOM', Buffer.from(`\uFEFF  <svg width="1"></svg>`), 'not a supported image (svg)'],
    ['PDF', Buffer.from('%PDF-1.7\n'), 'not a supported image (pdf)'],
    ['HTML page', Buffer.from('<!doctype html><html><body>404</body></html>'), 'not an image'],
    ['JSON', Buffer.from('{"error":"nope"}'), 'not an image'],
    ['empty body', Buffer.alloc(0), 'not an image'],
    ['two bytes of a JPEG', Buffer.from([0xff, 0xd8]), 'not an image'],
    ['RIFF that is not WebP', Buffer.from('RIFF\0\0\0\0WAVEfmt '), 'not an image'],
    ['ISO media that is not HEIF', Buffer.from('\0\0\0\x18ftypmp42\0\0\0\0'), 'not an image'],
  ];
  for (const [name, bytes, message] of cases) {
    t.throws(() => checkImageType(bytes), new ImageError('not_image', message), name);
  }
});
