import fs from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getJson,
  getProducts,
  parseCsv,
  splitOutputs,
  startService,
  submit,
  waitForStatus,
} from '../helpers/service.js';

const UNKNOWN = '0b9c5f5e-8c1a-4e4f-9d3e-2f1a6b7c8d9e';
const HEADER = 'Serial Number,Product Name,Input Image Urls';

const origin = await startOrigin();
t.teardown(() => origin.close());
const service = await startService({ DOWNLOAD_TIMEOUT_MS: '3000' });
t.teardown(() => service.close());
const { url } = service;

/** GET with the path sent byte for byte (fetch would normalise `..` segments away). */
function rawGet(pathname: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: pathname, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('404 for an unknown id, 400 for a malformed one', async (t) => {
  const unknown = await getJson(url, `/download/${UNKNOWN}`);
  t.equal(unknown.status, 404);
  t.same(unknown.body, { error: 'Request not found' });
  const malformed = await getJson(url, '/download/abc');
  t.equal(malformed.status, 400);
  t.match(malformed.body, { error: /request id/i });
});

t.test('409 while the job is not complete, then the CSV', async (t) => {
  // The /slow image keeps the job busy until DOWNLOAD_TIMEOUT_MS (3 s) runs out.
  const csv = `${HEADER}\n1,Quick,${origin.url}/img/photo2.jpg\n2,Stalled,${origin.url}/slow\n`;
  const job = await submit(url, csv);
  const busy = await getJson(url, `/download/${job.request_id}`);
  t.equal(busy.status, 409);
  t.match(busy.body, { error: /not ready/i, status: /^(PENDING|PROCESSING)$/ });
  t.same(Object.keys(busy.body as object).sort(), ['error', 'status']);

  await waitForStatus(url, job.request_id);
  const { res, rows } = await downloadCsv(url, job.request_id);
  t.equal(res.status, 200);
  t.equal(rows.length, 3);
  t.match(rows[2]?.[4], /\/slow: download timed out/);
});

t.test('the results CSV: headers, content, and rewritten when missing', async (t) => {
  const csv = [
    `${HEADER},Price`,
    `1,"Shoe, red",${origin.url}/img/photo1.jpg,"1,99"`,
    `2,Hat,"${origin.url}/img/pic.webp, ${origin.url}/img/alpha.png",5`,
  ].join('\r\n');
  const job = await submit(url, csv, { format: 'webp' });
  const id = job.request_id;
  await waitForStatus(url, id);

  const first = await downloadCsv(url, id);
  t.match(first.res.headers.get('content-type'), /^text\/csv/);
  t.match(
    first.res.headers.get('content-disposition'),
    new RegExp(`^attachment; filename="[^"]*${id}[^"]*\\.csv"$`),
  );
  t.same(first.rows[0], [
    'Serial Number',
    'Product Name',
    'Input Image Urls',
    'Price',
    'Output Image Urls',
    'Errors',
  ]);
  t.same(first.rows[1]?.slice(0, 4), ['1', 'Shoe, red', `${origin.url}/img/photo1.jpg`, '1,99']);
  const products = await getProducts(url, id);
  t.same(
    splitOutputs(first.rows[2]?.[4] ?? ''),
    products.products[1]?.output_urls,
    'output URLs are those of /status/:id/products',
  );

  // A results file lost from disk is written again on the next download.
  await fs.rm(path.join(service.config.resultsDir, `${id}.csv`));
  const again = await downloadCsv(url, id);
  t.equal(again.res.status, 200);
  t.equal(again.text, first.text, 'the rewritten CSV is identical');
});

t.test('static output images', async (t) => {
  const csv = [
    HEADER,
    `1,Small,${origin.url}/img/pic.webp`,
    `2,Png,${origin.url}/img/alpha.png`,
  ].join('\n');
  const jpegJob = await submit(url, csv);
  const webpJob = await submit(url, csv, { format: 'webp' });
  const pngJob = await submit(url, csv, { format: 'png' });
  const avifJob = await submit(url, `${HEADER}\n1,Avif,${origin.url}/img/pic.webp\n`, {
    format: 'avif',
  });
  const expected: Array<[string, RegExp, string]> = [
    [jpegJob.request_id, /^image\/jpeg/, 'jpeg'],
    [webpJob.request_id, /^image\/webp/, 'webp'],
    [pngJob.request_id, /^image\/png/, 'png'],
    [avifJob.request_id, /^image\/avif/, 'heif'],
  ];
  for (const [id, contentType, format] of expected) {
    await waitForStatus(url, id);
    const { rows } = await downloadCsv(url, id);
    for (const row of rows.slice(1)) {
      const output = row[3] ?? '';
      t.match(output, new RegExp(`^${url}/processed_images/${id}/`), 'served under the job');
      const { res, body } = await fetchBytes(output);
      t.equal(res.status, 200, `${output} is served`);
      t.match(res.headers.get('content-type'), contentType, `${output} content type`);
      t.equal(Number(res.headers.get('content-length')), body.length);
      t.equal((await sharp(body).metadata()).format, format, `${output} decodes as ${format}`);
    }
  }
  const missing = await fetchBytes(`${url}/processed_images/${jpegJob.request_id}/99-1.jpg`);
  t.equal(missing.res.status, 404, 'an image that does not exist is 404');
});

t.test('path traversal out of the images dir is refused', async (t) => {
  // The temp dir holds data/ (the SQLite file or nothing), images/ and results/ side by side.
  const job = await submit(url, `${HEADER}\n1,a,${origin.url}/img/photo3.jpg\n`);
  await waitForStatus(url, job.request_id);
  const resultsName = `${job.request_id}.csv`;
  await fs.writeFile(path.join(service.root, 'secret.txt'), 'TOP-SECRET');
  const attempts = [
    '/processed_images/..%2f..%2fetc%2fpasswd',
    '/processed_images/..%2fsecret.txt',
    '/processed_images/%2e%2e%2fsecret.txt',
    '/processed_images/%2e%2e/secret.txt',
    '/processed_images/../secret.txt',
    `/processed_images/..%2fresults%2f${resultsName}`,
    `/processed_images/${job.request_id}/..%2f..%2fsecret.txt`,
    '/processed_images/..%5csecret.txt',
    '/processed_images/....//secret.txt',
  ];
  for (const attempt of attempts) {
    const res = await rawGet(attempt);
    t.ok([400, 403, 404].includes(res.status), `${attempt} is refused (${res.status})`);
    t.notMatch(res.body, /TOP-SECRET|root:|Serial Number/, `${attempt} leaks nothing`);
  }
});

t.test('parseCsv reads quoted cells, commas and CRLF', async (t) => {
  t.same(await parseCsv('a,"b, c","d ""e"""\r\n1,,3\r\n'), [
    ['a', 'b, c', 'd "e"'],
    ['1', '', '3'],
  ]);
});
