import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  getJson,
  getProducts,
  productCsv,
  type StatusBody,
  sleep,
  splitOutputs,
  startService,
  submit,
  waitForStatus,
} from '../helpers/service.js';
import { startWebhookReceiver } from '../helpers/webhook.js';

/**
 * The outbound URL policy end to end: the service may reach one allowlisted loopback
 * origin and nothing else on this machine. Every other target is a loopback server that
 * counts TCP connections, so "refused" is proven by zero connections, not just by a
 * message. Nothing here sends a packet to a non-loopback address.
 */

interface Trap {
  port: number;
  url: string;
  connections: number;
  requests: number;
  close(): Promise<void>;
}

/** An HTTP server on a loopback address, serving `body` on every path and counting. */
async function startTrap(host: string, body: Buffer): Promise<Trap> {
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => {
    trap.requests++;
    res.writeHead(200, { 'content-type': 'image/webp', 'content-length': String(body.length) });
    res.end(body);
  });
  server.on('connection', (socket) => {
    trap.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const trap: Trap = {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    connections: 0,
    requests: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
  return trap;
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const origin = await startOrigin();
t.teardown(() => origin.close());
const webp = origin.fixtures['/img/pic.webp'];
const second = await startTrap('127.0.0.1', webp);
t.teardown(() => second.close());
// Other loopback addresses; a machine without ::1 simply has no server there.
const other4 = await startTrap('127.0.0.2', webp);
t.teardown(() => other4.close());
const other6 = await startTrap('::1', webp).catch(() => null);
t.teardown(() => other6?.close());
const nobody = await closedPort();

const originPort = new URL(origin.url).port;
const sp = second.port;
origin.add('/hop/second', {
  status: 302,
  body: Buffer.alloc(0),
  headers: { Location: `${second.url}/via-hop.webp` },
});
origin.add('/hop/localhost', {
  status: 302,
  body: Buffer.alloc(0),
  headers: { Location: `http://localhost:${sp}/via-localhost.webp` },
});
origin.add('/hop/closed', {
  status: 302,
  body: Buffer.alloc(0),
  headers: { Location: `http://127.0.0.1:${nobody}/x.jpg` },
});
origin.add('/hop/self', {
  status: 302,
  body: Buffer.alloc(0),
  headers: { Location: '/img/pic.webp' },
});

const env = {
  ALLOW_PRIVATE_NETWORKS: 'false',
  OUTBOUND_ALLOWLIST: `127.0.0.1:${originPort}`,
  // Retries allowed, to show that a refusal is final and is not retried.
  WEBHOOK_MAX_ATTEMPTS: '3',
};

const WAY_OUT = '\\(set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow\\)';
/** The policy's refusal: "connection refused" from a closed port must not pass for it. */
const refused = (what: string): RegExp => new RegExp(`refused: ${what}.* ${WAY_OUT}`);

async function settledWebhook(url: string, id: string): Promise<StatusBody> {
  for (let i = 0; i < 300; i++) {
    const body = (await getJson(url, `/status/${id}`)).body as StatusBody;
    if (body.status === 'COMPLETED' && body.webhook?.status !== 'PENDING') return body;
    await sleep(50);
  }
  throw new Error(`webhook of ${id} never left PENDING`);
}

t.test('only the allowlisted origin is reached; every other address is refused', async (t) => {
  const service = await startService(env);
  t.teardown(() => service.close());
  t.strictSame(service.config.outboundAllowlist, [`127.0.0.1:${originPort}`]);
  t.equal(service.config.allowPrivateNetworks, false);

  const o = origin.url;
  // Each row: its URLs and, per URL, null for a success or the refusal expected.
  const cases: Array<{ urls: string[]; expect: Array<RegExp | null> }> = [
    {
      urls: [`${o}/img/pic.webp`, `${second.url}/direct.webp`],
      expect: [null, refused('127\\.0\\.0\\.1 is a loopback address')],
    },
    {
      urls: [`http://localhost:${sp}/x.jpg`],
      expect: [refused('localhost \\((127\\.0\\.0\\.1|::1)\\) is a loopback address')],
    },
    { urls: [`${other4.url}/`], expect: [refused('127\\.0\\.0\\.2 is a loopback address')] },
    {
      urls: [`http://[::1]:${other6?.port ?? sp}/`],
      expect: [refused('::1 is a loopback address')],
    },
    {
      urls: [`http://[::ffff:127.0.0.1]:${sp}/mapped.webp`],
      expect: [refused('::ffff:7f00:1 embeds 127\\.0\\.0\\.1, a loopback address')],
    },
    {
      urls: [`http://0.0.0.0:${sp}/zero.webp`],
      expect: [refused('0\\.0\\.0\\.0 is an unspecified address')],
    },
    {
      urls: [`${o}/hop/second`, `${o}/img/alpha.png`],
      expect: [refused('127\\.0\\.0\\.1 is a loopback address'), null],
    },
    { urls: [`${o}/hop/localhost`], expect: [refused('localhost \\(')] },
    { urls: [`${o}/hop/closed`], expect: [refused('127\\.0\\.0\\.1 is a loopback address')] },
    { urls: [`${o}/hop/self`], expect: [null] },
  ];
  const job = await submit(service.url, productCsv(cases.map((c) => c.urls)));
  const status = await waitForStatus(service.url, job.request_id);
  const failures = cases.flatMap((c) => c.expect).filter((e) => e !== null).length;
  t.match(status, {
    status: 'COMPLETED',
    progress: {
      products_total: cases.length,
      products_done: cases.length,
      images_total: failures + 3,
      images_processed: 3,
      images_failed: failures,
    },
  });

  const products = await getProducts(service.url, job.request_id);
  const { rows } = await downloadCsv(service.url, job.request_id);
  for (const [i, c] of cases.entries()) {
    const row = rows[i + 1] ?? [];
    const outputs = splitOutputs(row[3] ?? '');
    const images = products.products[i]?.images ?? [];
    for (const [j, expected] of c.expect.entries()) {
      const url = c.urls[j] ?? '';
      if (expected === null) {
        t.match(images[j], { status: 'PROCESSED', error: null }, `${url} is processed`);
        t.match(outputs[j], /^http:\/\/.*\.jpg$/, `${url} has an output in the results CSV`);
        continue;
      }
      t.match(images[j], { status: 'FAILED', output_url: null, error: expected }, `${url} FAILED`);
      t.equal(outputs[j], '', `${url} leaves its output empty`);
      t.ok(
        // As the service stored it: [::ffff:127.0.0.1] is normalised to [::ffff:7f00:1].
        (row[4] ?? '').includes(`${images[j]?.url ?? '?'}: ${images[j]?.error ?? '?'}`),
        `${url}: the results CSV gives the reason`,
      );
      t.match(row[4], expected);
    }
  }

  t.equal(second.connections, 0, 'the second loopback origin was never connected to');
  t.equal(second.requests, 0, 'and received no request');
  t.equal(other4.connections, 0, '127.0.0.2 was never connected to');
  if (other6) t.equal(other6.connections, 0, '::1 was never connected to');
  for (const hop of ['/hop/second', '/hop/localhost', '/hop/closed', '/hop/self']) {
    t.equal(origin.hits(hop), 1, `${hop}: the allowlisted first hop was fetched once`);
  }
});

t.test('a webhook to a loopback receiver that is not allowlisted is not sent', async (t) => {
  const service = await startService(env);
  t.teardown(() => service.close());
  const hook = await startWebhookReceiver();
  t.teardown(() => hook.close());
  const job = await submit(service.url, productCsv([[`${origin.url}/img/pic.webp`]]), {
    webhook_url: hook.url,
  });
  const status = await settledWebhook(service.url, job.request_id);
  t.match(status.progress, { images_processed: 1, images_failed: 0 }, 'the job itself is fine');
  t.match(status.webhook, {
    url: hook.url,
    status: 'FAILED',
    attempts: 1,
    last_error: refused('127\\.0\\.0\\.1 is a loopback address'),
  });
  await sleep(300);
  t.equal(hook.received.length, 0, 'the receiver got nothing');
});

t.test('with ALLOW_PRIVATE_NETWORKS=true the same targets are reached', async (t) => {
  const service = await startService({ ...env, ALLOW_PRIVATE_NETWORKS: 'true' });
  t.teardown(() => service.close());
  const hook = await startWebhookReceiver();
  t.teardown(() => hook.close());
  const urls = [
    `${second.url}/direct.webp`,
    `http://localhost:${sp}/x.jpg`,
    `${origin.url}/hop/second`,
  ];
  const job = await submit(service.url, productCsv([urls]), { webhook_url: hook.url });
  const status = await settledWebhook(service.url, job.request_id);
  t.match(status, {
    progress: { images_total: 3, images_processed: 3, images_failed: 0 },
    webhook: { status: 'DELIVERED', last_error: null },
  });
  t.equal(second.requests, 3, 'the second origin served all three');
  t.equal(hook.received.length, 1, 'the webhook was delivered');
});
