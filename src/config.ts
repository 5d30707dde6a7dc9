import path from 'node:path';
import cores from './cores.cjs';
import { parseAllowlist } from './pipeline/outbound-policy.js';

export const OUTPUT_FORMATS = ['jpeg', 'webp', 'avif', 'png'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Config {
  port: number;
  host: string;
  /** Base for the absolute URLs we hand out; when empty, taken from the upload request. */
  publicBaseUrl: string | null;
  dataDir: string;
  /** Direct uploads, saved until their job is deleted: `DATA_DIR/uploads`. */
  uploadsDir: string;
  imagesDir: string;
  resultsDir: string;
  mongodbUri: string | null;
  mongodbDb: string;
  /** Images decoded and re-encoded at once: the CPU-bound stage. */
  concurrency: number;
  /** Images downloaded, or downloaded and waiting for an encode, at once. */
  downloadConcurrency: number;
  downloadTimeoutMs: number;
  /** Retries of a download that failed in a way that may pass (timeouts, 429, 5xx). */
  downloadRetries: number;
  downloadRetryBaseMs: number;
  downloadRetryMaxMs: number;
  /** Images downloaded from one host at once, so one slow host cannot take every slot. */
  perHostConcurrency: number;
  /** Bearer token every endpoint but /health requires; null leaves the API open. */
  apiToken: string | null;
  /** Event-loop delay past which new uploads are turned away with 503; 0 turns the check off. */
  overloadEventLoopDelayMs: number;
  /** Resident memory past which new uploads are turned away with 503; 0 turns the check off. */
  overloadRssBytes: number;
  webhookTimeoutMs: number;
  /** Key the webhook body is signed with (HMAC-SHA256); null sends webhooks unsigned. */
  webhookSecret: string | null;
  /** Calls made for one webhook before it is FAILED, the first one included. */
  webhookMaxAttempts: number;
  /** Wait before the first retry; each later one doubles it, up to `webhookRetryMaxMs`. */
  webhookRetryBaseMs: number;
  webhookRetryMaxMs: number;
  maxImageBytes: number;
  maxImagePixels: number;
  /** Longest `POST /images?wait=true` waits for the image before answering 202. */
  imageWaitMs: number;
  maxCsvBytes: number;
  maxRows: number;
  maxUrlsPerRow: number;
  leaseMs: number;
  /** Finished jobs are deleted, with their files, this many days after they completed; null keeps them. */
  retentionDays: number | null;
  logLevel: string;
  /** Pretty log lines (NODE_ENV=development) instead of JSON. */
  logPretty: boolean;
  allowPrivateNetworks: boolean;
  /** `host:port` entries (normalised) that downloads and webhooks may reach whatever their address. */
  outboundAllowlist: string[];
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number (got "${raw}")`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max} (got ${value})`);
  }
  return value;
}

function optionalInteger(env: Env, name: string, min: number, max: number): number | null {
  return read(env, name) === undefined ? null : integer(env, name, min, min, max);
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false (got "${raw}")`);
}

function baseUrl(env: Env, name: string): string | null {
  const raw = read(env, name);
  if (raw === undefined) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute http(s) URL (got "${raw}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `must be an absolute http(s) URL (got "${raw}")`);
  }
  return url.href.replace(/\/+$/, '');
}

function apiToken(env: Env): string | null {
  const token = read(env, 'API_TOKEN');
  if (token === undefined) return null;
  if (token.length < 16) throw new ConfigError('API_TOKEN', 'must be at least 16 characters long');
  return token;
}

function allowlist(env: Env, name: string): string[] {
  const raw = read(env, name);
  if (raw === undefined) return [];
  try {
    return parseAllowlist(raw);
  } catch (err) {
    throw new ConfigError(name, `has an invalid ${(err as Error).message}`);
  }
}

function webhookSecret(env: Env): string | null {
  const secret = read(env, 'WEBHOOK_SECRET');
  if (secret === undefined) return null;
  if (secret.length < 16) {
    throw new ConfigError('WEBHOOK_SECRET', 'must be at least 16 characters long');
  }
  return secret;
}

function webhookRetry(env: Env): { webhookRetryBaseMs: number; webhookRetryMaxMs: number } {
  const webhookRetryBaseMs = integer(env, 'WEBHOOK_RETRY_BASE_MS', 1000, 10, 86_400_000);
  const webhookRetryMaxMs = integer(env, 'WEBHOOK_RETRY_MAX_MS', 300_000, 10, 604_800_000);
  if (webhookRetryMaxMs < webhookRetryBaseMs) {
    throw new ConfigError(
      'WEBHOOK_RETRY_MAX_MS',
      `must be at least WEBHOOK_RETRY_BASE_MS (${webhookRetryBaseMs}) (got ${webhookRetryMaxMs})`,
    );
  }
  return { webhookRetryBaseMs, webhookRetryMaxMs };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const MiB = 1024 * 1024;

export function loadConfig(env: Env = process.env): Config {
  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      'LOG_LEVEL',
      `must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`,
    );
  }
  const mongodbUri = read(env, 'MONGODB_URI') ?? null;
  if (mongodbUri !== null && !/^mongodb(\+srv)?:\/\//.test(mongodbUri)) {
    throw new ConfigError('MONGODB_URI', 'must start with mongodb:// or mongodb+srv://');
  }
  const dataDir = path.resolve(read(env, 'DATA_DIR') ?? 'data');
  // Two encodes per core keep every core busy while one of them is between images; more
  // only take CPU from the event loop (on 2 cores, 8 encodes put /status's p99 at ~75 ms
  // against ~35 ms with 4, for the same throughput). Cores are counted with a container's
  // CPU quota (cores.cts); threadpool.cts sizes libuv's pool from the same default.
  const concurrency = integer(env, 'CONCURRENCY', cores.defaultConcurrency(), 1, 256);
  // Downloads wait on the network, not the CPU: enough of them ahead of the encoders to
  // keep those busy with an image server ~300 ms away, at the codec's pace.
  const downloadConcurrency = integer(env, 'DOWNLOAD_CONCURRENCY', 4 * concurrency, 1, 1024);
  return {
    port: integer(env, 'PORT', 8000, 0, 65535),
    host: read(env, 'HOST') ?? '127.0.0.1',
    publicBaseUrl: baseUrl(env, 'PUBLIC_BASE_URL'),
    dataDir,
    uploadsDir: path.join(dataDir, 'uploads'),
    imagesDir: path.resolve(read(env, 'IMAGES_DIR') ?? 'processed_images'),
    resultsDir: path.resolve(read(env, 'RESULTS_DIR') ?? 'processed_results'),
    mongodbUri,
    mongodbDb: read(env, 'MONGODB_DB') ?? 'image_batch_service',
    concurrency,
    downloadConcurrency,
    downloadTimeoutMs: integer(env, 'DOWNLOAD_TIMEOUT_MS', 30_000, 100, 600_000),
    downloadRetries: integer(env, 'DOWNLOAD_RETRIES', 2, 0, 10),
    downloadRetryBaseMs: integer(env, 'DOWNLOAD_RETRY_BASE_MS', 500, 1, 600_000),
    downloadRetryMaxMs: integer(env, 'DOWNLOAD_RETRY_MAX_MS', 10_000, 1, 3_600_000),
    // Catalogues usually sit on one CDN host; a lower cap would leave download slots idle.
    perHostConcurrency: integer(env, 'PER_HOST_CONCURRENCY', downloadConcurrency, 1, 1024),
    apiToken: apiToken(env),
    overloadEventLoopDelayMs: integer(env, 'OVERLOAD_EVENT_LOOP_DELAY_MS', 1000, 0, 60_000),
    overloadRssBytes: integer(env, 'OVERLOAD_RSS_MB', 1536, 0, 1_048_576) * MiB,
    webhookTimeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 600_000),
    webhookSecret: webhookSecret(env),
    webhookMaxAttempts: integer(env, 'WEBHOOK_MAX_ATTEMPTS', 6, 1, 100),
    ...webhookRetry(env),
    maxImageBytes: integer(env, 'MAX_IMAGE_BYTES', 25 * MiB, 1024, 1024 * MiB),
    maxImagePixels: integer(env, 'MAX_IMAGE_PIXELS', 100_000_000, 1, 1_000_000_000),
    imageWaitMs: integer(env, 'IMAGE_WAIT_MS', 10_000, 0, 60_000),
    maxCsvBytes: integer(env, 'MAX_CSV_BYTES', 50 * MiB, 1024, 1024 * MiB),
    maxRows: integer(env, 'MAX_ROWS', 100_000, 1, 10_000_000),
    maxUrlsPerRow: integer(env, 'MAX_URLS_PER_ROW', 50, 1, 10_000),
    leaseMs: integer(env, 'LEASE_MS', 30_000, 500, 3_600_000),
    retentionDays: optionalInteger(env, 'RETENTION_DAYS', 1, 36_500),
    logLevel,
    logPretty: read(env, 'NODE_ENV') === 'development',
    allowPrivateNetworks: boolean(env, 'ALLOW_PRIVATE_NETWORKS', false),
    outboundAllowlist: allowlist(env, 'OUTBOUND_ALLOWLIST'),
  };
}
