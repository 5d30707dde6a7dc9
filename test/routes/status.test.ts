import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  getJson,
  type ProductsBody,
  type StatusBody,
  sleep,
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

t.test('unknown and malformed ids', async (t) => {
  for (const path of [`/status/${UNKNOWN}`, `/status/${UNKNOWN}/products`]) {
    const res = await getJson(url, path);
    t.equal(res.status, 404, `${path} is 404`);
    t.same(res.body, { error: 'Request not found' }, `${path} body`);
    t.match(res.headers.get('content-type'), /application\/json/);
  }
  const malformed = [
    'not-a-uuid',
    '12345',
    `${UNKNOWN}x`,
    UNKNOWN.replace(/-/g, ''),
    "1' OR '1'='1",
  ];
  for (const id of malformed) {
    for (const path of [
      `/status/${encodeURIComponent(id)}`,
      `/status/${encodeURIComponent(id)}/products`,
      `/download/${encodeURIComponent(id)}`,
    ]) {
      const res = await getJson(url, path);
      t.equal(res.status, 400, `${path} is 400`);
      t.match(res.body, { error: /request id/i }, `${path} says the id is malformed`);
    }
  }
});

t.test('progress moves during a job, then the finished job', async (t) => {
  // One image is quick, the other stalls until DOWNLOAD_TIMEOUT_MS (3 s) runs out.
  const csv = `${HEADER}\n1,Quick,${origin.url}/img/photo1.jpg\n2,Stalled,${origin.url}/slow\n`;
  const job = await submit(url, csv);
  const id = job.request_id;

  const first = await getJson(url, `/status/${id}`);
  t.equal(first.status, 200);
  const early = first.body as StatusBody;
  t.match(early, {
    request_id: id,
    status: /^(PENDING|PROCESSING)$/,
    completed_at: null,
    download_url: null,
    webhook: null,
    progress: { products_total: 2, images_total: 2 },
  });
  t.ok(!Number.isNaN(Date.parse(early.created_at)), 'created_at is a date');

  // Midway: the quick image is done and counted while the slow one is still running.
  let mid: StatusBody | undefined;
  for (let i = 0; i < 200 && mid === undefined; i++) {
    const body = (await getJson(url, `/status/${id}`)).body as StatusBody;
    if (body.progress.images_processed === 1) mid = body;
    else await sleep(25);
  }
  if (mid === undefined) throw new Error('never saw the quick image counted');
  t.match(mid, {
    status: 'PROCESSING',
    completed_at: null,
    download_url: null,
    progress: {
      products_total: 2,
      products_done: 1,
      images_total: 2,
      images_processed: 1,
      images_failed: 0,
      percent: 50,
    },
  });

  const midProducts = (await getJson(url, `/status/${id}/products`)).body as ProductsBody;
  t.match(midProducts.products[0]?.images, [{ status: 'PROCESSED' }]);
  t.match(midProducts.products[1]?.images, [{ status: 'PROCESSING', output_url: null }]);

  const done = await waitForStatus(url, id);
  t.match(done, {
    request_id: id,
    status: 'COMPLETED',
    download_url: `${url}/download/${id}`,
    webhook: null,
    progress: {
      products_total: 2,
      products_done: 2,
      images_total: 2,
      images_processed: 1,
      images_failed: 1,
      percent: 100,
    },
  });
  const created = Date.parse(done.created_at);
  const completed = Date.parse(done.completed_at ?? '');
  t.ok(completed >= created, 'completed_at is not before created_at');
  t.ok(Date.parse(done.updated_at) >= completed - 1, 'updated_at is at or after completion');
});

t.test('products: per-image detail and paging', async (t) => {
  const csv = [
    `${HEADER},Colour`,
    `A-1,First,"${origin.url}/img/photo1.jpg, ${origin.url}/status/404",red`,
    `A-2,Second,${origin.url}/img/pic.webp,green`,
    `A-3,Third,"${origin.url}/img/alpha.png, ${origin.url}/img/photo1.jpg",blue`,
  ].join('\n');
  const job = await submit(url, csv);
  const id = job.request_id;
  t.equal(job.images, 4, 'photo1 is counted once');
  await waitForStatus(url, id);

  const all = await getJson(url, `/status/${id}/products`);
  t.equal(all.status, 200);
  const body = all.body as ProductsBody;
  t.match(body, { request_id: id, offset: 0, limit: 100, total: 3 });
  t.equal(body.products.length, 3);
  const [first, second, third] = body.products;
  t.match(first, {
    row: 1,
    serial: 'A-1',
    name: 'First',
    input_urls: [`${origin.url}/img/photo1.jpg`, `${origin.url}/status/404`],
  });
  const ok = first?.images[0];
  const failed = first?.images[1];
  t.match(ok, {
    url: `${origin.url}/img/photo1.jpg`,
    status: 'PROCESSED',
    bytes_in: origin.fixtures['/img/photo1.jpg'].length,
    error: null,
  });
  t.match(ok?.output_url, new RegExp(`^${url}/processed_images/${id}/`));
  t.ok((ok?.bytes_out ?? 0) > 0, 'bytes_out recorded');
  t.ok((ok?.bytes_out ?? 0) < (ok?.bytes_in ?? 0), 'the output is smaller than the input');
  t.match(failed, {
    url: `${origin.url}/status/404`,
    status: 'FAILED',
    output_url: null,
    bytes_out: null,
    error: /404/,
  });
  t.same(first?.output_urls, [ok?.output_url, null], 'output_urls line up with input_urls');
  t.match(second, { row: 2, serial: 'A-2', name: 'Second', images: [{ status: 'PROCESSED' }] });
  t.equal(third?.images[1]?.output_url, ok?.output_url, 'a repeated URL shares its output');

  const page = (await getJson(url, `/status/${id}/products?offset=1&limit=1`)).body as ProductsBody;
  t.match(page, { offset: 1, limit: 1, total: 3 });
  t.equal(page.products.length, 1);
  t.same(page.products[0], second, 'offset 1 limit 1 is the second product');

  const tail = (await getJson(url, `/status/${id}/products?offset=2&limit=5`)).body as ProductsBody;
  t.same(
    tail.products.map((p) => p.serial),
    ['A-3'],
  );
  const past = (await getJson(url, `/status/${id}/products?offset=10`)).body as ProductsBody;
  t.same(past.products, [], 'an offset past the end is an empty page');
  t.equal(past.total, 3);

  for (const query of [
    'limit=0',
    'limit=10000',
    'limit=501',
    'offset=-1',
    'limit=abc',
    'offset=x',
  ]) {
    const res = await getJson(url, `/status/${id}/products?${query}`);
    t.equal(res.status, 400, `${query} is 400`);
    t.match(res.body, { error: /querystring/ }, `${query} names the query string`);
  }
  const max = await getJson(url, `/status/${id}/products?limit=500`);
  t.equal(max.status, 200, 'limit=500 is allowed');
});

t.test('a completed job survives a restart', async (t) => {
  let current = await startService();
  t.teardown(() => current.close());
  const job = await submit(current.url, `${HEADER}\n1,a,${origin.url}/img/pic.webp\n`);
  const before = await waitForStatus(current.url, job.request_id);
  const csvBefore = await downloadCsv(current.url, job.request_id);

  current = await current.restart();
  const after = await getJson(current.url, `/status/${job.request_id}`);
  t.equal(after.status, 200);
  t.same(after.body, before, 'the same status after a restart');
  const csvAfter = await downloadCsv(current.url, job.request_id);
  t.equal(csvAfter.text, csvBefore.text, 'the same results CSV after a restart');
});
