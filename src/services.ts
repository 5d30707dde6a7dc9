import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Config } from './config.js';
import { ImageUploads } from './domain/image-uploads.js';
import { ImageWorker } from './domain/image-worker.js';
import { JobService } from './domain/job-service.js';
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
  worker: ImageWorker;
  dispatcher: Dispatcher;
  /** Resumes unfinished work and starts the image pool and the webhook dispatcher. */
  start(): Promise<void>;
  /**
   * Stops taking images and webhooks, waits for those in flight up to the deadline, and
   * closes the store.
   */
  stop(deadlineMs: number): Promise<void>;
}

const ABANDONED_UPLOAD_MS = 10 * 60_000;

export async function createServices(config: Config, log: Logger): Promise<Services> {
  const store = createStore(config);
  await store.init();
  const policy = new OutboundPolicy({
    allowPrivateNetworks: config.allowPrivateNetworks,
    allowlist: config.outboundAllowlist,
  });
  const dispatcher = createOutboundDispatcher(config.downloadTimeoutMs, policy);
  const pipeline = new ImagePipeline(config, dispatcher);
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
  );
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
      concurrency: config.concurrency,
      perHostConcurrency: config.perHostConcurrency,
      leaseMs: config.leaseMs,
      idlePollMs: 1000,
    },
    log,
    async (job) => {
      await jobs.finishJob(job);
      uploads.jobFinished(job.id);
    },
  );
  const sweeper = setInterval(() => {
    jobs.sweepAbandoned().catch((err: unknown) => log.error({ err }, 'sweep failed'));
  }, ABANDONED_UPLOAD_MS);
  sweeper.unref();

  const running = worker;
  return {
    config,
    store,
    jobs,
    uploads,
    worker: running,
    dispatcher,
    async start() {
      await jobs.resume();
      running.start();
      webhooks.start();
    },
    async stop(deadlineMs) {
      clearInterval(sweeper);
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
