import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Config } from './config.js';
import { ImageUploads } from './domain/image-uploads.js';
import { ImageWorker } from './domain/image-worker.js';
import { JobManager } from './domain/job-manager.js';
import { JobService } from './domain/job-service.js';
import { JobWatchers } from './domain/job-watchers.js';
import { RetentionSweeper } from './domain/retention.js';
import { ImageTally, StatsService } from './domain/stats.js';
import { PrometheusMetrics } from './metrics/prometheus.js';
import { WebhookDispatcher } from './domain/webhook-dispatcher.js';
import { createOutboundDispatcher } from './pipeline/download.js';
import { ImagePipeline } from './pipeline/image-pipeline.js';
import { OutboundPolicy } from './pipeline/outbound-policy.js';
import { createStore } from './store/index.js';
import type { JobStore } from './store/job-store.js';

/** The domain, wired once per process and shared by the HTTP routes and the worker. */
export interface Services {
  config: Config;
  store: JobStore;
  jobs: JobService;
  uploads: ImageUploads;
  /** Deletes and cancels jobs, retries failed images, expires old jobs. */
  manager: JobManager;
  /** Processing statistics, since start and of all time. */
  stats: StatsService;
  /** Live progress of jobs, shared by every client watching the same job. */
  watchers: JobWatchers;
  worker: ImageWorker;
  dispatcher: Dispatcher;
  /** This service's metrics, in a registry of its own. */
  metrics: PrometheusMetrics;
  /** Resumes unfinished work and starts the image pool and the webhook dispatcher. */
  start(): Promise<void>;
  /**
   * Stops taking images and webhooks, waits for those in flight up to the deadline, and
   * closes the store.
   */
  stop(deadlineMs: number): Promise<void>;
}

const ABANDONED_UPLOAD_MS = 10 * 60_000;
const RETENTION_SWEEP_MS = 60 * 60_000;
/** A watched job is read at most this often, so clients see at most ~4 updates a second. */
const WATCH_INTERVAL_MS = 250;
const WATCH_KEEPALIVE_MS = 15_000;

export async function createServices(config: Config, log: Logger): Promise<Services> {
  const store = createStore(config);
  await store.init();
  const policy = new OutboundPolicy({
    allowPrivateNetworks: config.allowPrivateNetworks,
    allowlist: config.outboundAllowlist,
  });
  const dispatcher = createOutboundDispatcher(config.downloadTimeoutMs, policy);
  const metrics = new PrometheusMetrics();
  const pipeline = new ImagePipeline(config, dispatcher, metrics);
  const webhooks = new WebhookDispatcher(
    store,
    dispatcher,
    {
      secret: config.webhookSecret,
      timeoutMs: config.webhookTimeoutMs,
      retry: {
        maxAttempts: config.webhookMaxAttempts,
        baseMs: config.webhookRetryBaseMs,
        maxMs: config.webhookRetryMaxMs,
      },
      pollMs: 1000,
      concurrency: 8,
    },
    log,
    metrics,
  );
  const stats = new StatsService(store, new ImageTally());
  let worker: ImageWorker | null = null;
  const jobs = new JobService(
    store,
    {
      limits: {
        maxRows: config.maxRows,
        maxUrlsPerRow: config.maxUrlsPerRow,
        maxUrlLength: 2048,
      },
      resultsDir: config.resultsDir,
      abandonedAfterMs: ABANDONED_UPLOAD_MS,
    },
    log,
    () => worker?.wake(),
    () => webhooks.wake(),
  );
  const uploads = new ImageUploads(store, config.uploadsDir, log, () => worker?.wake());
  worker = new ImageWorker(
    store,
    pipeline,
    {
      imagesDir: config.imagesDir,
      concurrency: config.concurrency,
      downloadConcurrency: config.downloadConcurrency,
      perHostConcurrency: config.perHostConcurrency,
      leaseMs: config.leaseMs,
      idlePollMs: 1000,
    },
    log,
    async (job) => {
      await jobs.finishJob(job);
      uploads.jobFinished(job.id);
    },
    stats.tally,
  );
  const manager = new JobManager(store, worker, config, log);
  const retention =
    config.retentionDays === null
      ? null
      : new RetentionSweeper(
          manager,
          { retentionDays: config.retentionDays, everyMs: RETENTION_SWEEP_MS },
          log,
        );
  const watchers = new JobWatchers(
    (id) => jobs.getJob(id),
    { intervalMs: WATCH_INTERVAL_MS, keepaliveMs: WATCH_KEEPALIVE_MS },
    log,
  );
  const running = worker;
  metrics.observe({
    poolQueued: () => running.queuedCount,
    poolInFlight: () => running.runningCount,
    jobsByStatus: () => store.countJobs(),
    sseClients: () => watchers.listenerCount,
    sseWatchedJobs: () => watchers.watchedJobs,
  });
  const sweeper = setInterval(() => {
    jobs.sweepAbandoned().catch((err: unknown) => log.error({ err }, 'sweep failed'));
  }, ABANDONED_UPLOAD_MS);
  sweeper.unref();

  return {
    config,
    store,
    jobs,
    uploads,
    manager,
    stats,
    watchers,
    worker: running,
    dispatcher,
    metrics,
    async start() {
      await manager.resume();
      await jobs.resume();
      running.start();
      webhooks.start();
      retention?.start();
    },
    async stop(deadlineMs) {
      clearInterval(sweeper);
      await retention?.stop();
      const [drained, delivered] = await Promise.all([
        running.stop(deadlineMs),
        webhooks.stop(deadlineMs),
      ]);
      if (!drained) log.warn('stopped with images still in flight; they resume at the next start');
      if (!delivered)
        log.warn('stopped with webhook calls cut off; they are retried at the next start');
      // Nothing of ours is in flight any more; destroy rather than close so that no
      // straggling connection can hold the exit.
      await dispatcher.destroy();
      await store.close();
    },
  };
}
