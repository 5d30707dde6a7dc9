import sharp, { type Sharp } from 'sharp';

// Integer hash PRNG (mulberry32-style) so fixtures are byte-identical across runs and machines.
function makeRng(seed: number): () => number {
  let state = (seed * 0x9e3779b9) >>> 0 || 0x6d2b79f5;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function clampByte(value: number): number {
  return value < 0 ? 0 : value > 255 ? 255 : value | 0;
}

/**
 * Smooth gradients and low-frequency waves give the encoder real structure to work with, and the
 * per-pixel noise keeps files from collapsing to a few hundred bytes, so compression ratios in
 * tests resemble those of real product photos.
 */
function photoPixels(width: number, height: number, seed: number, channels: 3 | 4): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid image size ${width}x${height}`);
  }
  const rng = makeRng(seed);
  const phase = (rng() % 1000) / 159;
  const freqX = 2 + (rng() % 5);
  const freqY = 2 + (rng() % 4);

  // Per-row and per-column tables keep the inner loop free of trig calls.
  const colWave = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    colWave[x] = Math.sin((x / width) * Math.PI * freqX + phase) * 40;
  }
  const rowWave = new Float32Array(height);
  for (let y = 0; y < height; y++) {
    rowWave[y] = Math.cos((y / height) * Math.PI * freqY - phase) * 40;
  }

  const out = Buffer.allocUnsafe(width * height * channels);
  let i = 0;
  for (let y = 0; y < height; y++) {
    const gy = (y / height) * 120;
    const wy = rowWave[y] ?? 0;
    for (let x = 0; x < width; x++) {
      const gx = (x / width) * 120;
      const wx = colWave[x] ?? 0;
      const noise = rng();
      const n0 = (noise & 0x1f) - 16;
      const n1 = ((noise >>> 5) & 0x1f) - 16;
      const n2 = ((noise >>> 10) & 0x1f) - 16;
      out[i++] = clampByte(60 + gx + wx + n0);
      out[i++] = clampByte(50 + gy + wy + n1);
      out[i++] = clampByte(200 - gx * 0.6 - gy * 0.4 + wx * 0.5 + n2);
      if (channels === 4) {
        // Varies across the image so alpha survives as a real channel rather than being optimised away.
        out[i++] = clampByte(255 - (x / width) * 200 - (y / height) * 40);
      }
    }
  }
  return out;
}

function rawImage(width: number, height: number, seed: number, channels: 3 | 4): Sharp {
  return sharp(photoPixels(width, height, seed, channels), { raw: { width, height, channels } });
}

export async function makeJpeg(width: number, height: number, seed = 1): Promise<Buffer> {
  return rawImage(width, height, seed, 3).jpeg({ quality: 95 }).toBuffer();
}

export async function makePng(
  width: number,
  height: number,
  seed = 1,
  alpha = true,
): Promise<Buffer> {
  return rawImage(width, height, seed, alpha ? 4 : 3)
    .png()
    .toBuffer();
}

export async function makeWebp(width: number, height: number, seed = 1): Promise<Buffer> {
  return rawImage(width, height, seed, 3).webp({ quality: 90 }).toBuffer();
}

/**
 * Pixels are stored as `width`x`height` with EXIF Orientation 6 (rotate 90° clockwise to display),
 * so a correctly auto-rotating pipeline outputs `height`x`width`.
 */
export async function makeExifRotatedJpeg(width: number, height: number): Promise<Buffer> {
  return rawImage(width, height, 7, 3)
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}
