import fs from 'node:fs/promises';
import sharp from 'sharp';
import t from 'tap';
import { makeExifRotatedJpeg, makeJpeg, makePng } from '../helpers/images.js';
import { startOrigin } from '../helpers/origin.js';
import {
  fetchBytes,
  getJson,
  type RejectedBody,
  type StatusBody,
  sleep,
  startService,
  submit,
  type TapTest,
  timeout,
  type UploadedImageBody,
  uploadImage,
  waitForImage,
  waitForStatus,
} from '../helpers/service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UNKNOWN = '0b9c5f5e-8c1a-4e4f-9d3e-2f1a6b7c8d9e';
const BOXES = { small: 128, medium: 512 } as const;

const origin = await startOrigin();
t.teardown(() => origin.close());
const service = await startService();
t.teardown(() => service.close());
const { url } = service;

const jpeg = await makeJpeg(1600, 1200, 5);

interface ImageListBody {
  offset: number;
  limit: number;
  total: number;
  images: UploadedImageBody[];
}

/** Uploads and insists on a 202, returning its body. */
async function accepted(
  bytes: Buffer,
  options: Parameters<typeof uploadImage>[2] = {},
): Promise<UploadedImageBody> {
  const res = await uploadImage(url, bytes, options);
  if (res.status !== 202)
    throw new Error(`upload answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as UploadedImageBody;
}

async function decode(imageUrl: string) {
  const { res, body } = await fetchBytes(imageUrl);
  if (res.status !== 200) throw new Error(`${imageUrl} answered ${res.status}`);
  const meta = await sharp(body).metadata();
  return { width: meta.width ?? 0, height: meta.height ?? 0, format: meta.format, body, res };
}

/** Checks both thumbnails: decoded, inside their boxes, in proportion to the output. */
async function assertThumbnails(
  t: TapTest,
  image: UploadedImageBody,
  output: { width: number; height: number },
  format: string,
): Promise<void> {
  for (const [size, box] of Object.entries(BOXES)) {
    const link = image.thumbnails[size as keyof typeof BOXES];
    t.match(link, new RegExp(`/processed_images/${image.id}/image\\.${size}\\.`), `${size} URL`);
    const thumbnail = await decode(link ?? '');
    const scale = Math.min(box / output.width, box / output.height, 1);
    t.equal(thumbnail.format, format, `${size}: ${format}`);
    t.ok(thumbnail.width <= box && thumbnail.height <= box, `${size}: inside ${box}x${box}`);
    t.ok(
      Math.abs(thumbnail.width - output.width * scale) <= 1 &&
        Math.abs(thumbnail.height - output.height * scale) <= 1,
      `${size}: ${thumbnail.width}x${thumbnail.height} in proportion to ${output.width}x${output.height}`,
    );
    const served = await fetch(`${url}/images/${image.id}/thumbnails/${size}`, {
      signal: timeout(),
    });
    t.equal(served.status, 200, `${size}: served by id`);
    t.equal(served.headers.get('content-type'), `image/${format}`);
    t.ok(
      Buffer.from(await served.arrayBuffer()).equals(thumbnail.body),
      `${size}: the same bytes as its URL`,
    );
  }
}

/** Files in the uploads directory: saved uploads only, never a leftover temporary. */
async function uploadsDirFiles(): Promise<string[]> {
  return (await fs.readdir(service.config.uploadsDir).catch(() => [])).sort();
}

t.test('a JPEG is processed as a job of one image', async (t) => {
  const res = await uploadImage(url, jpeg, { filename: 'front shot.jpg' });
  t.equal(res.status, 202);
  const body = res.body as UploadedImageBody;
  t.match(body, {
    id: UUID,
    original_name: 'front shot.jpg',
    status_url: `${url}/images/${body.id}`,
  });
  t.ok(['processing', 'processed'].includes(body.status), `status ${body.status}`);
  t.ok(await uploadsDirFiles().then((files) => files.includes(body.id)), 'the bytes are saved');

  const image = await waitForImage(url, body.id);
  t.match(image, {
    id: body.id,
    status: 'processed',
    original_name: 'front shot.jpg',
    output_url: new RegExp(`^${url}/processed_images/${body.id}/image\\.jpg$`),
    error: null,
  });
  const output = await decode(image.output_url ?? '');
  t.strictSame(
    { ...image.metadata, processing_ms: typeof image.metadata?.processing_ms },
    {
      width: 1600,
      height: 1200,
      format: 'jpeg',
      input: { width: 1600, height: 1200, format: 'jpeg' },
      orientation: null,
      rotated: false,
      bytes_in: jpeg.length,
      bytes_out: output.body.length,
      processing_ms: 'number',
    },
    'metadata matches the input and the stored output',
  );
  t.strictSame([output.width, output.height], [1600, 1200]);
  await assertThumbnails(t, image, output, 'jpeg');

  const status = await getJson(url, `/status/${body.id}`);
  t.match(status.body as StatusBody, { kind: 'image', status: 'COMPLETED' });
  const products = await getJson(url, `/status/${body.id}/products`);
  t.match(products.body, { total: 0, products: [] }, 'a direct upload has no CSV rows');
  const download = await getJson(url, `/download/${body.id}`);
  t.equal(download.status, 404);
  t.match(download.body, { error: /direct image upload.*GET \/images\// });
});

t.test('wait=true answers 200 with the processed image, EXIF orientation applied', async (t) => {
  const rotated = await makeExifRotatedJpeg(300, 200);
  const res = await uploadImage(url, rotated, { query: '?wait=true', filename: 'turned.jpg' });
  t.equal(res.status, 200);
  const image = res.body as UploadedImageBody;
  t.match(image, {
    status: 'processed',
    metadata: {
      width: 200,
      height: 300,
      input: { width: 300, height: 200, format: 'jpeg' },
      orientation: 6,
      rotated: true,
      bytes_in: rotated.length,
    },
  });
  const output = await decode(image.output_url ?? '');
  t.strictSame([output.width, output.height], [200, 300], 'stored upright');
  await assertThumbnails(t, image, output, 'jpeg');
  t.strictSame((await getJson(url, `/images/${image.id}`)).body, image, 'as GET shows it');
});

t.test('every accepted type, by content, with the CSV upload options', async (t) => {
  const raw = sharp(await makePng(320, 240, 3, false));
  const inputs: Record<string, Buffer> = {
    png: await makePng(320, 240, 2, true),
    webp: await raw.clone().webp().toBuffer(),
    avif: await raw.clone().avif().toBuffer(),
    gif: await raw.clone().gif().toBuffer(),
    tiff: await raw.clone().tiff().toBuffer(),
  };
  for (const [format, bytes] of Object.entries(inputs)) {
    // A misleading name and part type: the content decides.
    const res = await uploadImage(url, bytes, {
      filename: 'upload.jpg',
      query: '?wait=true',
      fields: { format: 'webp', max_width: '160', quality: '70' },
    });
    t.equal(res.status, 200, `${format}: processed`);
    const image = res.body as UploadedImageBody;
    t.match(
      image.metadata,
      { width: 160, height: 120, format: 'webp', input: { width: 320, height: 240, format } },
      `${format}: metadata`,
    );
    const output = await decode(image.output_url ?? '');
    t.match(output, { width: 160, height: 120, format: 'webp' }, `${format}: output`);
    await assertThumbnails(t, image, output, 'webp');
  }
});

t.test('anything but an accepted image is 415, and nothing is kept', async (t) => {
  const before = (await getJson(url, '/images')).body as ImageListBody;
  const filesBefore = await uploadsDirFiles();
  const heic = Buffer.concat([
    Buffer.from([0, 0, 0, 24]),
    Buffer.from('ftypheic'),
    Buffer.alloc(64),
  ]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a PDF', Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n'), /type: PDF\./],
    [
      'an SVG',
      Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'),
      /type: SVG\./,
    ],
    ['text', Buffer.from('just some words, not a picture\n'), /content is not an image/],
    ['HEIC', heic, /type: HEIF\/HEIC\./],
    ['an HTML page', Buffer.from('<!doctype html><title>x</title>'), /not an image/],
  ];
  for (const [label, bytes, reason] of cases) {
    const res = await uploadImage(url, bytes, { filename: 'photo.jpg' });
    t.equal(res.status, 415, `${label}: 415`);
    t.match(res.body, { error: reason }, `${label}: says what it was`);
    t.match(res.body, { error: /Send a JPEG, PNG, WebP, AVIF, GIF or TIFF image/ });
  }
  const after = (await getJson(url, '/images')).body as ImageListBody;
  t.equal(after.total, before.total, 'no upload was recorded');
  t.strictSame(await uploadsDirFiles(), filesBefore, 'no file was left behind');
});

t.test('an image over MAX_IMAGE_BYTES is 413', async (t) => {
  const small = await startService({ MAX_IMAGE_BYTES: '4096' });
  t.teardown(() => small.close());
  t.ok(jpeg.length > 4096, 'fixture: over the limit');
  const res = await uploadImage(small.url, jpeg);
  t.equal(res.status, 413);
  t.match(res.body, { error: 'Image is larger than 4096 bytes (MAX_IMAGE_BYTES)' });
  t.match((await getJson(small.url, '/images')).body, { total: 0 });
  t.strictSame(
    await fs.readdir(small.config.uploadsDir).catch(() => []),
    [],
    'nothing left on disk',
  );
  const tiny = await makePng(16, 16);
  t.equal((await uploadImage(small.url, tiny, { query: '?wait=true' })).status, 200, 'under it');
});

t.test('malformed uploads are 400 with a reason', async (t) => {
  const json = await fetch(`${url}/images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal: timeout(),
  });
  t.equal(json.status, 400, 'not multipart');
  t.match(await json.json(), { error: /No image/, details: [{ column: 'file' }] });

  const noFile = new FormData();
  noFile.append('quality', '80');
  const missing = await fetch(`${url}/images`, { method: 'POST', body: noFile, signal: timeout() });
  t.equal(missing.status, 400, 'no file');
  t.match(await missing.json(), { details: [{ column: 'file', message: 'missing' }] });

  const twoFiles = new FormData();
  twoFiles.append('file', new Blob([jpeg]), 'a.jpg');
  twoFiles.append('file', new Blob([jpeg]), 'b.jpg');
  const two = await fetch(`${url}/images`, { method: 'POST', body: twoFiles, signal: timeout() });
  t.equal(two.status, 400, 'two files');
  t.match(await two.json(), { error: 'Send exactly one image per upload' });

  const empty = await uploadImage(url, Buffer.alloc(0));
  t.equal(empty.status, 400, 'empty file');
  t.match(empty.body, { error: 'The image file is empty' });

  const cases: Array<[Record<string, string>, string]> = [
    [{ quality: '0' }, 'quality'],
    [{ format: 'gif' }, 'format'],
    [{ max_width: 'wide' }, 'max_width'],
    [{ webhook_url: 'https://hooks.test/done' }, 'webhook_url'],
    [{ thumbnails: 'small' }, 'thumbnails'],
  ];
  for (const [fields, column] of cases) {
    const res = await uploadImage(url, jpeg, { fields });
    t.equal(res.status, 400, `${column}: 400`);
    const body = res.body as RejectedBody;
    t.equal(body.error, 'Invalid upload options');
    t.match(body.details, [{ row: null, column }], `${column}: named`);
  }
  const badWait = await uploadImage(url, jpeg, { query: '?wait=soon' });
  t.equal(badWait.status, 400, 'wait must be a boolean');
  t.match(badWait.body, { error: /querystring/ });
});

t.test('GET /images/:id of an unknown, malformed or CSV job id', async (t) => {
  const unknown = await getJson(url, `/images/${UNKNOWN}`);
  t.equal(unknown.status, 404);
  t.strictSame(unknown.body, { status: 'not_found', error: 'Image not found' });

  const malformed = await getJson(url, '/images/not-a-uuid');
  t.equal(malformed.status, 400);
  t.match(malformed.body, { error: /Malformed request id/ });

  const csv = `Serial Number,Product Name,Input Image Urls\n1,P,${origin.url}/img/photo1.jpg\n`;
  const job = await submit(url, csv);
  await waitForStatus(url, job.request_id);
  const notAnUpload = await getJson(url, `/images/${job.request_id}`);
  t.equal(notAnUpload.status, 404, 'a CSV job is not a direct upload');
  t.match(notAnUpload.body, { status: 'not_found' });
});

t.test('GET /images/:id/thumbnails/:size errors', async (t) => {
  const image = (await uploadImage(url, jpeg, { query: '?wait=true' })).body as UploadedImageBody;
  t.equal(image.status, 'processed', 'fixture');
  const other = await getJson(url, `/images/${image.id}/thumbnails/large`);
  t.equal(other.status, 400, 'another size');
  t.match(other.body, { error: 'Unknown thumbnail size "large": small or medium' });
  const unknown = await getJson(url, `/images/${UNKNOWN}/thumbnails/small`);
  t.equal(unknown.status, 404, 'an unknown id');
  t.match(unknown.body, { status: 'not_found' });

  // The right magic bytes pass the type check; the decoder then finds the data cut off.
  const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 3));
  const res = await uploadImage(url, truncated, { query: '?wait=true' });
  t.equal(res.status, 200, 'a failed image is a result too');
  const failed = res.body as UploadedImageBody;
  t.match(failed, {
    status: 'failed',
    metadata: null,
    output_url: null,
    thumbnails: { small: null, medium: null },
    error: /image could not be decoded/,
  });
  const missing = await getJson(url, `/images/${failed.id}/thumbnails/medium`);
  t.equal(missing.status, 404, 'a failed image has no thumbnail');
  t.match(missing.body, { status: 'not_found', error: /failed/ });
});

t.test('GET /images lists the direct uploads, newest first, paged', async (t) => {
  const csv = `Serial Number,Product Name,Input Image Urls\n1,P,${origin.url}/img/photo2.jpg\n`;
  const csvJob = await submit(url, csv);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await accepted(await makePng(32 + i, 32, i), { filename: `n${i}.png` })).id);
  }
  for (const id of ids) await waitForImage(url, id);
  const all = (await getJson(url, '/images?limit=100')).body as ImageListBody;
  t.equal(all.total, all.images.length, 'one page holds them all');
  t.strictSame(
    all.images.slice(0, 3).map((image) => image.id),
    [...ids].reverse(),
    'newest first',
  );
  const stamps = all.images.map((image) => image.created_at);
  t.strictSame(stamps, [...stamps].sort().reverse(), 'by creation time');
  t.notOk(
    all.images.some((image) => image.id === csvJob.request_id),
    'a CSV job is not listed',
  );
  t.strictSame(
    all.images.slice(0, 3).map((image) => image.original_name),
    ['n2.png', 'n1.png', 'n0.png'],
  );
  const first = all.images[0];
  t.strictSame(first, (await getJson(url, `/images/${first?.id}`)).body, 'as GET shows it');

  const page = (await getJson(url, '/images?offset=1&limit=2')).body as ImageListBody;
  t.match(page, { offset: 1, limit: 2, total: all.total });
  t.strictSame(
    page.images.map((image) => image.id),
    [ids[1], ids[0]],
  );
  const bad = await getJson(url, '/images?limit=0');
  t.equal(bad.status, 400, 'limit is bounded');
});

t.test('wait=true gives up after IMAGE_WAIT_MS and answers 202', async (t) => {
  // One download slot, held by a download that never answers: the upload cannot start.
  const busy = await startService({
    CONCURRENCY: '1',
    DOWNLOAD_CONCURRENCY: '1',
    IMAGE_WAIT_MS: '300',
    DOWNLOAD_TIMEOUT_MS: '60000',
  });
  t.teardown(() => busy.close({ stopDeadlineMs: 100 }));
  origin.add('/hang', () => {});
  const csv = `Serial Number,Product Name,Input Image Urls\n1,Stuck,${origin.url}/hang\n`;
  const job = await submit(busy.url, csv);
  await waitForStatus(busy.url, job.request_id, 'PROCESSING');
  while (origin.hits('/hang') === 0) await sleep(20);

  const res = await uploadImage(busy.url, jpeg, { query: '?wait=true' });
  t.equal(res.status, 202);
  const waiting = res.body as UploadedImageBody;
  t.match(waiting, { status: 'processing', metadata: null, output_url: null });

  // The upload is kept on disk and in the store: a restart with room in the pool does it.
  const again = await busy.restart({ CONCURRENCY: '4' }, { stopDeadlineMs: 100 });
  t.teardown(() => again.close({ stopDeadlineMs: 100 }));
  const image = await waitForImage(again.url, waiting.id);
  t.match(image, {
    status: 'processed',
    metadata: { input: { width: 1600, height: 1200 }, bytes_in: jpeg.length },
  });
});
