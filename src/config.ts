import path from 'node:path';

export const OUTPUT_FORMATS = ['jpeg', 'webp', 'avif', 'png'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Config {
  port: number;
  host: string;
  /** Base for the absolute URLs we hand out; when empty, taken from the upload request. */
  publicBaseUrl: string | null;
  dataDir: string;
  imagesDir: string;
  resultsDir: string;
  mongodbUri: string | null;
  mongodbDb: string;
  concurrency: number;
  downloadTimeoutMs: number;
  webhookTimeoutMs: number;
  maxImageBytes: number;
  maxImagePixels: number;
  maxCsvBytes: number;
  maxRows: number;
  maxUrlsPerRow: number;
  leaseMs: number;
  logLevel: string;
  allowPrivateNetworks: boolean;
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
  return {
    port: integer(env, 'PORT', 8000, 0, 65535),
    host: read(env, 'HOST') ?? '127.0.0.1',
    publicBaseUrl: baseUrl(env, 'PUBLIC_BASE_URL'),
    dataDir,
    imagesDir: path.resolve(read(env, 'IMAGES_DIR') ?? 'processed_images'),
    resultsDir: path.resolve(read(env, 'RESULTS_DIR') ?? 'processed_results'),
    mongodbUri,
    mongodbDb: read(env, 'MONGODB_DB') ?? 'image_batch_service',
    concurrency: integer(env, 'CONCURRENCY', 8, 1, 256),
    downloadTimeoutMs: integer(env, 'DOWNLOAD_TIMEOUT_MS', 30_000, 100, 600_000),
    webhookTimeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 600_000),
    maxImageBytes: integer(env, 'MAX_IMAGE_BYTES', 25 * MiB, 1024, 1024 * MiB),
    maxImagePixels: integer(env, 'MAX_IMAGE_PIXELS', 100_000_000, 1, 1_000_000_000),
    maxCsvBytes: integer(env, 'MAX_CSV_BYTES', 50 * MiB, 1024, 1024 * MiB),
    maxRows: integer(env, 'MAX_ROWS', 100_000, 1, 10_000_000),
    maxUrlsPerRow: integer(env, 'MAX_URLS_PER_ROW', 50, 1, 10_000),
    leaseMs: integer(env, 'LEASE_MS', 30_000, 500, 3_600_000),
    logLevel,
    allowPrivateNetworks: boolean(env, 'ALLOW_PRIVATE_NETWORKS', false),
  };
}
