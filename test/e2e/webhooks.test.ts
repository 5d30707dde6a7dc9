import { createHmac } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  getJson,
  type StatusBody,
  sleep,
  startService,
  submit,
  type TapTest,
  type TestService,
} from '../helpers/service.js';
import { startWebhookReceiver, type WebhookDelivery } from '../helpers/webhook.js';

const SECRET = 'whsec-test-0123456789abcdef';
const HEADER = 'Serial Number,Product Name,Input Image Urls';
// Quick retries, as the helper's defaults, but spelled out: the timings below rely on them.
const QUICK = { WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200' };

const origin = await startOrigin();
t.teardown(() => origin.close());
const oneImageCsv = `${HEADER}\n1,a,${origin.url}/img/pic.webp\n`;

type WebhookView = NonNullable<StatusBody['webhook']>;

/** A service that the subtest closes when it ends. */
async function serve(t: TapTest, env: Record<string, string> = {}): Promise<TestService> {
  const service = await startService({ ...QUICK, ...env });
  t.teardown(() => service.close());
  return service;
}

/** Polls /status until the job's webhook satisfies `done`. */
async function webhookWhen(
  url: string,
  id: string,
  done: (webhook: WebhookView) => boolean,
  timeoutMs = 15_000,
): Promise<WebhookView> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const body = (await getJson(url, `/status/${id}`)).body as StatusBody;
    last = body.webhook;
    if (body.webhook && done(body.webhook)) return body.webhook;
    if (Date.now() > deadline) {
      throw new Error(`webhook of ${id} not as expected in time; last: ${JSON.stringify(last)}`);
    }
    await sleep(25);
  }
}

const settled = (webhook: WebhookView): boolean => webhook.status !== 'PENDING';

type Verify = (secret: string, headers: IncomingHttpHeaders, rawBody: string) => boolean;

/** The signature check documented in the README, run as written there. */
async function readmeVerifier(t: TapTest): Promise<Verify> {
  const readme = await fs.readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((match) => match[1] ?? '')
    .find((code) => code.includes('export function verifyWebhook'));
  if (block === undefined) throw new Error('README has no verifyWebhook snippet');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ibs-verify-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'verify-webhook.mjs');
  await fs.writeFile(file, block);
  const module = (await import(pathToFileURL(file).href)) as { verifyWebhook: Verify };
  return module.verifyWebhook;
}

const header = (delivery: WebhookDelivery | undefined, name: string): string | undefined => {
  const value = delivery?.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

t.test('signed with WEBHOOK_SECRET', async (t) => {
  const service = await serve(t, { WEBHOOK_SECRET: SECRET });
  const hook = await startWebhookReceiver();
  t.teardown(() => hook.close());
  const job = await submit(service.url, oneImageCsv, { webhook_url: hook.url });
  const [delivery] = await hook.waitFor(1);
  if (delivery === undefined) throw new Error('no delivery');

  const timestamp = header(delivery, 'x-webhook-timestamp') ?? '';
  t.match(timestamp, /^\d+$/, 'X-Webhook-Timestamp is in whole seconds');
  t.ok(
    Math.abs(Date.now() / 1000 - Number(timestamp)) < 60,
    'X-Webhook-Timestamp is within a minute of now',
  );
  const signature = header(delivery, 'x-webhook-signature');
  const hmac = (secret: string) =>
    `v1=${createHmac('sha256', secret).update(`${timestamp}.${delivery.raw}`).digest('hex')}`;
  t.equal(signature, hmac(SECRET), 'v1=hex HMAC-SHA256 of "<timestamp>.<raw body>"');
  t.not(signature, hmac('another-secret-0123456789'), 'another secret gives another signature');
  t.equal(header(delivery, 'x-webhook-id'), job.request_id, 'X-Webhook-Id is the request id');
  t.equal(header(delivery, 'x-webhook-attempt'), '1', 'X-Webhook-Attempt is 1');

  const verify = await readmeVerifier(t);
  t.equal(verify(SECRET, delivery.headers, delivery.raw), true, 'the README check accepts it');
  t.equal(
    verify('another-secret-0123456789', delivery.headers, delivery.raw),
    false,
    'not another',
  );
  t.equal(
    verify(SECRET, delivery.headers, delivery.raw.replace('COMPLETED', 'FAILED')),
    false,
    'nor a changed body',
  );
  const replayed = { ...delivery.headers, 'x-webhook-timestamp': String(Number(timestamp) - 600) };
  t.equal(verify(SECRET, replayed, delivery.raw), false, 'nor a timestamp 10 minutes old');
});

t.test('without WEBHOOK_SECRET the call is unsigned but still identified', async (t) => {
  const service = await serve(t);
  const hook = await startWebhookReceiver();
  t.teardown(() => hook.close());
  const job = await submit(service.url, oneImageCsv, { webhook_url: hook.url });
  const [delivery] = await hook.waitFor(1);
  t.equal(header(delivery, 'x-webhook-signature'), undefined, 'no signature header');
  t.match(header(delivery, 'x-webhook-timestamp'), /^\d+$/, 'timestamped');
  t.equal(header(delivery, 'x-webhook-id'), job.request_id, 'X-Webhook-Id');
  t.equal(header(delivery, 'x-webhook-attempt'), '1', 'X-Webhook-Attempt');
});

t.test('500, 500, then 200: three deliveries, and /status shows each', async (t) => {
  const service = await serve(t, { WEBHOOK_MAX_ATTEMPTS: '6' });
  const hook = await startWebhookReceiver({ status: 500 });
  t.teardown(() => hook.close());
  // Switched in the same tick as the second call is answered, well before the retry (~100 ms).
  void hook.waitFor(2, 20_000).then(() => hook.setStatus(200));
  const job = await submit(service.url, oneImageCsv, { webhook_url: hook.url });

  const webhook = await webhookWhen(service.url, job.request_id, settled);
  t.match(webhook, {
    url: hook.url,
    status: 'DELIVERED',
    attempts: 3,
    last_error: null,
    next_attempt_at: null,
  });
  t.strictSame(
    webhook.attempts_log.map((a) => [a.attempt, a.http_status, a.error]),
    [
      [1, 500, 'HTTP 500'],
      [2, 500, 'HTTP 500'],
      [3, 200, null],
    ],
    'every attempt: number, HTTP status, error',
  );
  for (const entry of webhook.attempts_log) {
    t.ok(Number.isInteger(entry.duration_ms) && entry.duration_ms >= 0, 'duration recorded');
  }
  const times = webhook.attempts_log.map((a) => Date.parse(a.at));
  t.ok((times[1] ?? 0) - (times[0] ?? 0) >= 40, 'first retry after about the base (50 ms)');
  t.ok((times[2] ?? 0) - (times[1] ?? 0) >= 80, 'then about twice that');

  await sleep(500);
  t.equal(hook.received.length, 3, 'exactly three calls');
  t.strictSame(
    hook.received.map((d) => header(d, 'x-webhook-attempt')),
    ['1', '2', '3'],
    'X-Webhook-Attempt counts them',
  );
  t.equal(new Set(hook.received.map((d) => d.raw)).size, 1, 'the same body every time');
});

t.test('a receiver that always fails ends FAILED after WEBHOOK_MAX_ATTEMPTS', async (t) => {
  const service = await serve(t, { WEBHOOK_MAX_ATTEMPTS: '3' });
  const hook = await startWebhookReceiver({ status: 503 });
  t.teardown(() => hook.close());
  const job = await submit(service.url, oneImageCsv, { webhook_url: hook.url });

  const webhook = await webhookWhen(service.url, job.request_id, settled);
  t.match(webhook, {
    status: 'FAILED',
    attempts: 3,
    last_error: 'HTTP 503',
    next_attempt_at: null,
  });
  t.strictSame(
    webhook.attempts_log.map((a) => a.http_status),
    [503, 503, 503],
  );
  const status = (await getJson(service.url, `/status/${job.request_id}`)).body as StatusBody;
  t.equal(status.status, 'COMPLETED', 'a failed webhook does not fail the job');
  // Longer than the largest backoff (200 ms) and the dispatcher's poll (1 s) together.
  await sleep(1500);
  t.equal(hook.received.length, 3, 'no call after the last attempt');
});

t.test('network errors and timeouts are retried and recorded without a status', async (t) => {
  t.test('connection refused', async (t) => {
    const service = await serve(t, { WEBHOOK_MAX_ATTEMPTS: '2' });
    const closed = await startWebhookReceiver();
    await closed.close();
    const job = await submit(service.url, oneImageCsv, { webhook_url: closed.url });
    const webhook = await webhookWhen(service.url, job.request_id, settled);
    t.match(webhook, { status: 'FAILED', attempts: 2, last_error: /ECONNREFUSED/ });
    t.strictSame(
      webhook.attempts_log.map((a) => a.http_status),
      [null, null],
    );
  });

  t.test('no answer within WEBHOOK_TIMEOUT_MS', async (t) => {
    const calls: number[] = [];
    const sockets = new Set<Socket>();
    // Reads the request and never answers.
    const silent = createServer((req) => {
      calls.push(Date.now());
      req.resume();
    });
    silent.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          silent.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        }),
    );
    const { port } = silent.address() as AddressInfo;
    const service = await serve(t, { WEBHOOK_MAX_ATTEMPTS: '2', WEBHOOK_TIMEOUT_MS: '300' });
    const job = await submit(service.url, oneImageCsv, {
      webhook_url: `http://127.0.0.1:${port}/hook`,
    });
    const webhook = await webhookWhen(service.url, job.request_id, settled);
    t.match(webhook, { status: 'FAILED', attempts: 2, last_error: 'no answer within 300 ms' });
    t.strictSame(
      webhook.attempts_log.map((a) => a.http_status),
      [null, null],
    );
    for (const entry of webhook.attempts_log) {
      t.ok(entry.duration_ms >= 250, `attempt ${entry.attempt} waited for the timeout`);
    }
    t.equal(calls.length, 2, 'the receiver saw both attempts');
  });
});

t.test('a delivery pending at restart is sent by the next service, once', async (t) => {
  // A long first backoff, so the retry is still waiting when the service stops.
  let service = await startService({
    WEBHOOK_RETRY_BASE_MS: '3000',
    WEBHOOK_RETRY_MAX_MS: '3000',
  });
  t.teardown(() => service.close());
  const hook = await startWebhookReceiver({ status: 500 });
  t.teardown(() => hook.close());
  const job = await submit(service.url, oneImageCsv, { webhook_url: hook.url });

  const waiting = await webhookWhen(service.url, job.request_id, (w) => w.attempts === 1);
  t.match(waiting, { status: 'PENDING', attempts: 1, last_error: 'HTTP 500' });
  const due = Date.parse(waiting.next_attempt_at ?? '');
  t.ok(due > Date.now(), 'the retry is scheduled in the future');

  hook.setStatus(200);
  service = await service.restart();
  t.equal(hook.received.length, 1, 'nothing sent while stopping or starting');

  const webhook = await webhookWhen(service.url, job.request_id, settled);
  t.match(webhook, { status: 'DELIVERED', attempts: 2, next_attempt_at: null });
  t.strictSame(
    webhook.attempts_log.map((a) => a.http_status),
    [500, 200],
    'the log carries over the restart',
  );
  const resent = Date.parse(webhook.attempts_log[1]?.at ?? '');
  t.ok(resent >= due, 'sent when it fell due, not before');
  await sleep(1500);
  t.equal(hook.received.length, 2, 'one call by each service');
  t.equal(header(hook.received[1], 'x-webhook-attempt'), '2', 'sent as attempt 2');
});

t.test('a stop cuts off a hanging call, which the next start retries', async (t) => {
  let hang = true;
  const calls: string[] = [];
  const sockets = new Set<Socket>();
  // The first call is never answered; later ones get a 200.
  const receiver = createServer((req, res) => {
    calls.push(String(req.headers['x-webhook-attempt']));
    req.resume();
    if (hang) return;
    res.writeHead(200).end();
  });
  receiver.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        receiver.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  );
  const { port } = receiver.address() as AddressInfo;
  let service = await startService({ ...QUICK, WEBHOOK_TIMEOUT_MS: '60000' });
  t.teardown(() => service.close());
  const job = await submit(service.url, oneImageCsv, {
    webhook_url: `http://127.0.0.1:${port}/hook`,
  });
  for (let i = 0; i < 200 && calls.length === 0; i++) await sleep(25);
  t.strictSame(calls, ['1'], 'the first call is in flight');

  hang = false;
  const stopping = Date.now();
  service = await service.restart({}, { stopDeadlineMs: 200 });
  t.ok(Date.now() - stopping < 5000, 'the stop did not wait for the 60 s call timeout');

  const webhook = await webhookWhen(service.url, job.request_id, settled);
  t.match(webhook, { status: 'DELIVERED', attempts: 2 });
  t.strictSame(
    webhook.attempts_log.map((a) => [a.http_status, a.error]),
    [
      [null, 'interrupted by shutdown'],
      [200, null],
    ],
    'the cut-off call counts as an attempt',
  );
  t.strictSame(calls, ['1', '2'], 'retried once by the next start');
});

t.test(
  'two services on one store make each attempt once',
  {
    // FerretDB v1 does not apply findAndModify atomically across connections (see README),
    // so two stores in one process can both win a claim there; MongoDB itself can't.
    skip: process.env.MONGODB_URI ? 'needs atomic updates across connections' : false,
  },
  async (t) => {
    const first = await startService({ ...QUICK, WEBHOOK_MAX_ATTEMPTS: '4' });
    const second = await startService(
      { ...QUICK, WEBHOOK_MAX_ATTEMPTS: '4' },
      { reuseRoot: first.root, reuseDbName: first.dbName },
    );
    t.teardown(async () => {
      await second.close({ keep: true });
      await first.close();
    });
    const hook = await startWebhookReceiver({ status: 500 });
    t.teardown(() => hook.close());
    void hook.waitFor(3, 20_000).then(() => hook.setStatus(200));
    const jobs = await Promise.all(
      [first, second].map((service) =>
        submit(service.url, `${HEADER}\n1,a,${origin.url}/img/photo1.jpg\n`, {
          webhook_url: hook.url,
        }),
      ),
    );
    for (const job of jobs) await webhookWhen(first.url, job.request_id, settled);
    await sleep(1500);
    for (const job of jobs) {
      const calls = hook.received
        .filter((d) => header(d, 'x-webhook-id') === job.request_id)
        .map((d) => header(d, 'x-webhook-attempt'));
      const attempts = calls.map(Number).sort((a, b) => a - b);
      t.strictSame(attempts, [...new Set(attempts)], `${job.request_id}: no attempt sent twice`);
      const webhook = await webhookWhen(first.url, job.request_id, settled);
      t.equal(webhook.status, 'DELIVERED', `${job.request_id}: delivered`);
      t.equal(calls.length, webhook.attempts, 'one call per recorded attempt');
    }
  },
);
