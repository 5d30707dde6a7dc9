import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseString } from 'fast-csv';
import type { FastifyInstance } from 'fastify';
import { MongoClient } from 'mongodb';
import type { DestinationStream } from 'pino';
import type t from 'tap';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createServices, type Services } from '../../src/services.js';

/** The `t` handed to a `t.test` callback. */
export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

/** Small limits so tests exercise them cheaply; every one can be overridden through `env`. */
const TEST_DEFAULTS: Record<string, string> = {
  ALLOW_PRIVATE_NETWORKS: 'true',
  CONCURRENCY: '4',
  DOWNLOAD_TIMEOUT_MS: '5000',
  // A loaded test machine lags; only the overload tests turn the pressure checks on.
  OVERLOAD_EVENT_LOOP_DELAY_MS: '0',
  OVERLOAD_RSS_MB: '0',
  // Retries stay on, but quick, so failure cases don't slow the suite.
  DOWNLOAD_RETRY_BASE_MS: '20',
  DOWNLOAD_RETRY_MAX_MS: '200',
  WEBHOOK_TIMEOUT_MS: '3000',
  WEBHOOK_RETRY_BASE_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '200',
  MAX_IMAGE_BYTES: String(8 * 1024 * 1024),
  MAX_CSV_BYTES: String(256 * 1024),
  MAX_ROWS: '1000',
  LEASE_MS: '5000',
};

export interface ServiceOptions {
  /**
   * Root of the data, images and results dirs of an earlier service (its `root`), so that
   * this one picks up where that one stopped. The same MongoDB database is reused too.
   */
  reuseRoot?: string;
  /** MongoDB database of an earlier service (its `dbName`), with `reuseRoot`. */
  reuseDbName?: string | null;
  /** Where the service logs, as in production (JSON lines), from the debug level up. */
  logTo?: DestinationStream;
}

export interface CloseOptions {
  /** Deadline handed to `services.stop` (default 5000 ms). */
  stopDeadlineMs?: number;
  /** Leaves the temp dir and database in place for a later service (`reuseRoot`). */
  keep?: boolean;
}

export interface TestService {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  config: Config;
  services: Services;
  app: FastifyInstance;
  /** Temp dir holding `data/`, `images/` and `results/`. */
  root: string;
  /** MongoDB database used when MONGODB_URI is set, else null. */
  dbName: string | null;
  /** Closes the app and the services, then removes the temp dir (unless `keep`). Idempotent. */
  close(opts?: CloseOptions): Promise<void>;
  /**
   * Stops this service (with `stopDeadlineMs`) and starts a new one on the same dirs and
   * database with the same env plus `env`; the new one owns the cleanup.
   */
  restart(env?: Record<string, string>, opts?: { stopDeadlineMs?: number }): Promise<TestService>;
}

/**
 * Builds the real service in-process the way `src/server.ts` does: config from an env
 * object, pino, services, app, start, listen on 127.0.0.1 port 0.
 */
export async function startService(
  env: Record<string, string> = {},
  opts: ServiceOptions = {},
): Promise<TestService> {
  const root = opts.reuseRoot ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'ibs-')));
  const mongodbUri = env.MONGODB_URI ?? process.env.MONGODB_URI;
  const dbName =
    mongodbUri === undefined || mongodbUri === ''
      ? null
      : (env.MONGODB_DB ?? opts.reuseDbName ?? `ibs_test_${randomUUID().replace(/-/g, '')}`);
  const fullEnv: Record<string, string> = {
    ...TEST_DEFAULTS,
    DATA_DIR: path.join(root, 'data'),
    IMAGES_DIR: path.join(root, 'images'),
    RESULTS_DIR: path.join(root, 'results'),
    ...(mongodbUri && dbName ? { MONGODB_URI: mongodbUri, MONGODB_DB: dbName } : {}),
    ...env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: testLogLevel(),
  };
  let services: Services | undefined;
  let app: FastifyInstance;
  let config: Config;
  try {
    config = loadConfig(fullEnv);
    const log =
      opts.logTo === undefined
        ? createLogger({ level: config.logLevel, pretty: false })
        : createLogger({ level: 'debug', pretty: false }, opts.logTo);
    services = await createServices(config, log);
    app = await buildApp(services, log);
    await services.start();
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await services?.stop(1000).catch(() => {});
    if (opts.reuseRoot === undefined) await fs.rm(root, { recursive: true, force: true });
    throw err;
  }
  const running = services;
  const { port } = app.server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (closeOpts: CloseOptions = {}): Promise<void> => {
    closing ??= (async () => {
      await app.close();
      await running.stop(closeOpts.stopDeadlineMs ?? 5000);
      if (closeOpts.keep) return;
      await fs.rm(root, { recursive: true, force: true });
      if (mongodbUri && dbName) await dropDatabase(mongodbUri, dbName);
    })();
    return closing;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    config,
    services: running,
    app,
    root,
    dbName,
    close,
    async restart(moreEnv = {}, restartOpts = {}) {
      await close({ keep: true, stopDeadlineMs: restartOpts.stopDeadlineMs ?? 5000 });
      return startService({ ...env, ...moreEnv }, { reuseRoot: root, reuseDbName: dbName });
    },
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** Silent unless TEST_LOG is set: to a pino level, or to anything else for 'info'. */
function testLogLevel(): string {
  const wanted = process.env.TEST_LOG;
  if (!wanted) return 'silent';
  return LOG_LEVELS.includes(wanted) ? wanted : 'info';
}

async function dropDatabase(uri: string, name: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2000 });
  try {
    await client.connect();
    await client.db(name).dropDatabase();
  } catch {
    // Best effort: a test database left behind is harmless.
  } finally {
    await client.close().catch(() => {});
  }
}

/** Every request the helpers make gives up after this, so a hung handler fails a test, not the file. */
export const REQUEST_TIMEOUT_MS = 15_000;
export const timeout = (): AbortSignal => AbortSignal.timeout(REQUEST_TIMEOUT_MS);

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** POSTs `csv` as the `file` field of a multipart form, with `fields` before it. */
export async function upload(
  url: string,
  csv: string | Buffer,
  fields: Record<string, string> = {},
  filename = 'products.csv',
): Promise<HttpResult> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const bytes = typeof csv === 'string' ? Buffer.from(csv, 'utf8') : csv;
  form.append('file', new Blob([bytes], { type: 'text/csv' }), filename);
  const res = await fetch(`${url}/upload`, { method: 'POST', body: form, signal: timeout() });
  return { status: res.status, headers: res.headers, body: await readBody(res) };
}

/** GETs a path of the service and decodes JSON bodies. */
export async function getJson(url: string, pathname: string): Promise<HttpResult> {
  const res = await fetch(`${url}${pathname}`, { signal: timeout() });
  return { status: res.status, headers: res.headers, body: await readBody(res) };
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('application/json')) {
    return JSON.parse(text) as unknown;
  }
  return text;
}

export interface StatusBody {
  request_id: string;
  kind: 'csv' | 'image';
  status: 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'FAILED';
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  progress: {
    products_total: number;
    products_done: number;
    images_total: number;
    images_processed: number;
    images_failed: number;
    percent: number;
  };
  download_url: string | null;
  webhook: null | {
    url: string;
    status: 'PENDING' | 'DELIVERED' | 'FAILED';
    attempts: number;
    last_error: string | null;
    next_attempt_at: string | null;
    attempts_log: Array<{
      attempt: number;
      at: string;
      http_status: number | null;
      error: string | null;
      duration_ms: number;
    }>;
  };
}

export interface MetadataBody {
  width: number;
  height: number;
  format: 'jpeg' | 'webp' | 'avif' | 'png';
  input: { width: number; height: number; format: string };
  orientation: number | null;
  rotated: boolean;
  bytes_in: number | null;
  bytes_out: number | null;
  processing_ms: number | null;
}

export interface ImageView {
  url: string;
  status: 'PENDING' | 'PROCESSING' | 'PROCESSED' | 'FAILED';
  output_url: string | null;
  bytes_in: number | null;
  bytes_out: number | null;
  error: string | null;
  metadata: MetadataBody | null;
  thumbnails: Record<string, string | null>;
}

export interface ProductsBody {
  request_id: string;
  offset: number;
  limit: number;
  total: number;
  products: Array<{
    row: number;
    serial: string;
    name: string;
    input_urls: string[];
    output_urls: Array<string | null>;
    images: ImageView[];
  }>;
}

export interface AcceptedBody {
  request_id: string;
  status: 'PENDING';
  products: number;
  images: number;
  status_url: string;
  download_url: string;
}

export interface RejectedBody {
  error: string;
  details: Array<{ row: number | null; column: string | null; message: string }>;
}

/** Uploads and insists on a 202, returning its body. */
export async function submit(
  url: string,
  csv: string | Buffer,
  fields: Record<string, string> = {},
): Promise<AcceptedBody> {
  const res = await upload(url, csv, fields);
  if (res.status !== 202) {
    throw new Error(`upload answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as AcceptedBody;
}

/** Polls GET /status/:id every 50 ms until the job reaches `wanted`. */
export async function waitForStatus(
  url: string,
  id: string,
  wanted: StatusBody['status'] = 'COMPLETED',
  timeoutMs = 60_000,
): Promise<StatusBody> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const res = await getJson(url, `/status/${id}`);
    last = res.body;
    if (res.status === 200 && (res.body as StatusBody).status === wanted) {
      return res.body as StatusBody;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `job ${id} did not reach ${wanted} within ${timeoutMs} ms; last status: ${JSON.stringify(last)}`,
      );
    }
    await sleep(50);
  }
}

/** Every product of a job, through GET /status/:id/products. */
export async function getProducts(url: string, id: string): Promise<ProductsBody> {
  const res = await getJson(url, `/status/${id}/products?limit=500`);
  if (res.status !== 200) throw new Error(`products answered ${res.status}`);
  return res.body as ProductsBody;
}

/** The results CSV of a COMPLETED job, parsed. */
export async function downloadCsv(
  url: string,
  id: string,
): Promise<{ res: Response; text: string; rows: string[][] }> {
  const res = await fetch(`${url}/download/${id}`, { signal: timeout() });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`download answered ${res.status}: ${text}`);
  return { res, text, rows: await parseCsv(text) };
}

/** Parses CSV text (RFC 4180, quoted fields, CRLF) into rows of cells. */
export function parseCsv(text: string): Promise<string[][]> {
  return new Promise((resolve, reject) => {
    const rows: string[][] = [];
    parseString<string[], string[]>(text, { headers: false })
      .on('error', reject)
      .on('data', (row: string[]) => rows.push(row))
      .on('end', () => resolve(rows));
  });
}

/** Splits an `Output Image Urls` cell position for position (empty string for a failure). */
export function splitOutputs(cell: string): string[] {
  return cell.split(',').map((part) => part.trim());
}

export async function fetchBytes(url: string): Promise<{ res: Response; body: Buffer }> {
  const res = await fetch(url, { signal: timeout() });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** A CSV with the standard header; each entry of `rows` is the image-URL cell of one row. */
export function productCsv(rows: string[][]): string {
  const lines = ['Serial Number,Product Name,Input Image Urls'];
  rows.forEach((urls, i) => {
    lines.push(`${i + 1},Product ${i + 1},"${urls.join(', ')}"`);
  });
  return `${lines.join('\n')}\n`;
}

/** A direct upload as GET /images/:id shows it. */
export interface UploadedImageBody {
  id: string;
  status: 'processing' | 'processed' | 'failed';
  original_name: string | null;
  created_at: string;
  metadata: MetadataBody | null;
  output_url: string | null;
  thumbnails: { small: string | null; medium: string | null };
  error: string | null;
  status_url: string;
}

/** POSTs `bytes` to /images as the `file` field of a multipart form, with `fields` before it. */
export async function uploadImage(
  url: string,
  bytes: Buffer,
  {
    fields = {},
    filename = 'photo.jpg',
    query = '',
  }: { fields?: Record<string, string>; filename?: string; query?: string } = {},
): Promise<HttpResult> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), filename);
  const res = await fetch(`${url}/images${query}`, {
    method: 'POST',
    body: form,
    signal: timeout(),
  });
  return { status: res.status, headers: res.headers, body: await readBody(res) };
}

/** Polls GET /images/:id every 50 ms until it is no longer `processing`. */
export async function waitForImage(
  url: string,
  id: string,
  timeoutMs = 20_000,
): Promise<UploadedImageBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await getJson(url, `/images/${id}`);
    const body = res.body as UploadedImageBody;
    if (res.status === 200 && body.status !== 'processing') return body;
    if (Date.now() > deadline) {
      throw new Error(
        `image ${id} still processing after ${timeoutMs} ms: ${JSON.stringify(body)}`,
      );
    }
    await sleep(50);
  }
}
