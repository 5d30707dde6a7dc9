import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import t from 'tap';
import { type fixtureInfo, startOrigin } from '../helpers/origin.js';
import {
  type AcceptedBody,
  downloadCsv,
  fetchBytes,
  getJson,
  getProducts,
  type StatusBody,
  sleep,
  splitOutputs,
  startService,
  submit,
  type TapTest,
  timeout,
  upload,
  waitForStatus,
} from '../helpers/service.js';
import { startWebhookReceiver } from '../helpers/webhook.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEADER = 'Serial Number,Product Name,Input Image Urls';

const origin = await startOrigin();
t.teardown(() => origin.close());
// One attempt per webhook, so a failing receiver is FAILED at once; retries are covered in
// webhooks.test.ts.
const service = await startService({ WEBHOOK_MAX_ATTEMPTS: '1' });
t.teardown(() => service.close());
const { url } = service;
const fixture = (p: keyof typeof fixtureInfo): string => `${origin.url}${p}`;

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Decoded {
  meta: Metadata;
  bytes: Buffer;
}

/** Fetches an output image over HTTP and decodes it. */
async function decode(outputUrl: string): Promise<Decoded> {
  const { res, body } = await fetchBytes(outputUrl);
  if (res.status !== 200) throw new Error(`${outputUrl} answered ${res.status}`);
  return { meta: await sharp(body).metadata(), bytes: body };
}

/** Runs a one-column-of-URLs job to completion and decodes every output, row by row. */
async function runJob(
  rows: string[][],
  fields: Record<string, string> = {},
): Promise<{ job: AcceptedBody; status: StatusBody; outputs: Decoded[][] }> {
  const lines = [HEADER, ...rows.map((urls, i) => `${i + 1},p${i + 1},"${urls.join(', ')}"`)];
  const job = await submit(url, `${lines.join('\n')}\n`, fields);
  const status = await waitForStatus(url, job.request_id);
  const { rows: csv } = await downloadCsv(url, job.request_id);
  const outputs: Decoded[][] = [];
  for (const row of csv.slice(1)) {
    outputs.push(await Promise.all(splitOutputs(row[3] ?? '').map(decode)));
  }
  return { job, status, outputs };
}

const dims = (d: Decoded | undefined): [number | undefined, number | undefined] => [
  d?.meta.width,
  d?.meta.height,
];

t.test(
  'happy path: BOM, CRLF, blank line, quoted multi-URL cell, passthrough column',
  async (t) => {
    const inputRows = [
      ['1', 'Red Shoe', fixture('/img/photo1.jpg'), 'Shoes, red'],
      ['2', 'Blue Hat', `${fixture('/img/photo2.jpg')}, ${fixture('/img/rotated.jpg')}`, 'Hats'],
      ['3', 'Glass Vase', fixture('/img/alpha.png'), 'Home "deco"'],
    ];
    const quote = (cell: string): string => `"${cell.replace(/"/g, '""')}"`;
    const csv =
      '\uFEFFSerial Number,Product Name,Input Image Urls,Category\r\n' +
      `${inputRows[0]?.map(quote).join(',')}\r\n` +
      '\r\n' +
      `${inputRows[1]?.map(quote).join(',')}\r\n` +
      `${inputRows[2]?.map(quote).join(',')}\r\n`;

    const res = await upload(url, csv);
    t.equal(res.status, 202);
    const job = res.body as AcceptedBody;
    t.match(job.request_id, UUID);
    t.same(job, {
      request_id: job.request_id,
      status: 'PENDING',
      products: 3,
      images: 4,
      status_url: `${url}/status/${job.request_id}`,
      download_url: `${url}/download/${job.request_id}`,
    });

    const status = await waitForStatus(url, job.request_id);
    t.match(status, {
      request_id: job.request_id,
      status: 'COMPLETED',
      download_url: job.download_url,
      webhook: null,
      progress: {
        products_total: 3,
        products_done: 3,
        images_total: 4,
        images_processed: 4,
        images_failed: 0,
        percent: 100,
      },
    });
    t.type(status.completed_at, 'string');

    const download = await downloadCsv(url, job.request_id);
    t.match(download.res.headers.get('content-type'), /^text\/csv/);
    t.match(download.res.headers.get('content-disposition'), /^attachment/);
    const [header, ...rows] = download.rows;
    t.same(header, [
      'Serial Number',
      'Product Name',
      'Input Image Urls',
      'Category',
      'Output Image Urls',
      'Errors',
    ]);
    t.equal(rows.length, 3, 'one row per input row; the blank line is not a row');
    rows.forEach((row, i) => {
      t.same(row.slice(0, 4), inputRows[i], `row ${i + 1} keeps its input cells`);
      t.equal(row[5], '', `row ${i + 1} has no errors`);
    });

    const outputs = rows.map((row) => splitOutputs(row[4] ?? ''));
    t.same(
      outputs.map((o) => o.length),
      [1, 2, 1],
      'one output URL per input URL',
    );
    const all = outputs.flat();
    t.equal(new Set(all).size, 4, 'every output URL is distinct');
    for (const output of all) {
      t.match(
        output,
        new RegExp(`^${escapeRe(url)}/processed_images/${job.request_id}/[^/]+\\.jpg$`),
      );
    }

    const [photo1, photo2, rotated, alpha] = await Promise.all(all.map(decode));
    const inputs = [
      origin.fixtures['/img/photo1.jpg'],
      origin.fixtures['/img/photo2.jpg'],
      origin.fixtures['/img/rotated.jpg'],
      origin.fixtures['/img/alpha.png'],
    ];
    [photo1, photo2, rotated, alpha].forEach((out, i) => {
      t.equal(out?.meta.format, 'jpeg', `output ${i + 1} is a JPEG`);
      t.ok(
        (out?.bytes.length ?? Infinity) < (inputs[i]?.length ?? 0),
        `output ${i + 1} (${out?.bytes.length} B) is smaller than its input (${inputs[i]?.length} B)`,
      );
      t.equal(out?.meta.exif, undefined, `output ${i + 1} carries no EXIF`);
    });
    t.same(dims(photo1), [800, 600], 'photo1 keeps its size');
    t.same(dims(photo2), [800, 600], 'photo2 keeps its size, and is the second cell position');
    t.same(dims(rotated), [200, 300], 'the EXIF-rotated 300x200 comes out upright as 200x300');
    t.notOk((rotated?.meta.orientation ?? 1) > 1, 'no orientation tag is left to rotate it again');
    t.same(dims(alpha), [400, 300]);
    t.equal(alpha?.meta.hasAlpha, false, 'alpha PNG to JPEG has no alpha');
    t.equal(alpha?.meta.channels, 3);

    // The fixture is mostly transparent at the top right: flattened onto white, that corner
    // is light; flattened onto black (or with alpha dropped), it would be dark or saturated.
    const corner = await sharp(alpha?.bytes)
      .extract({ left: 360, top: 0, width: 40, height: 40 })
      .stats();
    for (const channel of corner.channels.slice(0, 3)) {
      t.ok(channel.mean > 150, `flattened onto white (channel mean ${channel.mean.toFixed(0)})`);
    }

    const products = await getProducts(url, job.request_id);
    t.same(
      products.products.map((p) => [p.row, p.serial, p.name, p.output_urls]),
      [
        [1, '1', 'Red Shoe', outputs[0]],
        [2, '2', 'Blue Hat', outputs[1]],
        [3, '3', 'Glass Vase', outputs[2]],
      ],
      '/status/:id/products agrees with the CSV',
    );
  },
);

t.test('options', async (t) => {
  t.test('lower quality gives a smaller file for the same input', async (t) => {
    const [low, high] = await Promise.all([
      runJob([[fixture('/img/photo1.jpg')]], { quality: '20' }),
      runJob([[fixture('/img/photo1.jpg')]], { quality: '90' }),
    ]);
    const lowBytes = low.outputs[0]?.[0]?.bytes.length ?? 0;
    const highBytes = high.outputs[0]?.[0]?.bytes.length ?? 0;
    t.ok(lowBytes > 0 && highBytes > 0, 'both outputs exist');
    t.ok(lowBytes < highBytes, `quality 20 (${lowBytes} B) < quality 90 (${highBytes} B)`);
    t.same(dims(low.outputs[0]?.[0]), [800, 600]);
  });

  t.test('formats: webp, avif and png, with alpha kept', async (t) => {
    // Small inputs: AVIF and palette PNG encoders are slow on an 800x600 photo.
    const urls = [
      [fixture('/img/pic.webp')],
      [fixture('/img/alpha.png')],
      [fixture('/img/rotated.jpg')],
    ];
    const [webp, avif, png] = await Promise.all([
      runJob(urls, { format: 'webp' }),
      runJob(urls, { format: 'avif' }),
      runJob(urls, { format: 'png', quality: '80' }),
    ]);
    const picBytes = origin.fixtures['/img/pic.webp'].length;
    const alphaBytes = origin.fixtures['/img/alpha.png'].length;
    const expected: Array<[typeof webp, string, string]> = [
      [webp, 'webp', 'webp'],
      [avif, 'heif', 'avif'],
      [png, 'png', 'png'],
    ];
    for (const [job, format, ext] of expected) {
      const [pic, alpha, rotated] = job.outputs.map((row) => row[0]);
      t.equal(pic?.meta.format, format, `${ext}: the WebP input decodes as ${format}`);
      t.equal(alpha?.meta.format, format, `${ext}: the PNG input decodes as ${format}`);
      t.equal(rotated?.meta.format, format, `${ext}: the JPEG input decodes as ${format}`);
      t.same(dims(pic), [400, 300], `${ext}: size kept`);
      t.same(dims(alpha), [400, 300], `${ext}: size kept`);
      t.same(dims(rotated), [200, 300], `${ext}: EXIF rotation applied`);
      t.equal(alpha?.meta.hasAlpha, true, `PNG to ${ext} keeps alpha`);
      t.ok(
        (alpha?.bytes.length ?? Infinity) < alphaBytes,
        `${ext} of the PNG (${alpha?.bytes.length} B) is smaller than it (${alphaBytes} B)`,
      );
      if (ext !== 'png') {
        t.ok(
          (pic?.bytes.length ?? Infinity) < picBytes,
          `${ext} of the WebP (${pic?.bytes.length} B) is smaller than it (${picBytes} B)`,
        );
      }
      const { rows } = await downloadCsv(url, job.job.request_id);
      t.match(rows[1]?.[3], new RegExp(`\\.${ext}$`), `${ext} outputs are named .${ext}`);
    }
    t.equal(avif.outputs[0]?.[0]?.meta.compression, 'av1', 'AVIF is AV1 in HEIF');
  });

  t.test('max_width / max_height fit inside and never enlarge', async (t) => {
    const photo = [[fixture('/img/photo1.jpg')]];
    const [narrow, wide, box, short, both] = await Promise.all([
      runJob(photo, { max_width: '400' }),
      runJob(photo, { max_width: '2000' }),
      runJob(photo, { max_width: '100', max_height: '100' }),
      runJob([[fixture('/img/rotated.jpg')]], { max_height: '150' }),
      runJob(photo, { max_width: '2000', max_height: '3000' }),
    ]);
    t.same(dims(narrow.outputs[0]?.[0]), [400, 300], 'max_width=400: 800x600 becomes 400x300');
    t.same(dims(wide.outputs[0]?.[0]), [800, 600], 'max_width=2000: not enlarged');
    t.same(dims(box.outputs[0]?.[0]), [100, 75], '100x100 box: aspect ratio kept');
    t.same(dims(short.outputs[0]?.[0]), [100, 150], 'resized after the EXIF rotation');
    t.same(dims(both.outputs[0]?.[0]), [800, 600], 'a box larger than the image: untouched');
  });
});

t.test('a URL repeated in a job is downloaded once and shared', async (t) => {
  origin.add('/dup/one.jpg', {
    body: origin.fixtures['/img/photo3.jpg'],
    contentType: 'image/jpeg',
  });
  const dup = `${origin.url}/dup/one.jpg`;
  const shouted = dup.replace('http://', 'HTTP://');
  const csv = [
    HEADER,
    `1,a,${dup}`,
    `2,b,"${fixture('/img/photo2.jpg')}, ${shouted}"`,
    `3,c,"${dup}, ${dup}"`,
  ].join('\n');
  const job = await submit(url, csv);
  t.equal(job.images, 2, 'two distinct URLs (the scheme case does not matter)');
  const status = await waitForStatus(url, job.request_id);
  t.match(status.progress, { images_total: 2, images_processed: 2, products_done: 3 });
  t.equal(origin.hits('/dup/one.jpg'), 1, 'the repeated URL was fetched once');

  const { rows } = await downloadCsv(url, job.request_id);
  const outputs = rows.slice(1).map((row) => splitOutputs(row[3] ?? ''));
  const shared = outputs[0]?.[0];
  t.ok(shared, 'row 1 has an output');
  t.same(outputs, [[shared], [outputs[1]?.[0], shared], [shared, shared]]);
  t.not(outputs[1]?.[0], shared, 'the other URL has its own output');
  const files = await fs.readdir(path.join(service.config.imagesDir, job.request_id));
  t.equal(files.length, 2, `one file per distinct image (${files.join(', ')})`);
  t.same(dims(await decode(shared ?? '')), [800, 600]);
});

t.test(
  'a URL repeated thousands of rows apart is still one image',
  {
    // Every product row is written once per image finishing in it, and the FerretDB test
    // server takes ~20 ms a document (2,500 rows: a minute per image); the store part of
    // this, addImageRefs, is in the contract suite that runs on it.
    skip: process.env.MONGODB_URI ? 'too many product writes for the FerretDB test server' : false,
  },
  async (t) => {
    // Rows are recorded a thousand at a time as the CSV streams in: these repeats land in
    // later batches than the image they share, some in the batch after, some further on.
    origin.add('/far/a.jpg', {
      body: origin.fixtures['/img/photo2.jpg'],
      contentType: 'image/jpeg',
    });
    origin.add('/far/b.jpg', {
      body: origin.fixtures['/img/photo3.jpg'],
      contentType: 'image/jpeg',
    });
    const a = `${origin.url}/far/a.jpg`;
    const b = `${origin.url}/far/b.jpg`;
    const rowCount = 2500;
    const big = await startService({ MAX_ROWS: String(rowCount) });
    t.teardown(() => big.close());
    const urlsOf = (row: number): string[] =>
      row === 1 || row === rowCount ? [a] : row % 2 === 0 ? [b] : [b, a];
    const lines = [HEADER];
    for (let row = 1; row <= rowCount; row++)
      lines.push(`${row},p${row},"${urlsOf(row).join(', ')}"`);
    const job = await submit(big.url, `${lines.join('\n')}\n`);
    t.equal(job.images, 2, 'two distinct URLs across 2,500 rows');
    const status = await waitForStatus(big.url, job.request_id);
    t.match(status.progress, {
      images_total: 2,
      images_processed: 2,
      products_total: rowCount,
      products_done: rowCount,
    });
    t.equal(origin.hits('/far/a.jpg'), 1, 'fetched once');
    t.equal(origin.hits('/far/b.jpg'), 1, 'fetched once');

    const { rows } = await downloadCsv(big.url, job.request_id);
    const outputs = rows.slice(1).map((row) => splitOutputs(row[3] ?? ''));
    const [outA] = outputs[0] ?? [];
    const [outB] = outputs[1] ?? [];
    t.ok(outA && outB && outA !== outB, 'each URL has its own output');
    const expected = Array.from({ length: rowCount }, (_, i) =>
      urlsOf(i + 1).map((u) => (u === a ? outA : outB)),
    );
    t.same(outputs, expected, 'every row, early or late, points at the shared outputs');
    t.same(dims(await decode(outB ?? '')), [800, 600]);
  },
);

t.test('failing images are recorded while their siblings succeed', async (t) => {
  const failing = await startService({
    DOWNLOAD_TIMEOUT_MS: '500',
    MAX_IMAGE_BYTES: '500000',
    MAX_IMAGE_PIXELS: '300000',
  });
  t.teardown(() => failing.close());
  const rotated = origin.fixtures['/img/rotated.jpg'];
  // Like the origin's /truncated.jpg, but small enough to stay under MAX_IMAGE_PIXELS here.
  origin.add('/cut.jpg', {
    body: rotated.subarray(0, Math.floor(rotated.length / 2)),
    contentType: 'image/jpeg',
  });
  origin.add('/empty.jpg', { body: Buffer.alloc(0), contentType: 'image/jpeg' });
  origin.add('/chunked-big.jpg', (_req, res) => {
    // No Content-Length: only counting the bytes as they arrive can stop this one.
    res.writeHead(200, { 'Content-Type': 'image/jpeg' });
    res.end(origin.fixtures['/img/big.jpg']);
  });
  origin.add('/redirect.webp', {
    status: 302,
    body: Buffer.alloc(0),
    headers: { Location: '/img/pic.webp' },
  });
  origin.add('/loop.jpg', {
    status: 302,
    body: Buffer.alloc(0),
    headers: { Location: '/loop.jpg' },
  });
  const o = origin.url;
  // Successes are 400x300 (pic, alpha) or 200x300 (rotated); photo1 (800x600) is over
  // MAX_IMAGE_PIXELS; big.jpg is over MAX_IMAGE_BYTES.
  const cases: Array<{ urls: string[]; reasons: Array<RegExp | [number, number]> }> = [
    { urls: [`${o}/img/pic.webp`, `${o}/status/404`], reasons: [[400, 300], /404/] },
    { urls: [`${o}/status/500`], reasons: [/500/] },
    {
      urls: [`${o}/html`, `${o}/img/alpha.png`],
      reasons: [/not (an|a supported) image/i, [400, 300]],
    },
    { urls: [`${o}/cut.jpg`], reasons: [/decode|truncat|premature|end of/i] },
    { urls: [`${o}/img/rotated.jpg`, `${o}/slow`], reasons: [[200, 300], /timed out/i] },
    { urls: ['http://127.0.0.1:1/refused.jpg'], reasons: [/refused/i] },
    { urls: [`${o}/img/big.jpg`, `${o}/chunked-big.jpg`], reasons: [/limit/i, /limit/i] },
    { urls: [`${o}/empty.jpg`], reasons: [/empty/i] },
    { urls: [`${o}/img/photo1.jpg`], reasons: [/pixels/i] },
    { urls: [`${o}/redirect.webp`, `${o}/loop.jpg`], reasons: [[400, 300], /redirect/i] },
  ];
  const csv = [HEADER, ...cases.map((c, i) => `${i + 1},p${i + 1},"${c.urls.join(', ')}"`)].join(
    '\n',
  );
  const job = await submit(failing.url, csv);
  t.equal(job.images, 15);
  const status = await waitForStatus(failing.url, job.request_id);
  t.match(status, {
    status: 'COMPLETED',
    progress: {
      products_total: 10,
      products_done: 10,
      images_total: 15,
      images_processed: 4,
      images_failed: 11,
      percent: 100,
    },
  });

  const products = await getProducts(failing.url, job.request_id);
  const { rows } = await downloadCsv(failing.url, job.request_id);
  t.equal(rows.length, cases.length + 1);
  for (const [i, c] of cases.entries()) {
    const row = rows[i + 1] ?? [];
    const product = products.products[i];
    const outputs = splitOutputs(row[3] ?? '');
    t.equal(outputs.length, c.urls.length, `row ${i + 1}: one output position per input URL`);
    const errors: string[] = [];
    for (const [j, reason] of c.reasons.entries()) {
      const image = product?.images[j];
      const inputUrl = c.urls[j] ?? '';
      if (Array.isArray(reason)) {
        t.match(outputs[j], /^http:\/\/.*\.jpg$/, `row ${i + 1} #${j + 1} succeeded`);
        t.match(image, { status: 'PROCESSED', error: null, output_url: outputs[j] });
        t.same(dims(await decode(outputs[j] ?? '')), reason, `row ${i + 1} #${j + 1} decodes`);
      } else {
        t.equal(outputs[j], '', `row ${i + 1} #${j + 1} leaves its position empty`);
        t.match(image, { status: 'FAILED', output_url: null, error: reason });
        t.ok((image?.error ?? '').length < 200, `a short reason: ${image?.error}`);
        errors.push(`${inputUrl}: ${image?.error}`);
      }
    }
    // The separator between entries is not part of the contract; each entry and its order is.
    const cell = row[4] ?? '';
    let from = 0;
    for (const entry of errors) {
      const at = cell.indexOf(entry, from);
      t.ok(at >= from, `row ${i + 1} Errors has "${entry}" in order`);
      from = at + entry.length;
    }
    if (errors.length === 0) t.equal(cell, '', `row ${i + 1} Errors is empty`);
    t.ok(cell.length - errors.join('').length <= 3 * errors.length, 'nothing else in Errors');
  }
});

t.test('one image pool for the whole process, DOWNLOAD_CONCURRENCY downloads wide', async (t) => {
  // One encode slot: downloads are not held back by it (each answer takes 100 ms).
  const pool = await startService({ CONCURRENCY: '1', DOWNLOAD_CONCURRENCY: '3' });
  t.teardown(() => pool.close());
  let active = 0;
  let peak = 0;
  for (let i = 1; i <= 8; i++) {
    origin.add(`/pool/${i}.webp`, (_req, res) => {
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => {
        active--;
        res.writeHead(200, { 'Content-Type': 'image/webp' });
        res.end(origin.fixtures['/img/pic.webp']);
      }, 100);
    });
  }
  const urls = (from: number): string[] =>
    [0, 1, 2, 3].map((k) => `${origin.url}/pool/${from + k}.webp`);
  // Two jobs at once: a pool per job would run up to 6 downloads together.
  const [a, b] = await Promise.all([
    submit(pool.url, `${HEADER}\n1,a,"${urls(1).join(', ')}"\n`),
    submit(pool.url, `${HEADER}\n1,b,"${urls(5).join(', ')}"\n`),
  ]);
  const [sa, sb] = await Promise.all([
    waitForStatus(pool.url, a.request_id),
    waitForStatus(pool.url, b.request_id),
  ]);
  t.equal(sa.progress.images_processed + sb.progress.images_processed, 8);
  t.equal(peak, 3, `DOWNLOAD_CONCURRENCY downloads at once, not more (peak ${peak})`);
});

async function settledWebhook(id: string): Promise<StatusBody> {
  for (let i = 0; i < 200; i++) {
    const body = (await getJson(url, `/status/${id}`)).body as StatusBody;
    if (body.status === 'COMPLETED' && body.webhook?.status !== 'PENDING') return body;
    await sleep(50);
  }
  throw new Error(`webhook of ${id} never left PENDING`);
}

t.test('webhook', async (t) => {
  t.test('delivered once, with the job summary (webhookUrl alias)', async (t) => {
    const hook = await startWebhookReceiver();
    t.teardown(() => hook.close());
    const csv = `${HEADER}\n1,a,"${fixture('/img/photo1.jpg')}, ${origin.url}/status/404"\n`;
    const job = await submit(url, csv, { webhookUrl: hook.url });
    const [delivery] = await hook.waitFor(1);
    const status = await settledWebhook(job.request_id);
    await sleep(300);
    t.equal(hook.received.length, 1, 'exactly one POST');
    t.equal(delivery?.method, 'POST');
    t.match(delivery?.headers['content-type'], /application\/json/);
    t.same(delivery?.body, {
      request_id: job.request_id,
      status: 'COMPLETED',
      download_url: `${url}/download/${job.request_id}`,
      images_total: 2,
      images_processed: 1,
      images_failed: 1,
      completed_at: status.completed_at,
    });
    t.match(status.webhook, {
      url: hook.url,
      status: 'DELIVERED',
      attempts: 1,
      last_error: null,
      next_attempt_at: null,
      attempts_log: [{ attempt: 1, http_status: 200, error: null }],
    });
    t.equal(status.webhook?.attempts_log.length, 1, 'one attempt recorded');
    const carried = (delivery?.body as { download_url?: string } | undefined)?.download_url;
    const csvRes = await fetch(carried ?? 'http://127.0.0.1:1/', { signal: timeout() });
    t.equal(csvRes.status, 200, 'the download_url it carries works');
    await csvRes.arrayBuffer();
  });

  t.test('a receiver answering 500 is recorded as FAILED', async (t) => {
    const hook = await startWebhookReceiver({ status: 500 });
    t.teardown(() => hook.close());
    const job = await submit(url, `${HEADER}\n1,a,${fixture('/img/pic.webp')}\n`, {
      webhook_url: hook.url,
    });
    await hook.waitFor(1);
    const status = await settledWebhook(job.request_id);
    t.match(status.webhook, { url: hook.url, status: 'FAILED', attempts: 1, last_error: /500/ });
    t.equal(status.status, 'COMPLETED', 'a failed webhook does not fail the job');
    await sleep(300);
    t.equal(hook.received.length, 1, 'no retry here');
  });
});

t.test('a job cut off by a restart resumes and completes', async (t) => {
  let release = (): void => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  t.teardown(() => release());
  const hold = (name: string, body: Buffer): string => {
    origin.add(`/held/${name}`, (_req, res) => {
      void gate.then(() => {
        if (res.destroyed) return;
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(body.length) });
        res.end(body);
      });
    });
    return `${origin.url}/held/${name}`;
  };
  const heldA = hold('a.jpg', origin.fixtures['/img/photo1.jpg']);
  const heldB = hold('b.jpg', origin.fixtures['/img/photo2.jpg']);
  const env = { LEASE_MS: '1000', DOWNLOAD_TIMEOUT_MS: '20000' };
  const first = await startService(env);
  let second: Awaited<ReturnType<typeof startService>> | undefined;
  t.teardown(async () => {
    release();
    await first.close({ keep: true });
    if (second) await second.close();
    else await fs.rm(first.root, { recursive: true, force: true });
  });

  const csv = [
    HEADER,
    `1,free,${fixture('/img/photo1.jpg')}`,
    `2,held,${heldA}`,
    `3,mixed,"${heldB}, ${fixture('/img/photo2.jpg')}"`,
  ].join('\n');
  const job = await submit(first.url, csv);
  const id = job.request_id;
  await until(t, 'the free images are done and the held ones in flight', async () => {
    const body = (await getJson(first.url, `/status/${id}`)).body as StatusBody;
    return (
      body.progress.images_processed === 2 &&
      origin.hits('/held/a.jpg') === 1 &&
      origin.hits('/held/b.jpg') === 1
    );
  });

  let closed = false;
  const closing = first.close({ keep: true, stopDeadlineMs: 100 }).then(() => {
    closed = true;
  });
  // With the deadline honoured this resolves at once; give it ample slack before judging.
  await Promise.race([closing, sleep(2000)]);
  t.ok(closed, 'close({ stopDeadlineMs: 100 }) returns while downloads are held open');
  await t.test('resumed by a new service on the same data', async (t) => {
    second = await startService(env, { reuseRoot: first.root, reuseDbName: first.dbName });
    const resumed = (await getJson(second.url, `/status/${id}`)).body as StatusBody;
    t.match(resumed, {
      status: 'PROCESSING',
      progress: { images_total: 4, images_processed: 2, images_failed: 0 },
    });
    // The new service takes over the held images once their leases run out.
    await until(
      t,
      'the new service fetches the held images again',
      async () => origin.hits('/held/a.jpg') >= 2 && origin.hits('/held/b.jpg') >= 2,
    );
    release();
    const status = await waitForStatus(second.url, id);
    t.match(status.progress, {
      products_total: 3,
      products_done: 3,
      images_total: 4,
      images_processed: 4,
      images_failed: 0,
    });
    const { rows } = await downloadCsv(second.url, id);
    t.equal(rows.length, 4, 'every row once');
    const outputs = rows.slice(1).map((row) => splitOutputs(row[3] ?? ''));
    t.same(
      outputs.map((o) => o.length),
      [1, 1, 2],
    );
    t.same(
      rows.slice(1).map((row) => row[4]),
      ['', '', ''],
      'no errors',
    );
    const all = outputs.flat();
    t.equal(new Set(all).size, 4, 'four distinct outputs');
    const files = (await fs.readdir(path.join(second.config.imagesDir, id))).sort();
    t.same(
      files,
      all.map((o) => o.split('/').pop()).sort(),
      'exactly one file per image, nothing left half-written',
    );
    for (const output of all) {
      // Output URLs carry the origin of the upload (the first service's port).
      const relative = new URL(output).pathname;
      t.same(dims(await decode(`${second.url}${relative}`)), [800, 600], `${relative} decodes`);
    }
    await closing;
  });
});

async function until(
  t: TapTest,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting: ${what}`);
      throw new Error(`timed out waiting: ${what}`);
    }
    await sleep(50);
  }
}
