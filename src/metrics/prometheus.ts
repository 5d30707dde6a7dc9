import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { IMAGE_FAILURE_KINDS, type ImageFailureKind } from '../pipeline/image-error.js';
import type { VisibleJobStatus } from '../store/job-store.js';
import type { Metrics, WebhookOutcome } from './metrics.js';

const PREFIX = 'image_batch_';
const WEBHOOK_OUTCOMES: WebhookOutcome[] = ['delivered', 'retried', 'failed'];

/** Point-in-time values, read when Prometheus scrapes rather than kept up to date. */
export interface GaugeSources {
  /** Images claimed by the pool and waiting for a slot or for their host's turn. */
  poolQueued(): number;
  /** Images being downloaded or encoded now. */
  poolInFlight(): number;
  jobsByStatus(): Promise<Record<VisibleJobStatus, number>>;
  /** Open event streams (GET /status/:id/events). */
  sseClients(): number;
  /** Jobs those streams watch: each costs one store read per tick. */
  sseWatchedJobs(): number;
}

/**
 * The service's metrics in a registry of its own (not prom-client's global one), so that
 * several services in one process, as in the tests, each count only their own work.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly processed: Counter;
  private readonly failed: Counter<'reason'>;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;
  private readonly downloadSeconds: Histogram;
  private readonly encodeSeconds: Histogram;
  private readonly webhooks: Counter<'outcome'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.processed = new Counter({
      name: `${PREFIX}images_processed_total`,
      help: 'Images downloaded, re-encoded and stored',
      registers,
    });
    this.failed = new Counter({
      name: `${PREFIX}images_failed_total`,
      help: 'Images that failed, by reason',
      labelNames: ['reason'],
      registers,
    });
    // Every reason from 0, so that a rate over a reason that has not happened yet is 0.
    for (const reason of IMAGE_FAILURE_KINDS) this.failed.inc({ reason }, 0);
    this.bytesIn = new Counter({
      name: `${PREFIX}image_bytes_in_total`,
      help: 'Bytes downloaded, of every image that arrived',
      registers,
    });
    this.bytesOut = new Counter({
      name: `${PREFIX}image_bytes_out_total`,
      help: 'Bytes of the compressed images stored',
      registers,
    });
    this.downloadSeconds = new Histogram({
      name: `${PREFIX}download_duration_seconds`,
      help: 'Time to fetch an image, retries included, for the images that arrived',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.encodeSeconds = new Histogram({
      name: `${PREFIX}encode_duration_seconds`,
      help: 'Time to decode and re-encode an image, for the images that were encoded',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.webhooks = new Counter({
      name: `${PREFIX}webhook_deliveries_total`,
      help: 'Webhook calls by outcome: delivered (2xx), retried (failed, retry scheduled), failed (failed, none left)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of WEBHOOK_OUTCOMES) this.webhooks.inc({ outcome }, 0);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Adds the gauges read at scrape time, once what they read exists. */
  observe(sources: GaugeSources): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('pool_queued_images', 'Images claimed and in no pool slot', sources.poolQueued);
    gauge('pool_in_flight_images', 'Images being downloaded or encoded', sources.poolInFlight);
    gauge('sse_clients', 'Open progress event streams', sources.sseClients);
    gauge('sse_watched_jobs', 'Jobs watched for event streams', sources.sseWatchedJobs);
    new Gauge({
      name: `${PREFIX}jobs`,
      help: 'Jobs in the store by status (all processes sharing it)',
      labelNames: ['status'],
      registers,
      async collect() {
        for (const [status, count] of Object.entries(await sources.jobsByStatus())) {
          this.set({ status }, count);
        }
      },
    });
  }

  imageProcessed(bytesIn: number, bytesOut: number): void {
    this.processed.inc();
    this.bytesIn.inc(bytesIn);
    this.bytesOut.inc(bytesOut);
  }

  imageFailed(kind: ImageFailureKind, bytesIn: number | null): void {
    this.failed.inc({ reason: kind });
    if (bytesIn !== null) this.bytesIn.inc(bytesIn);
  }

  downloaded(seconds: number): void {
    this.downloadSeconds.observe(seconds);
  }

  encoded(seconds: number): void {
    this.encodeSeconds.observe(seconds);
  }

  webhookAttempted(outcome: WebhookOutcome): void {
    this.webhooks.inc({ outcome });
  }
}
