import path from 'node:path';
import t from 'tap';
import { type Config, ConfigError, loadConfig } from '../src/config.js';
import cores from '../src/cores.cjs';

const MiB = 1024 * 1024;
/** CONCURRENCY's default: two per core, counted as test/cores.test.ts checks. */
const encodes = cores.concurrencyFor(cores.availableCores());

t.test('defaults', async (t) => {
  const expected: Config = {
    port: 8000,
    host: '127.0.0.1',
    publicBaseUrl: null,
    dataDir: path.resolve('data'),
    uploadsDir: path.resolve('data', 'uploads'),
    imagesDir: path.resolve('processed_images'),
    resultsDir: path.resolve('processed_results'),
    mongodbUri: null,
    mongodbDb: 'image_batch_service',
    concurrency: encodes,
    downloadConcurrency: 4 * encodes,
    downloadTimeoutMs: 30_000,
    downloadRetries: 2,
    downloadRetryBaseMs: 500,
    downloadRetryMaxMs: 10_000,
    perHostConcurrency: 4 * encodes,
    apiToken: null,
    overloadEventLoopDelayMs: 1000,
    overloadRssBytes: 1536 * MiB,
    webhookTimeoutMs: 10_000,
    webhookSecret: null,
    webhookMaxAttempts: 6,
    webhookRetryBaseMs: 1000,
    webhookRetryMaxMs: 300_000,
    maxImageBytes: 25 * MiB,
    maxImagePixels: 100_000_000,
    imageWaitMs: 10_000,
    maxCsvBytes: 50 * MiB,
    maxRows: 100_000,
    maxUrlsPerRow: 50,
    leaseMs: 30_000,
    retentionDays: null,
    logLevel: 'info',
    logPretty: false,
    allowPrivateNetworks: false,
    outboundAllowlist: [],
  };
  t.strictSame(loadConfig({}), expected);
  t.strictSame(
    loadConfig({ PORT: '', LOG_LEVEL: '  ', MONGODB_URI: '', RETENTION_DAYS: '' }),
    expected,
    'blank is unset',
  );
});

t.test('DOWNLOAD_CONCURRENCY follows CONCURRENCY, PER_HOST_CONCURRENCY follows that', async (t) => {
  t.strictSame(pick(loadConfig({ CONCURRENCY: '3' })), [3, 12, 12]);
  t.strictSame(pick(loadConfig({ CONCURRENCY: '3', DOWNLOAD_CONCURRENCY: '4' })), [3, 4, 4]);
  t.strictSame(
    pick(loadConfig({ CONCURRENCY: '3', DOWNLOAD_CONCURRENCY: '4', PER_HOST_CONCURRENCY: '2' })),
    [3, 4, 2],
  );
  t.strictSame(pick(loadConfig({ CONCURRENCY: '256' })), [256, 1024, 1024]);
});

function pick(config: Config): number[] {
  return [config.concurrency, config.downloadConcurrency, config.perHostConcurrency];
}

t.test('valid values', async (t) => {
  const config = loadConfig({
    PORT: ' 9090 ',
    HOST: '0.0.0.0',
    PUBLIC_BASE_URL: 'https://images.example.test/',
    DATA_DIR: '/srv/data',
    IMAGES_DIR: 'relative/images',
    RESULTS_DIR: '/srv/results',
    MONGODB_URI: 'mongodb+srv://user:pw@cluster.test/db',
    MONGODB_DB: 'other',
    CONCURRENCY: '256',
    DOWNLOAD_CONCURRENCY: '1024',
    DOWNLOAD_TIMEOUT_MS: '100',
    DOWNLOAD_RETRIES: '0',
    DOWNLOAD_RETRY_BASE_MS: '1',
    DOWNLOAD_RETRY_MAX_MS: '3600000',
    PER_HOST_CONCURRENCY: '1',
    API_TOKEN: 'a-token-of-16-chars',
    OVERLOAD_EVENT_LOOP_DELAY_MS: '10',
    OVERLOAD_RSS_MB: '0',
    WEBHOOK_TIMEOUT_MS: '600000',
    WEBHOOK_SECRET: ' a-secret-of-16-chars ',
    WEBHOOK_MAX_ATTEMPTS: '1',
    WEBHOOK_RETRY_BASE_MS: '3600000',
    WEBHOOK_RETRY_MAX_MS: '3600000',
    MAX_IMAGE_BYTES: '1024',
    MAX_IMAGE_PIXELS: '1',
    IMAGE_WAIT_MS: '0',
    MAX_CSV_BYTES: String(1024 * MiB),
    MAX_ROWS: '1',
    MAX_URLS_PER_ROW: '10000',
    LEASE_MS: '500',
    RETENTION_DAYS: ' 30 ',
    LOG_LEVEL: 'silent',
    NODE_ENV: 'development',
    ALLOW_PRIVATE_NETWORKS: 'yes',
    OUTBOUND_ALLOWLIST: ' 127.0.0.1:8080, Images.Internal:443 ,,[::1]:80',
  });
  t.strictSame(config, {
    port: 9090,
    host: '0.0.0.0',
    publicBaseUrl: 'https://images.example.test',
    dataDir: '/srv/data',
    uploadsDir: '/srv/data/uploads',
    imagesDir: path.resolve('relative/images'),
    resultsDir: '/srv/results',
    mongodbUri: 'mongodb+srv://user:pw@cluster.test/db',
    mongodbDb: 'other',
    concurrency: 256,
    downloadConcurrency: 1024,
    downloadTimeoutMs: 100,
    downloadRetries: 0,
    downloadRetryBaseMs: 1,
    downloadRetryMaxMs: 3_600_000,
    perHostConcurrency: 1,
    apiToken: 'a-token-of-16-chars',
    overloadEventLoopDelayMs: 10,
    overloadRssBytes: 0,
    webhookTimeoutMs: 600_000,
    webhookSecret: 'a-secret-of-16-chars',
    webhookMaxAttempts: 1,
    webhookRetryBaseMs: 3_600_000,
    webhookRetryMaxMs: 3_600_000,
    maxImageBytes: 1024,
    maxImagePixels: 1,
    imageWaitMs: 0,
    maxCsvBytes: 1024 * MiB,
    maxRows: 1,
    maxUrlsPerRow: 10_000,
    leaseMs: 500,
    retentionDays: 30,
    logLevel: 'silent',
    logPretty: true,
    allowPrivateNetworks: true,
    outboundAllowlist: ['127.0.0.1:8080', 'images.internal:443', '[::1]:80'],
  });
  t.equal(loadConfig({ PORT: '0' }).port, 0, 'port 0 (any free port) is allowed');
  t.equal(loadConfig({ NODE_ENV: 'production' }).logPretty, false, 'JSON logs but in development');
  t.equal(loadConfig({ PORT: '65535' }).port, 65535);
  t.equal(loadConfig({ RETENTION_DAYS: '1' }).retentionDays, 1, 'a day at least');
  t.equal(
    loadConfig({ MONGODB_URI: 'mongodb://localhost:27017' }).mongodbUri,
    'mongodb://localhost:27017',
  );
});

t.test('ALLOW_PRIVATE_NETWORKS spellings', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['False', false],
    ['0', false],
    ['no', false],
  ];
  for (const [raw, expected] of cases) {
    t.equal(loadConfig({ ALLOW_PRIVATE_NETWORKS: raw }).allowPrivateNetworks, expected, raw);
  }
});

t.test('PUBLIC_BASE_URL loses its trailing slashes', async (t) => {
  const cases: Array<[string, string]> = [
    ['http://x.test/', 'http://x.test'],
    ['http://x.test', 'http://x.test'],
    ['https://x.test/base/', 'https://x.test/base'],
    ['https://x.test/base//', 'https://x.test/base'],
    ['HTTPS://X.TEST:8443/', 'https://x.test:8443'],
  ];
  for (const [raw, expected] of cases) {
    t.equal(loadConfig({ PUBLIC_BASE_URL: raw }).publicBaseUrl, expected, raw);
  }
});

t.test('each invalid variable throws a ConfigError naming it', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['PORT', 'abc', /must be a whole number \(got "abc"\)/],
    ['PORT', '70000', /between 0 and 65535 \(got 70000\)/],
    ['PORT', '-1', /whole number/],
    ['PORT', '80.5', /whole number/],
    ['CONCURRENCY', '0', /between 1 and 256 \(got 0\)/],
    ['CONCURRENCY', '257', /between 1 and 256/],
    ['DOWNLOAD_RETRIES', '11', /between 0 and 10/],
    ['DOWNLOAD_CONCURRENCY', '0', /between 1 and 1024 \(got 0\)/],
    ['DOWNLOAD_CONCURRENCY', '1025', /between 1 and 1024/],
    ['PER_HOST_CONCURRENCY', '0', /between 1 and 1024/],
    ['API_TOKEN', 'short', /at least 16 characters/],
    ['OVERLOAD_RSS_MB', 'lots', /whole number/],
    ['LEASE_MS', '499', /between 500 and 3600000/],
    ['WEBHOOK_SECRET', 'short', /must be at least 16 characters long/],
    ['WEBHOOK_MAX_ATTEMPTS', '0', /between 1 and 100 \(got 0\)/],
    ['WEBHOOK_MAX_ATTEMPTS', 'six', /whole number/],
    ['WEBHOOK_RETRY_BASE_MS', '9', /between 10 and 86400000/],
    ['WEBHOOK_RETRY_MAX_MS', '604800001', /between 10 and 604800000/],
    ['WEBHOOK_RETRY_MAX_MS', '999', /must be at least WEBHOOK_RETRY_BASE_MS \(1000\) \(got 999\)/],
    ['MAX_ROWS', '0', /between 1 and 10000000/],
    ['RETENTION_DAYS', '0', /between 1 and 36500 \(got 0\)/],
    ['RETENTION_DAYS', '36501', /between 1 and 36500/],
    ['RETENTION_DAYS', '7.5', /whole number/],
    ['RETENTION_DAYS', 'forever', /whole number \(got "forever"\)/],
    ['MAX_URLS_PER_ROW', 'many', /whole number/],
    ['DOWNLOAD_TIMEOUT_MS', '99', /between 100 and 600000/],
    ['MAX_IMAGE_BYTES', '1023', /between 1024/],
    ['IMAGE_WAIT_MS', '60001', /between 0 and 60000/],
    [
      'LOG_LEVEL',
      'loud',
      /must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)/,
    ],
    ['ALLOW_PRIVATE_NETWORKS', 'maybe', /must be true or false \(got "maybe"\)/],
    ['PUBLIC_BASE_URL', 'ftp://x', /must be an absolute http\(s\) URL \(got "ftp:\/\/x"\)/],
    ['PUBLIC_BASE_URL', 'x.test/base', /absolute http\(s\) URL/],
    ['PUBLIC_BASE_URL', '/relative', /absolute http\(s\) URL/],
    ['MONGODB_URI', 'http://x', /must start with mongodb:\/\/ or mongodb\+srv:\/\//],
    ['MONGODB_URI', 'localhost:27017', /must start with mongodb:\/\//],
    ['OUTBOUND_ALLOWLIST', '127.0.0.1', /invalid entry "127\.0\.0\.1" must be host:port/],
    ['OUTBOUND_ALLOWLIST', 'a.test:80,http://b.test:80', /invalid entry "http:\/\/b\.test:80"/],
    ['OUTBOUND_ALLOWLIST', 'a.test:0', /port from 1 to 65535/],
    ['OUTBOUND_ALLOWLIST', '::1:8080', /must be host:port/],
  ];
  for (const [variable, value, reason] of cases) {
    t.throws(
      () => loadConfig({ [variable]: value }),
      {
        name: 'ConfigError',
        variable,
        message: new RegExp(`^Invalid configuration: ${variable} `),
      },
      `${variable}=${value} is named`,
    );
    let caught: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (err) {
      caught = err;
    }
    t.type(caught, ConfigError, `${variable}=${value} is a ConfigError`);
    t.match(caught, { message: reason }, `${variable}=${value} says why`);
  }
});
