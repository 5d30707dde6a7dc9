import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { crc32, deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import t from 'tap';
import { scrape } from '../helpers/metrics.js';
import {
  type FixturePath,
  fixtureInfo,
  HTML_PAGE,
  type Route,
  startOrigin,
} from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getProducts,
  type RejectedBody,
  sleep,
  startService,
  submit,
  type TapTest,
  type TestService,
  upload,
  waitForStatus,
} from '../helpers/service.js';

/**
 * The bad-input catalogue: every kind of hostile CSV and hostile image origin this service
 * is expected to survive, one table each, run against the real service on 127.0.0.1.
 *
 * 1. Malformed CSVs: each is answered 400 or 413 with the problem (row and column where it
 *    applies) and leaves nothing behind: no job in the store and no request to the origin.
 * 2. Hostile image origins: all of them in ONE job, between good images, so that every
 *    failure is shown to be confined to its own image: the good ones are processed and
 *    decodable, the results CSV has every row in order, and the job completes.
 *
 * Cases already covered elsewhere in more depth: the full multipart and option matrix in
 * test/routes/upload.test.ts, retry counts per status in test/e2e/resilience.test.ts, and
 * every refused address class in test/e2e/ssrf.test.ts.
 */

const HEADER = 'Serial Number,Product Name,Input Image Urls';

const origin = await startOrigin();
t.teardown(() => origin.close());

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A string expectation is exact; a RegExp is used as given. */
const exactly = (wanted: string | RegExp): RegExp =>
  typeof wanted === 'string' ? new RegExp(`^${escapeRe(wanted)}$`) : wanted;

/** One CSV cell, quoted when it has to be (RFC 4180). */
const cell = (value: string | number): string => {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
/** A CSV with the standard header and these rows. */
const csv = (...rows: Array<Array<string | number>>): string =>
  `${[HEADER, ...rows.map((row) => row.map(cell).join(','))].join('\n')}\n`;

// ---------------------------------------------------------------------------------------
// 1. Malformed CSVs
// ---------------------------------------------------------------------------------------

/** MAX_CSV_BYTES of the CSV services: small, so the "huge row" case is cheap. */
const CSV_LIMIT = 16 * 1024;
const CSV_ENV = { MAX_CSV_BYTES: String(CSV_LIMIT) };

interface DetailPattern {
  row: number | null;
  column: string | null;
  message: string | RegExp;
}

interface CsvCase {
  name: string;
  /**
   * The uploaded file. `u(tag)` is an image URL on the origin that only this case uses, so
   * the origin's hit count for it proves whether anything fetched it.
   */
  body: (u: (tag: string) => string) => string | Buffer;
  /** Extra env for the service this case is uploaded to (one service per distinct env). */
  env?: Record<string, string>;
  status: 400 | 413;
  error: string | RegExp;
  /** Every detail, in order; absent for a 413, whose body has none. */
  details?: DetailPattern[];
}

/** A tiny but real PNG: binary, under MAX_CSV_BYTES, starting "\x89PNG\r\n". */
const tinyPng = await sharp({
  create: { width: 16, height: 16, channels: 3, background: '#c0ffee' },
})
  .png()
  .toBuffer();

/**
 * 2 KiB of deterministic noise with a NUL every 7 bytes, no line break in its first 64 and
 * no double quote (quoting has its own cases below), so the answer is always the same.
 */
const noise = (() => {
  const bytes = Buffer.alloc(2048);
  let x = 0x2545f491;
  for (let i = 0; i < bytes.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = i % 7 === 0 ? 0 : (x >>> 16) & 0xff;
    if (bytes[i] === 0x22 || (i < 64 && (bytes[i] === 0x0a || bytes[i] === 0x0d))) bytes[i] = 0x20;
  }
  return bytes;
})();

const missing = (column: string, header: string): DetailPattern => ({
  row: 0,
  column,
  message: `missing required column "${column}" (header was: ${header})`,
});
const missingAll = (header: string | RegExp): DetailPattern[] =>
  ['Serial Number', 'Product Name', 'Input Image Urls'].map((column) =>
    typeof header === 'string'
      ? missing(column, header)
      : {
          row: 0,
          column,
          message: new RegExp(
            `^missing required column "${column}" \\(header was: ${header.source}`,
          ),
        },
  );
const urlsColumn = (row: number, message: string | RegExp): DetailPattern => ({
  row,
  column: 'Input Image Urls',
  message,
});

const csvCases: CsvCase[] = [
  {
    name: 'binary: a small PNG file',
    body: () => tinyPng,
    status: 400,
    error: 'CSV rejected: 3 problems found',
    // Everything up to the first CR LF of the PNG signature is read as the header.
    details: missingAll('"\uFFFDPNG"'),
  },
  {
    name: 'binary: a PNG file over MAX_CSV_BYTES',
    body: () => origin.fixtures['/img/alpha.png'],
    status: 413,
    error: `CSV is larger than ${CSV_LIMIT} bytes (MAX_CSV_BYTES)`,
  },
  {
    name: 'binary: random bytes with NULs',
    body: () => noise,
    status: 400,
    error: 'CSV rejected: 3 problems found',
    details: missingAll(/"\\u0000/),
  },
  {
    name: 'wrong headers',
    body: (u) => `id,title,pictures\n1,Shoe,${u('a')}\n`,
    status: 400,
    error: 'CSV rejected: 3 problems found',
    details: missingAll('"id", "title", "pictures"'),
  },
  {
    name: 'missing header: no Product Name column',
    body: (u) => `Serial Number,Input Image Urls\n1,${u('a')}\n`,
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [missing('Product Name', '"Serial Number", "Input Image Urls"')],
  },
  {
    name: 'missing header row: the first product is read as the header',
    body: (u) => `1,Shoe,${u('a')}\n2,Hat,${u('b')}\n`,
    status: 400,
    error: 'CSV rejected: 3 problems found',
    details: missingAll(new RegExp(escapeRe(`"1", "Shoe", "${origin.url}/csv/`))),
  },
  {
    name: 'unbalanced quotes: a quoted cell never closed (row 2)',
    body: (u) => `${HEADER}\n1,Shoe,${u('a')}\n2,"Hat,${u('b')}\n3,Bag,${u('c')}\n`,
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [
      {
        row: 2,
        column: null,
        message: /^CSV could not be parsed: Parse Error: missing closing: '"'/,
      },
    ],
  },
  {
    name: 'unbalanced quotes: text after a closing quote (row 3), after a bad URL (row 2)',
    body: (u) =>
      `${HEADER}\n1,Shoe,${u('a')}\n2,Hat,ftp://127.0.0.1/hat.jpg\n3,"Bag"gage,${u('c')}\n`,
    status: 400,
    error: 'CSV rejected: 2 problems found',
    details: [
      urlsColumn(2, 'only http and https URLs can be fetched, not ftp:'),
      {
        row: 3,
        column: null,
        message: /^CSV could not be parsed: Parse Error: expected: ',' OR new line got: 'g'/,
      },
    ],
  },
  {
    name: 'empty file',
    body: () => '',
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [{ row: null, column: null, message: 'CSV is empty' }],
  },
  {
    name: 'header only',
    body: () => `${HEADER}\r\n`,
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [{ row: null, column: null, message: 'CSV has a header but no product rows' }],
  },
  {
    name: 'huge row: one cell larger than MAX_CSV_BYTES',
    body: (u) => csv([1, 'x'.repeat(CSV_LIMIT + 1024), u('a')]),
    status: 413,
    error: `CSV is larger than ${CSV_LIMIT} bytes (MAX_CSV_BYTES)`,
  },
  {
    name: 'a non-URL (row 2)',
    body: (u) => csv([1, 'Shoe', u('a')], [2, 'Hat', 'not a url']),
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [urlsColumn(2, 'not a valid URL: "not a url"')],
  },
  {
    name: 'file:///etc/passwd (row 2)',
    body: (u) => csv([1, 'Shoe', u('a')], [2, 'Passwd', 'file:///etc/passwd']),
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [urlsColumn(2, 'only http and https URLs can be fetched, not file:')],
  },
  {
    name: 'javascript:alert(1) (row 1)',
    body: (u) => csv([1, 'Xss', 'javascript:alert(1)'], [2, 'Hat', u('a')]),
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [urlsColumn(1, 'only http and https URLs can be fetched, not javascript:')],
  },
  {
    name: 'a URL over 2,048 characters (row 2)',
    body: (u) => csv([1, 'Shoe', u('a')], [2, 'Long', `${u('b')}?q=${'q'.repeat(2048)}`]),
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [urlsColumn(2, 'URL is longer than 2048 characters')],
  },
  {
    name: '10,000 URLs in one cell (row 2)',
    body: (u) =>
      csv(
        [1, 'Shoe', u('a')],
        [2, 'Many', Array.from({ length: 10_000 }, (_, i) => u(`many-${i}`)).join(', ')],
      ),
    // Room for the ~450 KB cell, so that MAX_URLS_PER_ROW, not MAX_CSV_BYTES, rejects it.
    env: { MAX_CSV_BYTES: String(1024 * 1024) },
    status: 400,
    error: 'CSV rejected: 1 problem found',
    details: [urlsColumn(2, '10000 URLs in one row; at most 50 are allowed (MAX_URLS_PER_ROW)')],
  },
];

const csvServices = new Map<string, Promise<TestService>>();
/** One service per distinct env, started on first use and closed at the end of the file. */
function csvService(env: Record<string, string> = {}): Promise<TestService> {
  const full = { ...CSV_ENV, ...env };
  const key = JSON.stringify(full);
  let service = csvServices.get(key);
  if (service === undefined) {
    service = startService(full);
    csvServices.set(key, service);
  }
  return service;
}
t.teardown(async () => {
  for (const service of csvServices.values()) await (await service).close();
});

/** No job at all in the store: none queued or running, none half-received. */
async function assertNoJob(tt: TapTest, service: TestService): Promise<void> {
  const { store } = service.services;
  tt.same(await store.listUnfinishedJobs(), [], 'no job was queued');
  tt.same(
    await store.listAbandonedJobs(new Date(Date.now() + 3_600_000)),
    [],
    'no half-received job was left behind',
  );
}

t.test('malformed CSVs are rejected and queue nothing', async (t) => {
  for (const [index, c] of csvCases.entries()) {
    t.test(c.name, async (t) => {
      const service = await csvService(c.env);
      const used: string[] = [];
      const u = (tag: string): string => {
        const url = `${origin.url}/csv/${index}/${tag}.jpg`;
        used.push(url);
        return url;
      };
      const res = await upload(service.url, c.body(u));
      t.equal(res.status, c.status, `answered ${c.status}`);
      const body = res.body as Partial<RejectedBody>;
      t.match(body.error, exactly(c.error), 'error');
      if (c.details === undefined) {
        t.equal(body.details, undefined, 'no details with a 413');
      } else {
        t.equal(body.details?.length, c.details.length, 'one detail per problem');
        t.match(
          body.details,
          c.details.map((d) => ({ ...d, message: exactly(d.message) })),
          'details name the row and column',
        );
      }
      // The answer was sent after the job was dropped, so an empty store now means that no
      // job can still fetch anything, and one that ran would already show on the origin.
      await assertNoJob(t, service);
      const fetched = used.filter((url) => origin.hits(new URL(url).pathname) > 0);
      t.same(fetched, [], `the origin got no request for any of the ${used.length} URLs`);
    });
  }
});

t.test('a long row under MAX_CSV_BYTES is accepted and kept intact', async (t) => {
  // Its own service, so that the rejections above share theirs with no job at all.
  const service = await startService(CSV_ENV);
  t.teardown(() => service.close());
  const name = `Long ${'L'.repeat(CSV_LIMIT - 1024)}`;
  origin.add('/control/long-row.webp', { body: origin.fixtures['/img/pic.webp'] });
  const file = csv([1, name, `${origin.url}/control/long-row.webp`]);
  t.ok(file.length > CSV_LIMIT - 1024 && file.length < CSV_LIMIT, `${file.length} bytes`);
  const job = await submit(service.url, file);
  t.match(job, { products: 1, images: 1 });
  const status = await waitForStatus(service.url, job.request_id);
  t.match(status.progress, { images_processed: 1, images_failed: 0 });
  const { rows } = await downloadCsv(service.url, job.request_id);
  t.equal(rows.length, 2);
  t.equal(rows[1]?.[1], name, 'the long cell comes back whole');
  t.equal(rows[1]?.[4], '', 'no error');
});

// ---------------------------------------------------------------------------------------
// 2. Hostile image origins, all in one job
// ---------------------------------------------------------------------------------------

interface Trap {
  url: string;
  connections: number;
  close(): Promise<void>;
}

/** A loopback server the service must never reach: it counts TCP connections. */
async function startTrap(): Promise<Trap> {
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/webp' });
    res.end(origin.fixtures['/img/pic.webp']);
  });
  server.on('connection', (socket) => {
    trap.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const trap: Trap = {
    url: `http://127.0.0.1:${port}`,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
  return trap;
}

const trap = await startTrap();
t.teardown(() => trap.close());

const DOWNLOAD_TIMEOUT_MS = 800;
const MAX_IMAGE_BYTES = 256 * 1024;
const MAX_IMAGE_PIXELS = 10_000_000;
const ORIGIN_PORT = new URL(origin.url).port;

const jpeg = origin.fixtures['/img/photo1.jpg'];
const webp = origin.fixtures['/img/pic.webp'];
const truncatedJpeg = jpeg.subarray(0, Math.floor(jpeg.length / 2));

/** A real 4000×4000 PNG (16 MP, over MAX_IMAGE_PIXELS) that compresses to a few dozen KB. */
const realBomb = await sharp({
  create: { width: 4000, height: 4000, channels: 3, background: '#000' },
})
  .png({ compressionLevel: 9 })
  .toBuffer();

/**
 * A PNG whose header claims 30000×30000 (900 MP, 2.7 GB decoded) but whose data holds a
 * few rows: what an attacker would send. Encoding a real one with sharp takes seconds.
 */
const headerBomb = (() => {
  const chunk = (type: string, data: Buffer): Buffer => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const side = 30_000;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc((side * 3 + 1) * 16))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
})();

/** 20 MB of zeros, gzipped to ~20 KB and sent as Content-Encoding: gzip. */
const gzipBomb = gzipSync(Buffer.alloc(20 * 1024 * 1024));

const json = Buffer.from('{"error":"no such image","code":404}');

/** An SVG that would make a renderer fetch the trap, were it rendered. */
const svg = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ' +
    'width="64" height="64">' +
    `<image href="${trap.url}/from-svg.png" xlink:href="${trap.url}/from-svg.png" ` +
    'width="64" height="64"/></svg>',
);

/** Responses left open on purpose (stalled or endless): the service must hang up on each. */
const held = new Map<ServerResponse, string>();
function hold(res: ServerResponse, what: string): void {
  held.set(res, what);
  res.once('close', () => held.delete(res));
}

let endlessBytes = 0;
let flaky = 0;

const redirect = (location: string): Route => ({
  status: 302,
  body: Buffer.alloc(0),
  headers: { Location: location },
});

type Expected =
  | { status: 'PROCESSED'; size: [number, number] }
  /** `kind` is the reason label it is counted under in /metrics. */
  | { status: 'FAILED'; kind: string; reason: string | RegExp };

interface OriginCase {
  name: string;
  /** Path on the origin; a fixture path when `route` is absent. */
  path: string;
  route?: Route;
  expect: Expected;
  /** Requests the origin must have received for this path (and `alsoCounts`). */
  hits: number | { atMost: number };
  alsoCounts?: string[];
  /** `bytes_in` recorded on the image: null when the download itself failed. */
  bytesIn: number | null;
}

const good = (path: FixturePath): OriginCase => ({
  name: `good: ${path}`,
  path,
  expect: { status: 'PROCESSED', size: [fixtureInfo[path].width, fixtureInfo[path].height] },
  hits: 1,
  bytesIn: origin.fixtures[path].length,
});
const failed = (kind: string, reason: string | RegExp): Expected => ({
  status: 'FAILED',
  kind,
  reason,
});

const originCases: OriginCase[] = [
  good('/img/photo1.jpg'),
  {
    name: '404',
    path: '/hostile/404.jpg',
    route: { status: 404, body: Buffer.from('not found'), contentType: 'text/plain' },
    expect: failed('http_error', 'HTTP 404 from image server'),
    hits: 1,
    bytesIn: null,
  },
  {
    name: '500 then 200',
    path: '/hostile/flaky.webp',
    route: (_req: IncomingMessage, res: ServerResponse) => {
      if (++flaky === 1) res.writeHead(500, { 'content-type': 'text/plain' }).end('oops');
      else res.writeHead(200, { 'content-type': 'image/webp' }).end(webp);
    },
    expect: { status: 'PROCESSED', size: [400, 300] },
    hits: 2,
    bytesIn: webp.length,
  },
  {
    name: 'slow drip: a byte every 100 ms, forever',
    path: '/hostile/drip.jpg',
    route: (_req, res) => {
      hold(res, 'drip');
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      res.flushHeaders();
      let sent = 0;
      const timer = setInterval(() => res.write(jpeg.subarray(sent, ++sent)), 100);
      res.once('close', () => clearInterval(timer));
    },
    // A timeout may pass, so it is retried: three attempts, each cut at the deadline.
    expect: failed(
      'timeout',
      `download timed out after ${DOWNLOAD_TIMEOUT_MS} ms (after 3 attempts)`,
    ),
    hits: 3,
    bytesIn: null,
  },
  good('/img/photo2.jpg'),
  {
    name: 'endless body, no Content-Length',
    path: '/hostile/endless.jpg',
    route: (_req, res) => {
      hold(res, 'endless');
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const block = Buffer.alloc(64 * 1024, 0xab);
      const pump = (): void => {
        while (!res.destroyed) {
          endlessBytes += block.length;
          if (!res.write(block)) return;
        }
      };
      res.on('drain', pump);
      pump();
    },
    expect: failed('too_large', `image is over the ${MAX_IMAGE_BYTES}-byte limit`),
    hits: 1,
    bytesIn: null,
  },
  {
    name: 'Content-Length larger than the body, then the connection closes',
    path: '/hostile/short.webp',
    route: (req, res) => {
      res.writeHead(200, {
        'content-type': 'image/webp',
        'content-length': String(webp.length + 10_000),
      });
      res.write(webp, () => req.socket.end());
    },
    // A body shorter than announced may pass, so it is retried.
    expect: failed(
      'network',
      `image server closed the connection after ${webp.length} of ${webp.length + 10_000} bytes (after 3 attempts)`,
    ),
    hits: 3,
    bytesIn: null,
  },
  {
    name: 'connection reset (RST) in the middle of the body',
    path: '/hostile/reset.jpg',
    route: (req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(jpeg.length) });
      res.write(jpeg.subarray(0, 4096), () => req.socket.resetAndDestroy());
    },
    expect: failed(
      'network',
      `image server closed the connection after 4096 of ${jpeg.length} bytes (after 3 attempts)`,
    ),
    hits: 3,
    bytesIn: null,
  },
  {
    name: 'Content-Length over MAX_IMAGE_BYTES (refused before reading)',
    path: '/hostile/huge-length.jpg',
    route: (_req, res) => {
      // Sends 1 KiB and stalls: reading on would end in a timeout, not in this refusal.
      hold(res, 'huge-length');
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(10 << 20) });
      res.write(jpeg.subarray(0, 1024));
    },
    expect: failed(
      'too_large',
      `image is ${10 << 20} bytes, over the ${MAX_IMAGE_BYTES}-byte limit`,
    ),
    hits: 1,
    bytesIn: null,
  },
  good('/img/pic.webp'),
  {
    name: 'HTML served as image/jpeg',
    path: '/hostile/page.jpg',
    route: { body: Buffer.from(HTML_PAGE), contentType: 'image/jpeg' },
    expect: failed('not_image', 'not an image'),
    hits: 1,
    bytesIn: Buffer.byteLength(HTML_PAGE),
  },
  {
    name: 'JSON served as image/png',
    path: '/hostile/api.png',
    route: { body: json, contentType: 'image/png' },
    expect: failed('not_image', 'not an image'),
    hits: 1,
    bytesIn: json.length,
  },
  {
    name: 'truncated JPEG (first half of the file)',
    path: '/hostile/truncated.jpg',
    route: { body: truncatedJpeg, contentType: 'image/jpeg' },
    // libvips words a truncated JPEG in more than one way depending on where it stops.
    expect: failed(
      'decode',
      /^image could not be decoded(: VipsJpeg: | \(corrupt or truncated data\)$)/,
    ),
    hits: 1,
    bytesIn: truncatedJpeg.length,
  },
  good('/img/photo3.jpg'),
  {
    name: `pixel bomb: a real 4000×4000 PNG (${Math.round(realBomb.length / 1024)} KiB)`,
    path: '/hostile/bomb-real.png',
    route: { body: realBomb, contentType: 'image/png' },
    expect: failed('too_large', 'image has too many pixels (MAX_IMAGE_PIXELS)'),
    hits: 1,
    bytesIn: realBomb.length,
  },
  {
    name: `pixel bomb: a PNG header claiming 30000×30000 (${Math.round(headerBomb.length / 1024)} KiB)`,
    path: '/hostile/bomb-header.png',
    route: { body: headerBomb, contentType: 'image/png' },
    expect: failed('too_large', 'image has too many pixels (MAX_IMAGE_PIXELS)'),
    hits: 1,
    bytesIn: headerBomb.length,
  },
  {
    name: 'SVG linking to another server, served as image/png',
    path: '/hostile/vector.png',
    route: { body: svg, contentType: 'image/png' },
    expect: failed('not_image', 'not a supported image (svg)'),
    hits: 1,
    bytesIn: svg.length,
  },
  {
    name: 'gzip bomb sent as Content-Encoding: gzip (never inflated)',
    path: '/hostile/gzip.jpg',
    route: {
      body: gzipBomb,
      contentType: 'image/jpeg',
      headers: { 'Content-Encoding': 'gzip' },
    },
    expect: failed('not_image', 'not an image'),
    hits: 1,
    bytesIn: gzipBomb.length,
  },
  {
    name: 'redirect loop (A → B → A)',
    path: '/hostile/loop-a',
    route: redirect('/hostile/loop-b'),
    alsoCounts: ['/hostile/loop-b'],
    expect: failed('redirects', 'redirect loop'),
    // At most the first request and 5 redirects; undici stops as soon as a URL comes back.
    hits: { atMost: 6 },
    bytesIn: null,
  },
  {
    name: 'endless redirect chain (every hop a new URL)',
    path: '/hostile/chain.jpg',
    route: (req, res) => {
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? 0);
      res.writeHead(302, { Location: `/hostile/chain.jpg?n=${n + 1}` }).end();
    },
    expect: failed('redirects', 'too many redirects (more than 5)'),
    hits: 6, // the first request and 5 redirects
    bytesIn: null,
  },
  {
    name: 'redirect to a private address (another loopback port)',
    path: '/hostile/to-private.jpg',
    route: redirect(`${trap.url}/x.jpg`),
    expect: failed(
      'refused',
      'refused: 127.0.0.1 is a loopback address (set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow)',
    ),
    hits: 1,
    bytesIn: null,
  },
  good('/img/rotated.jpg'),
];
origin.add('/hostile/loop-b', redirect('/hostile/loop-a'));
for (const c of originCases) if (c.route !== undefined) origin.add(c.path, c.route);

const hitsOf = (c: OriginCase): number =>
  [c.path, ...(c.alsoCounts ?? [])].reduce((sum, path) => sum + origin.hits(path), 0);

/** Waits (bounded) for a condition that follows shortly after something already observed. */
async function eventually(check: () => boolean, attempts = 100): Promise<boolean> {
  for (let i = 0; i < attempts && !check(); i++) await sleep(20);
  return check();
}

t.test('hostile image origins fail their own image and nothing else', async (t) => {
  // Private networks refused, the origin allowlisted: the trap on another loopback port is
  // exactly what a redirect must not reach.
  const service = await startService({
    ALLOW_PRIVATE_NETWORKS: 'false',
    OUTBOUND_ALLOWLIST: `127.0.0.1:${ORIGIN_PORT}`,
    DOWNLOAD_TIMEOUT_MS: String(DOWNLOAD_TIMEOUT_MS),
    DOWNLOAD_RETRIES: '2',
    MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
    MAX_IMAGE_PIXELS: String(MAX_IMAGE_PIXELS),
  });
  t.teardown(() => service.close());
  // Preconditions of the cases themselves.
  t.ok(realBomb.length < MAX_IMAGE_BYTES && headerBomb.length < MAX_IMAGE_BYTES, 'bombs are small');
  for (const c of originCases) {
    if (c.expect.status === 'PROCESSED')
      t.ok((c.bytesIn ?? 0) <= MAX_IMAGE_BYTES, `${c.name} fits`);
  }

  const urls = originCases.map((c) => `${origin.url}${c.path}`);
  const job = await submit(
    service.url,
    csv(...originCases.map((c, i) => [i + 1, c.name, urls[i] ?? ''])),
  );
  t.match(job, { products: originCases.length, images: originCases.length });
  const status = await waitForStatus(service.url, job.request_id, 'COMPLETED', 25_000);
  const processed = originCases.filter((c) => c.expect.status === 'PROCESSED').length;
  t.match(
    status,
    {
      status: 'COMPLETED',
      progress: {
        products_total: originCases.length,
        products_done: originCases.length,
        images_total: originCases.length,
        images_processed: processed,
        images_failed: originCases.length - processed,
        percent: 100,
      },
    },
    'the job completes with the right counts',
  );

  const { products } = await getProducts(service.url, job.request_id);
  const { rows } = await downloadCsv(service.url, job.request_id);
  t.same(rows[0], [
    'Serial Number',
    'Product Name',
    'Input Image Urls',
    'Output Image Urls',
    'Errors',
  ]);
  t.equal(rows.length, originCases.length + 1, 'one results row per input row');

  for (const [i, c] of originCases.entries()) {
    t.test(c.name, async (t) => {
      const url = urls[i] ?? '';
      const row = rows[i + 1] ?? [];
      const image = products[i]?.images[0];
      t.same(row.slice(0, 3), [String(i + 1), c.name, url], 'results row in input order');
      const hits = hitsOf(c);
      if (typeof c.hits === 'number') {
        t.equal(hits, c.hits, `the origin got ${c.hits} request(s)`);
      } else {
        t.ok(hits >= 1 && hits <= c.hits.atMost, `the origin got ${hits} (1 to ${c.hits.atMost})`);
      }
      t.equal(image?.bytes_in ?? null, c.bytesIn, 'bytes_in');
      if (c.expect.status === 'PROCESSED') {
        const output = `${service.url}/processed_images/${job.request_id}/${i + 1}-1.jpg`;
        t.match(image, { status: 'PROCESSED', error: null, output_url: output }, 'PROCESSED');
        t.equal(row[3], output, 'Output Image Urls');
        t.equal(row[4], '', 'Errors is empty');
        const { res, body } = await fetchBytes(output);
        t.equal(res.status, 200, 'output served');
        const meta = await sharp(body).metadata();
        const [width, height] =
          c.path === '/img/rotated.jpg'
            ? [c.expect.size[1], c.expect.size[0]] // EXIF orientation 6 applied
            : c.expect.size;
        t.match(meta, { format: 'jpeg', width, height }, 'output decodes at the right size');
        await sharp(body).raw().toBuffer(); // every pixel decodes, not just the header
      } else {
        t.match(
          image,
          { status: 'FAILED', output_url: null, error: exactly(c.expect.reason) },
          `FAILED: ${String(c.expect.reason)}`,
        );
        t.equal(row[3], '', 'Output Image Urls is empty');
        t.equal(row[4], `${url}: ${image?.error ?? '?'}`, 'Errors gives the URL and reason');
      }
    });
  }

  t.test('side effects', async (t) => {
    t.equal(trap.connections, 0, 'the private address (and the SVG link) got no connection');
    t.ok(
      endlessBytes > MAX_IMAGE_BYTES,
      `the endless origin sent past the limit (${endlessBytes})`,
    );
    const hungUp = await eventually(() => held.size === 0);
    t.ok(
      hungUp,
      `the service hung up on every stalled or endless response (${[...held.values()]})`,
    );
    t.same(
      await service.services.store.listUnfinishedJobs(),
      [],
      'nothing left unfinished in the store',
    );
  });

  t.test('metrics: each failure under its reason, every byte that arrived', async (t) => {
    const samples = await scrape(service.url);
    const expected = new Map<string, number>();
    for (const c of originCases) {
      if (c.expect.status === 'FAILED') {
        expected.set(c.expect.kind, (expected.get(c.expect.kind) ?? 0) + 1);
      }
    }
    for (const [key, value] of samples) {
      const reason = /^image_batch_images_failed_total\{reason="(\w+)"\}$/.exec(key)?.[1];
      if (reason !== undefined) t.equal(value, expected.get(reason) ?? 0, `failed, ${reason}`);
    }
    t.equal(samples.get('image_batch_images_processed_total'), processed);
    t.equal(
      samples.get('image_batch_image_bytes_in_total'),
      originCases.reduce((sum, c) => sum + (c.bytesIn ?? 0), 0),
      'bytes in: every image that arrived, failed or not',
    );
  });
});
