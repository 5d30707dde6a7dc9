import t from 'tap';
import { addGate } from '../helpers/gate.js';
import { moved, type Samples, scrape } from '../helpers/metrics.js';
import { startOrigin } from '../helpers/origin.js';
import {
  getProducts,
  productCsv,
  sleep,
  type StatusBody,
  startService,
  submit,
  waitForStatus,
} from '../helpers/service.js';
import { openEvents } from '../helpers/sse.js';
import { startWebhookReceiver } from '../helpers/webhook.js';

const REASONS = [
  'http_error',
  'timeout',
  'network',
  'refused',
  'too_large',
  'redirects',
  'not_image',
  'decode',
  'storage',
  'other',
];

/** Waits (bounded) until a scrape satisfies `ready`. */
async function scrapeUntil(url: string, ready: (s: Samples) => boolean): Promise<Samples> {
  let samples = await scrape(url);
  for (let i = 0; i < 400 && !ready(samples); i++) {
    await sleep(25);
    samples = await scrape(url);
  }
  return samples;
}

const origin = await startOrigin();
t.teardown(() => origin.close());

t.test(
  'a job with one good and one failing image moves the counters by exactly that',
  async (t) => {
    const receiver = await startWebhookReceiver();
    t.teardown(() => receiver.close());
    const service = await startService();
    t.teardown(() => service.close());
    const other = await startService();
    t.teardown(() => other.close());
    const { url } = service;

    const res = await fetch(`${url}/metrics`);
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const family of [
      'image_batch_images_processed_total counter',
      'image_batch_images_failed_total counter',
      'image_batch_image_bytes_in_total counter',
      'image_batch_image_bytes_out_total counter',
      'image_batch_download_duration_seconds histogram',
      'image_batch_encode_duration_seconds histogram',
      'image_batch_pool_queued_images gauge',
      'image_batch_pool_in_flight_images gauge',
      'image_batch_jobs gauge',
      'image_batch_webhook_deliveries_total counter',
      'image_batch_sse_clients gauge',
      'image_batch_sse_watched_jobs gauge',
      'process_resident_memory_bytes gauge',
    ]) {
      t.match(text, `# TYPE ${family}\n`, family);
    }

    const before = await scrape(url);
    const job = await submit(
      url,
      productCsv([[`${origin.url}/img/photo1.jpg`], [`${origin.url}/status/404`]]),
      { webhook_url: receiver.url },
    );
    await waitForStatus(url, job.request_id);
    for (let i = 0; i < 400; i++) {
      const status = (await fetch(`${url}/status/${job.request_id}`).then((r) =>
        r.json(),
      )) as StatusBody;
      if (status.webhook?.status === 'DELIVERED') break;
      await sleep(25);
    }
    const [good] = (await getProducts(url, job.request_id)).products[0]?.images ?? [];
    if (!good?.bytes_out) throw new Error('the good image has no output size');
    const delta = moved(before, await scrape(url));

    t.equal(delta.get('image_batch_images_processed_total'), 1, 'one image processed');
    for (const reason of REASONS) {
      const key = `image_batch_images_failed_total{reason="${reason}"}`;
      t.equal(delta.get(key), reason === 'http_error' ? 1 : 0, `failed, ${reason}`);
    }
    t.equal(
      delta.get('image_batch_image_bytes_in_total'),
      origin.fixtures['/img/photo1.jpg'].length,
      'bytes in: the good image (the 404 brought none)',
    );
    t.equal(delta.get('image_batch_image_bytes_out_total'), good.bytes_out, 'bytes out');
    t.equal(delta.get('image_batch_download_duration_seconds_count'), 1, 'one download timed');
    t.equal(delta.get('image_batch_encode_duration_seconds_count'), 1, 'one encode timed');
    t.ok((delta.get('image_batch_encode_duration_seconds_sum') ?? 0) > 0, 'encoding took time');
    t.equal(delta.get('image_batch_jobs{status="COMPLETED"}'), 1, 'one more job COMPLETED');
    t.equal(delta.get('image_batch_jobs{status="PENDING"}'), 0);
    t.equal(delta.get('image_batch_webhook_deliveries_total{outcome="delivered"}'), 1);
    t.equal(delta.get('image_batch_webhook_deliveries_total{outcome="retried"}'), 0);
    t.equal(delta.get('image_batch_webhook_deliveries_total{outcome="failed"}'), 0);

    const elsewhere = await scrape(other.url);
    t.equal(
      elsewhere.get('image_batch_images_processed_total'),
      0,
      'another service in the same process counts only its own work',
    );
  },
);

t.test('webhook calls that fail count as retried, then failed', async (t) => {
  const receiver = await startWebhookReceiver({ status: 500 });
  t.teardown(() => receiver.close());
  const service = await startService({ WEBHOOK_MAX_ATTEMPTS: '2' });
  t.teardown(() => service.close());
  const before = await scrape(service.url);
  const job = await submit(service.url, productCsv([[`${origin.url}/img/pic.webp`]]), {
    webhook_url: receiver.url,
  });
  await waitForStatus(service.url, job.request_id);
  const after = await scrapeUntil(
    service.url,
    (s) => s.get('image_batch_webhook_deliveries_total{outcome="failed"}') === 1,
  );
  const delta = moved(before, after);
  t.equal(delta.get('image_batch_webhook_deliveries_total{outcome="retried"}'), 1);
  t.equal(delta.get('image_batch_webhook_deliveries_total{outcome="failed"}'), 1);
  t.equal(delta.get('image_batch_webhook_deliveries_total{outcome="delivered"}'), 0);
  t.equal(receiver.received.length, 2, 'two calls were made');
});

t.test('the pool and the event streams, as they are at scrape time', async (t) => {
  const service = await startService({ CONCURRENCY: '1', PER_HOST_CONCURRENCY: '1' });
  t.teardown(() => service.close());
  const first = addGate(origin, '/pool-first.jpg', origin.fixtures['/img/photo1.jpg']);
  const second = addGate(origin, '/pool-second.jpg', origin.fixtures['/img/photo2.jpg']);
  t.teardown(() => {
    first.open();
    second.open();
  });
  const job = await submit(
    service.url,
    productCsv([[`${origin.url}/pool-first.jpg`], [`${origin.url}/pool-second.jpg`]]),
  );
  const busy = await scrapeUntil(
    service.url,
    (s) =>
      s.get('image_batch_pool_in_flight_images') === 1 &&
      s.get('image_batch_pool_queued_images') === 1,
  );
  t.equal(busy.get('image_batch_pool_in_flight_images'), 1, 'one image in the one slot');
  t.equal(busy.get('image_batch_pool_queued_images'), 1, 'the other waiting for it');
  t.equal(busy.get('image_batch_jobs{status="PROCESSING"}'), 1);

  const clients = [
    await openEvents(`${service.url}/status/${job.request_id}/events`),
    await openEvents(`${service.url}/status/${job.request_id}/events`),
  ];
  for (const client of clients) await client.next();
  const watched = await scrape(service.url);
  t.equal(watched.get('image_batch_sse_clients'), 2);
  t.equal(watched.get('image_batch_sse_watched_jobs'), 1, 'two clients, one watcher');
  for (const client of clients) client.abort();
  const left = await scrapeUntil(service.url, (s) => s.get('image_batch_sse_clients') === 0);
  t.equal(left.get('image_batch_sse_clients'), 0, 'the clients that left are gone');
  t.equal(left.get('image_batch_sse_watched_jobs'), 0, 'and so is the watcher');

  first.open();
  second.open();
  await waitForStatus(service.url, job.request_id);
  const idle = await scrapeUntil(
    service.url,
    (s) => s.get('image_batch_pool_in_flight_images') === 0,
  );
  t.equal(idle.get('image_batch_pool_in_flight_images'), 0);
  t.equal(idle.get('image_batch_pool_queued_images'), 0);
});
