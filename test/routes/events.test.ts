import { randomUUID } from 'node:crypto';
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
  type TestService,
  waitForStatus,
} from '../helpers/service.js';
import { openEvents, type SseFrame } from '../helpers/sse.js';

const TOKEN = 'events-token-0123456789abcdef';

const origin = await startOrigin();
t.teardown(() => origin.close());
const service = await startService();
t.teardown(() => service.close());
const { url } = service;

const body = (frame: SseFrame | null): StatusBody => JSON.parse(frame?.data ?? 'null');
const status = async (id: string) => (await getJson(url, `/status/${id}`)).body as StatusBody;

/** Waits (bounded) until the service has noticed what the test did to its streams. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await sleep(25);
  if (!condition()) throw new Error(`never happened: ${what}`);
}

t.test('unknown and malformed ids are answered before any stream starts', async (t) => {
  const unknown = await openEvents(`${url}/status/${randomUUID()}/events`);
  t.equal(unknown.res.status, 404);
  t.match(unknown.res.headers.get('content-type'), /application\/json/);
  t.same(await unknown.res.json(), { error: 'Request not found' });

  const malformed = await openEvents(`${url}/status/not-a-uuid/events`);
  t.equal(malformed.res.status, 400);
  t.match(await malformed.res.json(), { error: /request id/i });
});

t.test('a finished job: progress, then done, then the end of the stream', async (t) => {
  const job = await submit(url, productCsv([[`${origin.url}/img/photo1.jpg`]]));
  const final = await waitForStatus(url, job.request_id);

  const events = await openEvents(`${url}/status/${job.request_id}/events`);
  t.equal(events.res.status, 200);
  t.match(events.res.headers.get('content-type'), /^text\/event-stream/);
  t.equal(events.res.headers.get('cache-control'), 'no-cache');
  const frames = await events.rest();
  t.strictSame(
    frames.map((f) => [f.event, f.id]),
    [
      ['progress', '1'],
      ['done', '2'],
    ],
  );
  t.strictSame(body(frames[0] ?? null), final, 'progress carries the /status body');
  t.strictSame(body(frames[1] ?? null), final, 'done carries it too');
  t.equal(service.services.watchers.watchedJobs, 0, 'a finished job needs no watcher');
});

t.test('a running job: progress at once, as it changes, then done', async (t) => {
  const gate = addGate(origin, '/running-held.jpg', origin.fixtures['/img/photo2.jpg']);
  const job = await submit(
    url,
    productCsv([[`${origin.url}/img/photo1.jpg`], [`${origin.url}/running-held.jpg`]]),
  );
  const events = await openEvents(`${url}/status/${job.request_id}/events`);
  t.equal(events.res.status, 200);
  const first = await events.next();
  if (first === null) throw new Error('the stream ended at once');
  t.match(first, { event: 'progress', id: '1' }, 'the current state comes at once');
  t.match(body(first), { request_id: job.request_id, progress: { images_total: 2 } });

  // The quick image lands while the held one keeps the job running.
  const seen = [first];
  while (body(seen.at(-1) ?? null).progress.images_processed < 1) {
    const frame = await events.next();
    if (frame === null) throw new Error('the stream ended before the first image landed');
    seen.push(frame);
  }
  t.match(body(seen.at(-1) ?? null), {
    status: 'PROCESSING',
    progress: { images_processed: 1, products_done: 1, percent: 50 },
  });
  t.equal(service.services.watchers.watchedJobs, 1, 'one watcher for the job');

  gate.open();
  seen.push(...(await events.rest()));
  const final = await status(job.request_id);
  t.equal(final.status, 'COMPLETED');
  const last = seen.at(-1);
  t.match(last, { event: 'done' }, 'done is the last event');
  t.strictSame(body(last ?? null), final, 'done carries the final /status body');
  t.ok(
    seen.slice(0, -1).every((f) => f.event === 'progress'),
    'every event before done is progress',
  );
  t.strictSame(
    seen.map((f) => f.id),
    seen.map((_, i) => String(i + 1)),
    'ids count up from 1',
  );
  const progress = seen.slice(0, -1).map((f) => f.data);
  t.equal(new Set(progress).size, progress.length, 'a progress event is sent only on a change');
  const percents = seen.map((f) => body(f).progress.percent);
  t.strictSame(
    percents,
    [...percents].sort((a, b) => a - b),
    'percent never goes back',
  );
  await until(() => service.services.watchers.watchedJobs === 0, 'the watcher ended');
});

t.test('clients of one job share its watcher; a client that leaves is cleaned up', async (t) => {
  const { watchers } = service.services;
  const gateA = addGate(origin, '/shared-a.jpg', origin.fixtures['/img/photo1.jpg']);
  const gateB = addGate(origin, '/shared-b.jpg', origin.fixtures['/img/photo1.jpg']);
  t.teardown(() => {
    gateA.open();
    gateB.open();
  });
  const jobA = await submit(url, productCsv([[`${origin.url}/shared-a.jpg`]]));
  const jobB = await submit(url, productCsv([[`${origin.url}/shared-b.jpg`]]));

  const clients = [];
  for (const id of [jobA.request_id, jobA.request_id, jobA.request_id, jobB.request_id]) {
    const client = await openEvents(`${url}/status/${id}/events`);
    t.match(await client.next(), { event: 'progress' });
    clients.push(client);
  }
  t.equal(watchers.watchedJobs, 2, 'three clients of A and one of B: two watchers');
  t.equal(watchers.listenerCount, 4);

  const [a1, a2, a3, b1] = clients;
  a1?.abort();
  await until(() => watchers.listenerCount === 3, 'the first client of A was dropped');
  t.equal(watchers.watchedJobs, 2, "A's watcher stays while A has clients");
  a2?.abort();
  a3?.abort();
  await until(() => watchers.watchedJobs === 1, "A's watcher ended with its last client");
  t.equal(watchers.listenerCount, 1, 'only the client of B is left');
  b1?.abort();
  await until(() => watchers.watchedJobs === 0, "B's watcher ended");
});

t.test('with API_TOKEN the stream needs the bearer token', async (t) => {
  const secured = await startService({ API_TOKEN: TOKEN });
  t.teardown(() => secured.close());
  const form = new FormData();
  form.append('file', new Blob([productCsv([[`${origin.url}/img/photo1.jpg`]])]), 'p.csv');
  const upload = await fetch(`${secured.url}/upload`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(upload.status, 202);
  const job = (await upload.json()) as { request_id: string };
  const path = `${secured.url}/status/${job.request_id}/events`;
  const anonymous = await openEvents(path);
  t.equal(anonymous.res.status, 401);
  t.match(await anonymous.res.json(), { error: /bearer token/i });
  t.equal(
    (await openEvents(path, { authorization: 'Bearer wrong-token-0123456789' })).res.status,
    401,
  );

  const authorised = await openEvents(path, { authorization: `Bearer ${TOKEN}` });
  t.equal(authorised.res.status, 200);
  const frames = await authorised.rest();
  t.match(frames.at(-1), { event: 'done' });
  t.match(body(frames.at(-1) ?? null), { request_id: job.request_id, status: 'COMPLETED' });
});

t.test('closing the service ends open streams instead of waiting for them', async (t) => {
  let closing: TestService | null = await startService();
  t.teardown(() => closing?.close());
  const gate = addGate(origin, '/shutdown-held.jpg', origin.fixtures['/img/photo1.jpg']);
  t.teardown(() => gate.open());
  const job = await submit(closing.url, productCsv([[`${origin.url}/shutdown-held.jpg`]]));
  const events = await openEvents(`${closing.url}/status/${job.request_id}/events`);
  t.match(await events.next(), { event: 'progress' });
  await gate.requested;

  await closing.close();
  t.equal(closing.services.watchers.watchedJobs, 0, 'no watcher is left');
  closing = null;
  t.strictSame(await events.rest(), [], 'the stream ended without a done event');
});
