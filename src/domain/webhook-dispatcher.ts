import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Metrics } from '../metrics/metrics.js';
import type { JobRecord, JobStore } from '../store/job-store.js';
import {
  afterAttempt,
  type RetryPolicy,
  sendWebhook,
  webhookId,
  webhookPayload,
} from './webhook.js';
import { Alarm } from './alarm.js';
import { jobLog } from './job-log.js';

export interface WebhookDispatcherSettings {
  /** Signs every call when set. */
  secret: string | null;
  timeoutMs: number;
  retry: RetryPolicy;
  /** How often to look for due deliveries nobody told us about (restarts, other processes). */
  pollMs: number;
  /** Most calls in flight at once, so slow receivers cannot hold up every other delivery. */
  concurrency: number;
}

/** Time after an attempt's own deadline for its outcome to be recorded. */
const LEASE_MARGIN_MS = 30_000;
/** How long a stop waits, after cutting calls off, for their outcomes to be recorded. */
const RECORD_AFTER_ABORT_MS = 2000;

/**
 * The one webhook sender of the process. The schedule lives in the store (each pending
 * webhook's `nextAttemptAt`), so this only claims what is due, with an owner and a lease
 * (two processes sharing a database never make the same attempt), sends it, and records
 * the outcome, which schedules the next attempt or settles the webhook.
 */
export class WebhookDispatcher {
  readonly owner = randomUUID();
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly alarm = new Alarm();
  private readonly inFlight = new Set<Promise<void>>();
  /** Aborted when a stop runs out of time: calls still in flight end at once. */
  private readonly shutdown = new AbortController();
  /** The earliest retry this process scheduled, so it need not wait for the next poll. */
  private soonest: number | null = null;

  constructor(
    private readonly store: JobStore,
    private readonly http: Dispatcher,
    private readonly settings: WebhookDispatcherSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** A webhook may have become due (a job completed): look now rather than at the next poll. */
  wake(): void {
    this.alarm.wake();
  }

  /**
   * Stops claiming and waits for the calls in flight up to `deadlineMs`; calls still
   * running then are cut off and recorded as failed attempts (the receiver may have seen
   * them), to be retried by the next start. True when nothing had to be cut off.
   */
  async stop(deadlineMs: number): Promise<boolean> {
    this.running = false;
    this.wake();
    await this.loopDone;
    const drained = await this.settled(deadlineMs);
    if (!drained) {
      this.shutdown.abort();
      await this.settled(RECORD_AFTER_ABORT_MS);
    }
    return drained;
  }

  private async settled(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const done = Promise.all(this.inFlight).then(() => true as const);
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let checkedAt = Date.now();
      while (this.running && this.inFlight.size < this.settings.concurrency) {
        checkedAt = Date.now();
        const job = await this.claim(checkedAt);
        if (job === null) break;
        this.track(job);
      }
      // A retry due by the last look has been taken (by us or by another process).
      if (this.soonest !== null && this.soonest <= checkedAt) this.soonest = null;
      const untilSoonest = this.soonest === null ? Infinity : this.soonest - Date.now();
      await this.alarm.sleep(Math.max(0, Math.min(this.settings.pollMs, untilSoonest)));
    }
  }

  private async claim(now: number): Promise<JobRecord | null> {
    try {
      return await this.store.claimDueWebhook(
        this.owner,
        new Date(now),
        new Date(now + this.settings.timeoutMs + LEASE_MARGIN_MS),
      );
    } catch (err) {
      this.log.error({ err }, 'could not claim due webhooks');
      return null;
    }
  }

  private track(job: JobRecord): void {
    const delivery: Promise<void> = this.deliver(job)
      .catch((err: unknown) => {
        // The claim's lease runs out, and the attempt is then made again.
        jobLog(this.log, job.id).error({ err }, 'could not record a webhook attempt');
      })
      .finally(() => {
        this.inFlight.delete(delivery);
        this.wake();
      });
    this.inFlight.add(delivery);
  }

  private async deliver(job: JobRecord): Promise<void> {
    const webhook = job.webhook;
    if (webhook === null) return;
    const attempt = await sendWebhook(
      {
        url: webhook.url,
        id: webhookId(job.id, webhook),
        attempt: webhook.attempts + 1,
        body: JSON.stringify(webhookPayload(job)),
        secret: this.settings.secret,
      },
      this.http,
      this.settings.timeoutMs,
      this.shutdown.signal,
    );
    const now = new Date();
    const progress = afterAttempt(webhook, attempt, this.settings.retry, now);
    this.metrics.webhookAttempted(
      progress.status === 'DELIVERED'
        ? 'delivered'
        : progress.status === 'FAILED'
          ? 'failed'
          : 'retried',
    );
    const log = jobLog(this.log, job.id);
    if (!(await this.store.recordWebhookAttempt(job.id, this.owner, progress, now))) {
      log.warn(
        { attempt: attempt.attempt },
        'webhook claim was lost before its attempt was recorded',
      );
      return;
    }
    const next = progress.nextAttemptAt?.getTime() ?? null;
    if (next !== null && (this.soonest === null || next < this.soonest)) this.soonest = next;
    log[progress.status === 'FAILED' ? 'warn' : 'info'](
      {
        attempt: attempt.attempt,
        webhook: progress.status,
        httpStatus: attempt.httpStatus,
        error: attempt.error,
        durationMs: attempt.durationMs,
        nextAttemptAt: progress.nextAttemptAt,
      },
      'webhook attempt',
    );
  }
}
