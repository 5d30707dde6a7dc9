import t from 'tap';
import { addGate } from '../helpers/gate.js';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getJson,
  getProducts,
  type HttpResult,
  productCsv,
  sleep,
  splitOutputs,
  type StatusBody,
  startService,
  submit,
  type TapTest,
  type TestService,
  timeout,
  waitForStatus,
} from '../helpers/service.js';
import { startWebhookReceiver, type WebhookDelivery } from '../helpers/webhook.js';

const UNKNOWN = '0b9c5f5e-8c1a-4e4f-9d3e-2f1a6b7c8d9e';

const origin = await startOrigin();
t.teardown(() => origin.close());

async function retryFailed(url: string, id: string): Promise<HttpResult> {
  const res = await fetch(`${url}/requests/${id}/retry-failed`, {
    method: 'POST',
    signal: timeout(),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function serve(t: TapTest): Promise<TestService> {
  const service = await startService();
  t.teardown(() => service.close());
  return service;
}

const header = (delivery: WebhookDelivery | undefined, name: string) => delivery?.headers[name];

t.test('unknown is 404, malformed 400', async (t) => {
  const { url } = await serve(t);
  const unknown = await retryFailed(url, UNKNOWN);
  t.equal(unknown.status, 404);
  t.strictSame(unknown.body, { error: 'Request not found' });
  const malformed = await retryFailed(url, 'not-a-uuid');
  t.equal(malformed.status, 400);
  t.match(malformed.body, { error: /request id/i });
});

t.test('409 for a job still running, and for one with nothing failed', async (t) => {
  const { url } = await serve(t);
  const gate = addGate(origin, '/retry-held.jpg', origin.fixtures['/img/photo2.jpg']);
  const running = await submit(url, productCsv([[`${origin.url}/retry-held.jpg`]]));
  await gate.requested;
  await waitForStatus(url, running.request_id, 'PROCESSING');
  const busy = await retryFailed(url, running.request_id);
  t.equal(busy.status, 409);
  t.strictSame(busy.body, {
    error: "The job is PROCESSING: only a COMPLETED job's failed images can be retried",
    status: 'PROCESSING',
  });

  gate.open();
  await waitForStatus(url, running.request_id);
  const clean = await retryFailed(url, running.request_id);
  t.equal(clean.status, 409);
  t.strictSame(clean.body, { error: 'The job has no failed images to retry', status: 'COMPLETED' });
});

t.test(
  'failures retried once the origin recovers: completed again, a second webhook',
  async (t) => {
    const service = await serve(t);
    const { url } = service;
    const hook = await startWebhookReceiver();
    t.teardown(() => hook.close());
    // 404 until recovered; then the image, once released, so that the retried job is held
    // PROCESSING for as long as the test needs.
    const photo = origin.fixtures['/img/photo2.jpg'];
    let recovered = false;
    const held: Array<() => void> = [];
    for (const flaky of ['/flaky-a.jpg', '/flaky-b.jpg']) {
      origin.add(flaky, (_req, res) => {
        if (!recovered) {
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          res.end('not yet');
          return;
        }
        held.push(() => {
          res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': photo.length });
          res.end(photo);
        });
      });
    }
    const job = await submit(
      url,
      productCsv([
        [`${origin.url}/img/photo1.jpg`, `${origin.url}/flaky-a.jpg`],
        [`${origin.url}/flaky-b.jpg`],
        [`${origin.url}/img/photo3.jpg`],
      ]),
      { webhook_url: hook.url },
    );
    const id = job.request_id;
    const first = await waitForStatus(url, id);
    t.match(first.progress, { images_processed: 2, images_failed: 2 }, 'fixture: two failed');
    const [firstDelivery] = await hook.waitFor(1);
    t.equal(header(firstDelivery, 'x-webhook-id'), id, 'first round: the request id');
    const before = await downloadCsv(url, id);
    t.match(before.rows[2]?.[4], /flaky-b\.jpg: HTTP 404/, 'fixture: the CSV has the failure');
    const outputsBefore = (await getProducts(url, id)).products.flatMap((p) => p.output_urls);

    recovered = true;
    // Two at once: one re-opens the job, the other finds it PROCESSING.
    const [a, b] = await Promise.all([retryFailed(url, id), retryFailed(url, id)]);
    const accepted = a?.status === 202 ? a : b;
    t.strictSame([a?.status, b?.status].sort(), [202, 409], 'one retry is accepted');
    t.match((a?.status === 202 ? b : a)?.body, { status: 'PROCESSING' });
    const reopened = accepted?.body as StatusBody;
    t.match(reopened, {
      request_id: id,
      status: 'PROCESSING',
      completed_at: null,
      download_url: null,
      progress: { images_total: 4, images_processed: 2, images_failed: 0, products_done: 1 },
      webhook: { status: 'PENDING', attempts: 0, attempts_log: [], next_attempt_at: null },
    });

    t.equal((await getJson(url, `/download/${id}`)).status, 409, 'no results while re-opened');
    for (;;) {
      for (const send of held.splice(0)) send();
      const status = (await getJson(url, `/status/${id}`)).body as StatusBody;
      if (status.status === 'COMPLETED') break;
      await sleep(25);
    }
    const second = await waitForStatus(url, id);
    t.match(second.progress, {
      images_processed: 4,
      images_failed: 0,
      products_done: 3,
      percent: 100,
    });
    t.ok(Date.parse(second.completed_at ?? '') > Date.parse(first.completed_at ?? ''), 'later');

    const products = (await getProducts(url, id)).products;
    t.strictSame(
      products.flatMap((p) => p.images.map((i) => i.status)),
      ['PROCESSED', 'PROCESSED', 'PROCESSED', 'PROCESSED'],
    );
    const outputs = products.flatMap((p) => p.output_urls);
    t.equal(outputs[0], outputsBefore[0], 'what had worked is untouched');
    for (const output of outputs) {
      t.equal((await fetchBytes(output ?? '')).res.status, 200, `${output} is served`);
    }
    const after = await downloadCsv(url, id);
    t.strictSame(
      after.rows.slice(1).map((row) => splitOutputs(row[3] ?? '')),
      [outputs.slice(0, 2), [outputs[2]], [outputs[3]]],
      'the results CSV is rewritten with every output',
    );
    t.strictSame(
      after.rows.slice(1).map((row) => row[4]),
      ['', '', ''],
      'and no errors',
    );

    const deliveries = await hook.waitFor(2);
    t.equal(deliveries.length, 2, 'one more delivery');
    const again = deliveries[1];
    t.equal(header(again, 'x-webhook-id'), `${id}.2`, 'a new delivery id');
    t.equal(header(again, 'x-webhook-attempt'), '1', 'with fresh attempts');
    t.match(again?.body, {
      request_id: id,
      status: 'COMPLETED',
      images_processed: 4,
      images_failed: 0,
      completed_at: second.completed_at,
    });
    const settled = (await getJson(url, `/status/${id}`)).body as StatusBody;
    t.match(settled.webhook, { status: 'DELIVERED', attempts: 1 });

    const stats = (await getJson(url, '/stats')).body as { all_time: object };
    t.match(stats.all_time, { images_processed: 4, images_failed: 2 }, 'each run counted');
    const nothingLeft = await retryFailed(url, id);
    t.equal(nothingLeft.status, 409, 'nothing left to retry');
  },
);
