import fs from 'node:fs/promises';
import path from 'node:path';
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
  type StatusBody,
  startService,
  submit,
  type TapTest,
  type TestService,
  timeout,
  uploadImage,
  waitForImage,
  waitForStatus,
} from '../helpers/service.js';
import { startWebhookReceiver } from '../helpers/webhook.js';

const UNKNOWN = '0b9c5f5e-8c1a-4e4f-9d3e-2f1a6b7c8d9e';

const origin = await startOrigin();
t.teardown(() => origin.close());

async function deleteRequest(url: string, id: string, query = ''): Promise<HttpResult> {
  const res = await fetch(`${url}/requests/${id}${query}`, {
    method: 'DELETE',
    signal: timeout(),
  });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').includes('application/json');
  return { status: res.status, headers: res.headers, body: json ? JSON.parse(text) : text };
}

const exists = (file: string): Promise<boolean> =>
  fs.access(file).then(
    () => true,
    () => false,
  );

/**
 * Whether anything of the job is left: its records, its output images, its results CSV, a
 * direct upload's saved original.
 */
async function leftovers(service: TestService, id: string) {
  const { store } = service.services;
  return {
    job: await store.getJob(id),
    products: await store.listProducts(id, 0, 10),
    images: await store.listImages(id),
    imagesDir: await exists(path.join(service.config.imagesDir, id)),
    resultsCsv: await exists(path.join(service.config.resultsDir, `${id}.csv`)),
    upload: await exists(path.join(service.config.uploadsDir, id)),
  };
}

const NOTHING_LEFT = {
  job: null,
  products: [],
  images: [],
  imagesDir: false,
  resultsCsv: false,
  upload: false,
};

async function serve(t: TapTest, env: Record<string, string> = {}): Promise<TestService> {
  const service = await startService(env);
  t.teardown(() => service.close());
  return service;
}

t.test('unknown, malformed and bad force are 404 and 400', async (t) => {
  const { url } = await serve(t);
  const unknown = await deleteRequest(url, UNKNOWN);
  t.equal(unknown.status, 404);
  t.strictSame(unknown.body, { error: 'Request not found' });
  t.equal((await deleteRequest(url, UNKNOWN, '?force=true')).status, 404, 'forced too');
  const malformed = await deleteRequest(url, 'not-a-uuid');
  t.equal(malformed.status, 400);
  t.match(malformed.body, { error: /request id/i });
  const badForce = await deleteRequest(url, UNKNOWN, '?force=maybe');
  t.equal(badForce.status, 400);
  t.match(badForce.body, { error: /querystring/ });
});

t.test('a completed job: records, files and URLs are gone', async (t) => {
  const service = await serve(t);
  const { url } = service;
  const job = await submit(
    url,
    productCsv([[`${origin.url}/img/photo1.jpg`, `${origin.url}/status/404`]]),
  );
  const id = job.request_id;
  await waitForStatus(url, id);
  await downloadCsv(url, id);
  const outputUrl = (await getProducts(url, id)).products[0]?.output_urls[0];
  if (!outputUrl) throw new Error('no output image');
  t.equal((await fetchBytes(outputUrl)).res.status, 200, 'fixture: the output image is served');
  t.match(await leftovers(service, id), { imagesDir: true, resultsCsv: true }, 'fixture: files');

  const deleted = await deleteRequest(url, id);
  t.equal(deleted.status, 204);
  t.equal(deleted.body, '', 'no body');
  t.strictSame(await leftovers(service, id), NOTHING_LEFT);
  for (const gone of [`/status/${id}`, `/status/${id}/products`, `/download/${id}`]) {
    t.equal((await getJson(url, gone)).status, 404, `${gone} is 404`);
  }
  t.equal((await fetchBytes(outputUrl)).res.status, 404, 'the output image is no longer served');
  const listed = (await getJson(url, '/requests')).body as { requests: StatusBody[] };
  t.notOk(
    listed.requests.some((r) => r.request_id === id),
    'not listed',
  );
  t.equal((await deleteRequest(url, id)).status, 404, 'a second delete finds nothing');
});

t.test(
  'a direct upload: its saved original goes too, with its output and thumbnails',
  async (t) => {
    const service = await serve(t);
    const { url } = service;
    const accepted = await uploadImage(url, origin.fixtures['/img/photo1.jpg'] as Buffer);
    t.equal(accepted.status, 202);
    const { id } = accepted.body as { id: string };
    const image = await waitForImage(url, id);
    t.equal(image.status, 'processed', 'fixture: processed');
    const files = [image.output_url, image.thumbnails.small, image.thumbnails.medium];
    for (const file of files) {
      t.equal((await fetchBytes(file ?? '')).res.status, 200, `fixture: ${file} is served`);
    }
    t.match(await leftovers(service, id), { imagesDir: true, upload: true }, 'fixture: files');

    t.equal((await deleteRequest(url, id)).status, 204);
    t.strictSame(await leftovers(service, id), NOTHING_LEFT);
    for (const gone of [`/images/${id}`, `/images/${id}/thumbnails/small`, `/status/${id}`]) {
      t.equal((await getJson(url, gone)).status, 404, `${gone} is 404`);
    }
    for (const file of files) {
      t.equal((await fetchBytes(file ?? '')).res.status, 404, `${file} is no longer served`);
    }
    const listed = (await getJson(url, '/images')).body as { total: number };
    t.equal(listed.total, 0, 'not listed');
  },
);

t.test('409 for a running job unless forced', async (t) => {
  const { url } = await serve(t);
  const gate = addGate(origin, '/delete-409.jpg', origin.fixtures['/img/photo2.jpg']);
  const job = await submit(url, productCsv([[`${origin.url}/delete-409.jpg`]]));
  await gate.requested;
  await waitForStatus(url, job.request_id, 'PROCESSING');
  for (const query of ['', '?force=false']) {
    const refused = await deleteRequest(url, job.request_id, query);
    t.equal(refused.status, 409, `${query || 'no force'}: 409`);
    t.strictSame(refused.body, {
      error:
        'The job is PROCESSING: delete it once it has finished, or with ?force=true to cancel it',
      status: 'PROCESSING',
    });
  }
  gate.open();
  const done = await waitForStatus(url, job.request_id);
  t.equal(done.progress.images_processed, 1, 'the refused delete left the job alone');
  t.equal((await deleteRequest(url, job.request_id)).status, 204, 'deleted once finished');
});

t.test('force: images in flight are abandoned, other jobs go on, no webhook', async (t) => {
  // Six pool slots: four of the doomed job's images in flight (the per-host limit), two more
  // queued behind them, and the other job's images from a second origin beside them.
  const service = await serve(t, { CONCURRENCY: '6', PER_HOST_CONCURRENCY: '4' });
  const { url } = service;
  const other = await startOrigin();
  t.teardown(() => other.close());
  const hook = await startWebhookReceiver();
  t.teardown(() => hook.close());

  const photo = origin.fixtures['/img/photo2.jpg'];
  const gates = [1, 2, 3, 4, 5, 6].map((n) => addGate(origin, `/doomed-${n}.jpg`, photo));
  const doomed = await submit(
    url,
    productCsv([
      [`${origin.url}/img/photo1.jpg`],
      ...[1, 2, 3, 4, 5, 6].map((n) => [`${origin.url}/doomed-${n}.jpg`]),
    ]),
    { webhook_url: hook.url },
  );
  await Promise.all(gates.slice(0, 4).map((g) => g.requested));
  for (;;) {
    const first = (await getProducts(url, doomed.request_id)).products[0]?.images[0];
    if (first?.status === 'PROCESSED') break;
    await sleep(25);
  }
  t.match(
    await leftovers(service, doomed.request_id),
    { imagesDir: true },
    'fixture: one image of the doomed job is written, four are being downloaded',
  );

  const otherGate = addGate(other, '/kept.jpg', photo);
  const kept = await submit(
    url,
    productCsv([[`${other.url}/kept.jpg`], [`${other.url}/img/pic.webp`]]),
    { webhook_url: hook.url },
  );
  await otherGate.requested;

  const deleted = await deleteRequest(url, doomed.request_id, '?force=true');
  t.equal(deleted.status, 204);
  t.strictSame(await leftovers(service, doomed.request_id), NOTHING_LEFT, 'nothing left at 204');
  t.equal((await getJson(url, `/status/${doomed.request_id}`)).status, 404);

  for (const gate of gates) gate.open();
  otherGate.open();
  const done = await waitForStatus(url, kept.request_id);
  t.match(done.progress, { images_processed: 2, images_failed: 0 }, 'the other job completed');
  const [delivery] = await hook.waitFor(1);
  t.match(delivery?.body, { request_id: kept.request_id, status: 'COMPLETED' });

  t.equal(origin.hits('/doomed-5.jpg') + origin.hits('/doomed-6.jpg'), 0, 'queued: never fetched');
  t.strictSame(await leftovers(service, doomed.request_id), NOTHING_LEFT, 'and nothing came back');
  t.strictSame(
    hook.received.map((d) => (d.body as { request_id: string }).request_id),
    [kept.request_id],
    'no webhook for the deleted job',
  );
});

t.test('a deletion cut short is finished at the next start', async (t) => {
  let service = await startService();
  t.teardown(() => service.close());
  const job = await submit(service.url, productCsv([[`${origin.url}/img/photo3.jpg`]]));
  await waitForStatus(service.url, job.request_id);
  await downloadCsv(service.url, job.request_id);
  // As if the process had stopped right after the job became DELETING.
  t.ok(
    await service.services.store.markJobDeleting(job.request_id, ['COMPLETED'], new Date()),
    'fixture: DELETING',
  );
  t.equal((await getJson(service.url, `/status/${job.request_id}`)).status, 404, 'invisible');
  t.match(await leftovers(service, job.request_id), { imagesDir: true, resultsCsv: true });

  service = await service.restart();
  t.strictSame(await leftovers(service, job.request_id), NOTHING_LEFT);
});
