/**
 * The benchmark's image origin, in a process of its own so that serving images does not
 * share an event loop with the benchmark's timers and pollers. Started by `scripts/bench.ts`;
 * prints one JSON line `{"port": <n>, "pool": [...]}` on stdout once it listens on 127.0.0.1,
 * and exits when its stdin closes (so it never outlives the benchmark).
 *
 * BENCH_ORIGIN_LATENCY_MS (default 0) holds every /img and /small answer back that long, as
 * a remote image server's round trips would: on loopback a download takes a few ms, which
 * hides what waiting on the network does to the pipeline.
 *
 * Routes (every image is generated deterministically at start):
 *   GET /img/<n>.jpg | /img/<n>.png  the pool image n % POOL_SIZE (distinct URLs, same bytes)
 *   GET /pool/<k>                    pool image k, for the in-process ceiling measurement
 *   GET /small/<n>.jpg               one 64×64 JPEG, whatever n is
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeJpeg, makePng } from '../test/helpers/images.js';

const POOL_SIZE = 20;
/** Every fifth pool image is a PNG with an alpha channel; the others are JPEGs. */
const isPngSlot = (k: number): boolean => k % 5 === 4;
const JPEG_SIZE = { width: 1600, height: 1200 };
const PNG_SIZE = { width: 800, height: 600 };
const SMALL_SIZE = 64;
const LATENCY_MS = Number(process.env.BENCH_ORIGIN_LATENCY_MS ?? 0);

interface PoolEntry {
  index: number;
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  bytes: number;
}

interface Served {
  body: Buffer;
  contentType: string;
}

async function generatePool(): Promise<Served[]> {
  const pool: Served[] = [];
  // One at a time: the pixel synthesis is synchronous JavaScript anyway.
  for (let k = 0; k < POOL_SIZE; k++) {
    if (isPngSlot(k)) {
      pool.push({
        body: await makePng(PNG_SIZE.width, PNG_SIZE.height, 100 + k, true),
        contentType: 'image/png',
      });
    } else {
      pool.push({
        body: await makeJpeg(JPEG_SIZE.width, JPEG_SIZE.height, 1 + k),
        contentType: 'image/jpeg',
      });
    }
  }
  return pool;
}

function send(res: ServerResponse, status: number, served: Served, head: boolean): void {
  res.writeHead(status, {
    'Content-Type': served.contentType,
    'Content-Length': String(served.body.length),
  });
  res.end(head ? undefined : served.body);
}

async function main(): Promise<void> {
  const pool = await generatePool();
  const small: Served = {
    body: await makeJpeg(SMALL_SIZE, SMALL_SIZE, 7),
    contentType: 'image/jpeg',
  };
  const notFound: Served = { body: Buffer.from('not found'), contentType: 'text/plain' };

  const server = createServer((req, res) => {
    const head = req.method === 'HEAD';
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const later = (served: Served) => {
      if (LATENCY_MS > 0) setTimeout(() => send(res, 200, served, head), LATENCY_MS);
      else send(res, 200, served, head);
    };
    const img = /^\/img\/(\d+)\.(?:jpg|png)$/.exec(pathname);
    if (img) {
      const served = pool[Number(img[1]) % POOL_SIZE];
      if (served) return later(served);
    }
    const direct = /^\/pool\/(\d+)$/.exec(pathname);
    if (direct) {
      const served = pool[Number(direct[1])];
      if (served) return send(res, 200, served, head);
    }
    if (/^\/small\/\d+\.jpg$/.test(pathname)) return later(small);
    send(res, 404, notFound, head);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const manifest: PoolEntry[] = pool.map((served, index) => ({
    index,
    format: isPngSlot(index) ? 'png' : 'jpeg',
    width: isPngSlot(index) ? PNG_SIZE.width : JPEG_SIZE.width,
    height: isPngSlot(index) ? PNG_SIZE.height : JPEG_SIZE.height,
    bytes: served.body.length,
  }));
  process.stdout.write(
    `${JSON.stringify({ port, pool: manifest, smallBytes: small.body.length })}\n`,
  );

  // The parent holds our stdin open; when it goes away (even killed), so do we.
  process.stdin.resume();
  process.stdin.on('close', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
