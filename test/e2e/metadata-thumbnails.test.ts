import sharp from 'sharp';
import t from 'tap';
import { makeJpeg } from '../helpers/images.js';
import { type FixturePath, fixtureInfo, startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getProducts,
  type ImageView,
  type RejectedBody,
  splitOutputs,
  startService,
  submit,
  type TapTest,
  upload,
  waitForStatus,
} from '../helpers/service.js';

const HEADER = 'Serial Number,Product Name,Input Image Urls';

const origin = await startOrigin();
t.teardown(() => origin.close());
const service = await startService();
t.teardown(() => service.close());
const { url } = service;
const fixture = (p: FixturePath): string => `${origin.url}${p}`;

/** Width and height of an image fetched over HTTP, and its format. */
async function decodedSize(imageUrl: string) {
  const { res, body } = await fetchBytes(imageUrl);
  if (res.status !== 200) throw new Error(`${imageUrl} answered ${res.status}`);
  const meta = await sharp(body).metadata();
  return { width: meta.width, height: meta.height, format: meta.format, bytes: body.length };
}

/**
 * Asserts that `size` is `upright` fit inside `box`: within it, touching it on the side
 * that limits, and the other side in proportion (to the pixel).
 */
function assertFitsInside(
  t: TapTest,
  size: { width: number; height: number },
  upright: { width: number; height: number },
  box: { width: number; height: number },
  label: string,
): void {
  const scale = Math.min(box.width / upright.width, box.height / upright.height, 1);
  t.ok(size.width <= box.width && size.height <= box.height, `${label}: inside the box`);
  t.ok(
    Math.abs(size.width - upright.width * scale) <= 1 &&
      Math.abs(size.height - upright.height * scale) <= 1,
    `${label}: ${size.width}x${size.height} is ${upright.width}x${upright.height} scaled by ${scale.toFixed(3)}`,
  );
}

const upright = (p: FixturePath) => {
  const info = fixtureInfo[p];
  const turned = info.orientation !== undefined && info.orientation >= 5;
  return turned
    ? { width: info.height, height: info.width }
    : { width: info.width, height: info.height };
};

t.test('a CSV job records metadata per image and makes the thumbnails asked for', async (t) => {
  const missing = `${origin.url}/status/404`;
  const rows: FixturePath[][] = [
    ['/img/photo1.jpg', '/img/rotated.jpg'],
    ['/img/alpha.png'],
    ['/img/pic.webp', '/img/photo1.jpg'],
  ];
  const cells = [
    rows[0]?.map(fixture) ?? [],
    [...(rows[1]?.map(fixture) ?? []), missing],
    rows[2]?.map(fixture) ?? [],
  ];
  const csv = [HEADER, ...cells.map((urls, i) => `${i + 1},Product ${i + 1},"${urls.join(', ')}"`)];
  const job = await submit(url, `${csv.join('\n')}\n`, { thumbnails: 'small, 300x200' });
  await waitForStatus(url, job.request_id);
  const boxes = { small: { width: 128, height: 128 }, '300x200': { width: 300, height: 200 } };

  const products = (await getProducts(url, job.request_id)).products;
  t.equal(products.length, 3);
  const byUrl = new Map<string, ImageView>();
  for (const product of products) for (const image of product.images) byUrl.set(image.url, image);

  for (const path of new Set(rows.flat())) {
    const view = byUrl.get(fixture(path));
    const info = fixtureInfo[path];
    t.equal(view?.status, 'PROCESSED', `${path} processed`);
    const output = await decodedSize(view?.output_url ?? '');
    t.match(
      view?.metadata,
      {
        width: output.width,
        height: output.height,
        format: 'jpeg',
        input: { width: info.width, height: info.height, format: info.format },
        orientation: info.orientation ?? null,
        rotated: info.orientation !== undefined,
        bytes_in: origin.fixtures[path].length,
        bytes_out: output.bytes,
      },
      `${path}: metadata matches the input and the stored output`,
    );
    t.strictSame(
      [output.width, output.height],
      [upright(path).width, upright(path).height],
      `${path}: stored upright, full size`,
    );
    const ms = view?.metadata?.processing_ms;
    t.ok(Number.isInteger(ms) && (ms ?? -1) >= 0, `${path}: processing_ms is a duration (${ms})`);
    t.strictSame(Object.keys(view?.thumbnails ?? {}), ['small', '300x200'], `${path}: sizes`);
    for (const [name, box] of Object.entries(boxes)) {
      const thumbnailUrl = view?.thumbnails[name] ?? '';
      t.match(
        thumbnailUrl,
        new RegExp(`/processed_images/${job.request_id}/[^/]+\\.${name}\\.jpg$`),
      );
      const thumbnail = await decodedSize(thumbnailUrl);
      t.equal(thumbnail.format, 'jpeg', `${path} ${name}: in the job's format`);
      assertFitsInside(
        t,
        { width: thumbnail.width ?? 0, height: thumbnail.height ?? 0 },
        upright(path),
        box,
        `${path} ${name}`,
      );
    }
  }
  const failed = byUrl.get(missing);
  t.match(failed, { status: 'FAILED', metadata: null });
  t.strictSame(failed?.thumbnails, { small: null, '300x200': null }, 'a failure has none');

  const { rows: results } = await downloadCsv(url, job.request_id);
  const [header, ...lines] = results;
  t.strictSame(header, [
    'Serial Number',
    'Product Name',
    'Input Image Urls',
    'Output Image Urls',
    'Thumbnail small Urls',
    'Thumbnail 300x200 Urls',
    'Errors',
  ]);
  t.equal(lines.length, 3);
  lines.forEach((line, i) => {
    const inputs = cells[i] ?? [];
    const outputs = splitOutputs(line[3] ?? '');
    for (const [column, name] of [
      [4, 'small'],
      [5, '300x200'],
    ] as const) {
      const thumbnails = splitOutputs(line[column] ?? '');
      t.equal(thumbnails.length, inputs.length, `row ${i + 1} ${name}: one per input URL`);
      thumbnails.forEach((thumbnail, position) => {
        const view = byUrl.get(inputs[position] ?? '');
        t.equal(
          thumbnail,
          view?.thumbnails[name] ?? '',
          `row ${i + 1} position ${position + 1} ${name}: the products view's URL, or empty`,
        );
        t.equal(thumbnail === '', outputs[position] === '', 'empty exactly where the output is');
      });
    }
  });
  t.match(lines[1]?.[6], /status\/404: HTTP 404/, 'the failure is still explained');
});

t.test('a thumbnail is never larger than its image', async (t) => {
  origin.add('/img/tiny.jpg', { body: await makeJpeg(100, 60, 4), contentType: 'image/jpeg' });
  const csv = `${HEADER}\n1,Tiny,${origin.url}/img/tiny.jpg\n`;
  const job = await submit(url, csv, { thumbnails: 'small,medium', format: 'webp' });
  await waitForStatus(url, job.request_id);
  const [image] = (await getProducts(url, job.request_id)).products[0]?.images ?? [];
  t.match(image?.metadata, { width: 100, height: 60, format: 'webp' });
  for (const name of ['small', 'medium']) {
    const thumbnail = await decodedSize(image?.thumbnails[name] ?? '');
    t.match(thumbnail, { width: 100, height: 60, format: 'webp' }, `${name}: not enlarged`);
  }
});

t.test('without thumbnails the views and the results CSV have none', async (t) => {
  const job = await submit(url, `${HEADER}\n1,Plain,${fixture('/img/photo2.jpg')}\n`);
  await waitForStatus(url, job.request_id);
  const [image] = (await getProducts(url, job.request_id)).products[0]?.images ?? [];
  t.strictSame(image?.thumbnails, {});
  t.match(image?.metadata, { width: 800, height: 600, input: { width: 800, height: 600 } });
  const { rows } = await downloadCsv(url, job.request_id);
  t.strictSame(rows[0]?.slice(3), ['Output Image Urls', 'Errors']);
});

t.test('an invalid thumbnails option rejects the upload', async (t) => {
  const csv = `${HEADER}\n1,Any,${fixture('/img/photo3.jpg')}\n`;
  for (const value of ['huge', 'small,small', '0x10', 'small,medium,1x1,2x2,3x3']) {
    const res = await upload(url, csv, { thumbnails: value });
    t.equal(res.status, 400, `${value}: 400`);
    const body = res.body as RejectedBody;
    t.equal(body.error, 'Invalid upload options');
    t.match(body.details, [{ row: null, column: 'thumbnails', message: String }], value);
  }
  t.equal(origin.hits('/img/photo3.jpg'), 0, 'nothing was fetched');
});
