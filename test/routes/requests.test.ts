import t from 'tap';
import { addGate } from '../helpers/gate.js';
import { startOrigin } from '../helpers/origin.js';
import {
  getJson,
  productCsv,
  sleep,
  type StatusBody,
  startService,
  submit,
  timeout,
  uploadImage,
  waitForImage,
  waitForStatus,
} from '../helpers/service.js';

interface RequestsBody {
  total: number;
  offset: number;
  limit: number;
  requests: StatusBody[];
}

const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('recent jobs: newest first, filtered, paged, each as /status shows it', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  const { url } = service;
  const list = async (query = '') => {
    const res = await getJson(url, `/requests${query}`);
    t.equal(res.status, 200, `/requests${query} is 200`);
    return res.body as RequestsBody;
  };

  t.strictSame(await list(), { total: 0, offset: 0, limit: 20, requests: [] }, 'none yet');

  const done: string[] = [];
  for (const fixture of ['/img/photo1.jpg', '/img/pic.webp']) {
    const job = await submit(url, productCsv([[`${origin.url}${fixture}`]]));
    await waitForStatus(url, job.request_id);
    done.push(job.request_id);
  }
  const gate = addGate(origin, '/held.jpg', origin.fixtures['/img/photo2.jpg']);
  const running = await submit(url, productCsv([[`${origin.url}/held.jpg`]]));
  await gate.requested;
  await waitForStatus(url, running.request_id, 'PROCESSING');
  const newestFirst = [running.request_id, ...done.reverse()];

  const all = await list();
  t.match(all, { total: 3, offset: 0, limit: 20 });
  t.strictSame(
    all.requests.map((r) => r.request_id),
    newestFirst,
    'newest first',
  );
  for (const listed of all.requests) {
    const status = await getJson(url, `/status/${listed.request_id}`);
    t.strictSame(listed, status.body, `${listed.request_id} is its /status body`);
  }

  const processing = await list('?status=PROCESSING');
  t.equal(processing.total, 1);
  t.strictSame(
    processing.requests.map((r) => r.request_id),
    [running.request_id],
  );
  const completed = await list('?status=COMPLETED');
  t.equal(completed.total, 2);
  t.strictSame(
    completed.requests.map((r) => r.request_id),
    newestFirst.slice(1),
  );
  t.strictSame(await list('?status=FAILED'), { total: 0, offset: 0, limit: 20, requests: [] });

  const page = await list('?offset=1&limit=1');
  t.match(page, { total: 3, offset: 1, limit: 1 });
  t.strictSame(
    page.requests.map((r) => r.request_id),
    [newestFirst[1]],
  );
  const past = await list('?offset=3');
  t.strictSame(past, { total: 3, offset: 3, limit: 20, requests: [] });
  t.equal((await list('?limit=100')).limit, 100, 'limit=100 is allowed');

  gate.open();
  await waitForStatus(url, running.request_id);
  t.equal((await list('?status=COMPLETED')).total, 3, 'the released job completed');
});

t.test('direct uploads are listed with their kind, and filtered by it', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  const { url } = service;
  const list = async (query: string) => {
    const res = await getJson(url, `/requests${query}`);
    t.equal(res.status, 200, `/requests${query} is 200`);
    return res.body as RequestsBody;
  };
  const csv = await submit(url, productCsv([[`${origin.url}/img/photo1.jpg`]]));
  await waitForStatus(url, csv.request_id);
  const accepted = await uploadImage(url, origin.fixtures['/img/photo2.jpg'] as Buffer);
  const { id } = accepted.body as { id: string };
  await waitForImage(url, id);

  const all = await list('');
  t.strictSame(
    all.requests.map((r) => [r.request_id, r.kind]),
    [
      [id, 'image'],
      [csv.request_id, 'csv'],
    ],
  );
  t.strictSame(
    (await list('?kind=image')).requests.map((r) => r.request_id),
    [id],
  );
  const csvJobs = await list('?kind=csv&status=COMPLETED');
  t.match(csvJobs, { total: 1, requests: [{ request_id: csv.request_id, kind: 'csv' }] });
  t.strictSame(await list('?kind=image&status=PROCESSING'), {
    total: 0,
    offset: 0,
    limit: 20,
    requests: [],
  });
});

t.test('bad filters and paging are 400', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  for (const query of [
    'status=RECEIVING',
    'status=DONE',
    'status=completed',
    'limit=0',
    'limit=101',
    'limit=x',
    'offset=-1',
    'kind=pdf',
    'kind=CSV',
  ]) {
    const res = await getJson(service.url, `/requests?${query}`);
    t.equal(res.status, 400, `${query} is 400`);
    t.match(res.body, { error: /querystring/ }, `${query} names the query string`);
  }
});

t.test('a job whose CSV is still arriving is not listed', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  const boundary = 'requests-test-boundary';
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n` +
    `Content-Type: text/csv\r\n\r\n${productCsv([[`${origin.url}/img/photo1.jpg`]])}`;
  let finish: () => void = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(head));
      finish = () => {
        controller.enqueue(new TextEncoder().encode(`\r\n--${boundary}--\r\n`));
        controller.close();
      };
    },
  });
  const uploading = fetch(`${service.url}/upload`, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    body,
    duplex: 'half',
    signal: timeout(),
  } as RequestInit);

  // The service records the job as soon as the file part starts; it stays RECEIVING (and
  // unlisted) until the upload ends.
  const future = new Date(Date.now() + 3_600_000);
  const { store } = service.services;
  for (let i = 0; i < 200 && (await store.listAbandonedJobs(future)).length === 0; i++) {
    await sleep(25);
  }
  t.equal((await store.listAbandonedJobs(future)).length, 1, 'a RECEIVING job exists');
  t.strictSame((await getJson(service.url, '/requests')).body, {
    total: 0,
    offset: 0,
    limit: 20,
    requests: [],
  });

  finish();
  const accepted = await uploading;
  t.equal(accepted.status, 202);
  const { request_id: id } = (await accepted.json()) as { request_id: string };
  const listed = (await getJson(service.url, '/requests')).body as RequestsBody;
  t.equal(listed.total, 1);
  t.equal(listed.requests[0]?.request_id, id, 'listed once accepted');
});
