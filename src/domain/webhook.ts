import { createHmac } from 'node:crypto';
import { type Dispatcher, request } from 'undici';
import type {
  JobRecord,
  WebhookAttempt,
  WebhookProgress,
  WebhookState,
} from '../store/job-store.js';
import { withDeadline } from '../pipeline/deadline.js';
import { downloadUrl } from './urls.js';

export interface WebhookPayload {
  request_id: string;
  status: string;
  download_url: string;
  images_total: number;
  images_processed: number;
  images_failed: number;
  completed_at: string | null;
}

export function webhookPayload(job: JobRecord): WebhookPayload {
  return {
    request_id: job.id,
    status: job.status,
    download_url: downloadUrl(job.baseUrl, job.id),
    images_total: job.imagesTotal,
    images_processed: job.imagesProcessed,
    images_failed: job.imagesFailed,
    completed_at: job.completedAt?.toISOString() ?? null,
  };
}

/**
 * What a receiver deduplicates on: the request id for the job's first completion, and
 * `<request_id>.<round>` for the delivery after each retry-failed, which is news.
 */
export function webhookId(requestId: string, webhook: WebhookState): string {
  return webhook.round === 1 ? requestId : `${requestId}.${webhook.round}`;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/** Up to this share of each wait is taken off at random. */
const JITTER = 0.2;

/**
 * How long to wait after the `failed`-th failed attempt: `baseMs`, doubling with each
 * failure, capped at `maxMs`, then shortened by up to 20% at random so that deliveries
 * that failed together (a receiver's outage) do not come back in lockstep. Jitter only
 * ever shortens, so the cap holds.
 */
export function retryDelay(failed: number, policy: RetryPolicy, random = Math.random): number {
  const doubled = policy.baseMs * 2 ** Math.max(0, failed - 1);
  return Math.round(Math.min(policy.maxMs, doubled) * (1 - JITTER * random()));
}

/** The `X-Webhook-Signature` value: HMAC-SHA256 of `<timestamp>.<raw body>`, in hex. */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookCall {
  url: string;
  /** `X-Webhook-Id`: the same on every attempt of one delivery (see `webhookId`). */
  id: string;
  /** 1-based number of this attempt. */
  attempt: number;
  body: string;
  /** Signs the call when set. */
  secret: string | null;
}

/**
 * POSTs one attempt and reports how it went. Any 2xx answer is a delivery; anything else
 * (another status, a network error, no answer within `timeoutMs`, `cancel` aborted) is a
 * failed attempt whose reason is recorded. Never throws.
 */
export async function sendWebhook(
  call: WebhookCall,
  dispatcher: Dispatcher,
  timeoutMs: number,
  cancel: AbortSignal,
): Promise<WebhookAttempt> {
  const at = new Date();
  const started = performance.now();
  const outcome = (
    httpStatus: number | null,
    error: string | null,
    final = false,
  ): WebhookAttempt => ({
    attempt: call.attempt,
    at,
    httpStatus,
    error,
    durationMs: Math.round(performance.now() - started),
    ...(final ? { final } : {}),
  });
  // Fresh for every attempt, so a receiver can reject anything older than its tolerance.
  const timestamp = Math.floor(at.getTime() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'image-batch-service',
    'x-webhook-id': call.id,
    'x-webhook-attempt': String(call.attempt),
    'x-webhook-timestamp': String(timestamp),
  };
  if (call.secret !== null) {
    headers['x-webhook-signature'] = webhookSignature(call.secret, timestamp, call.body);
  }
  try {
    const statusCode = await withDeadline('webhook', timeoutMs, cancel, async (signal) => {
      const response = await request(call.url, {
        method: 'POST',
        dispatcher,
        signal,
        headers,
        body: call.body,
      });
      // Only the status matters; a bounded read of the body frees the connection.
      await response.body.dump().catch(() => {});
      return response.statusCode;
    });
    const ok = statusCode >= 200 && statusCode < 300;
    return outcome(statusCode, ok ? null : `HTTP ${statusCode}`);
  } catch (err) {
    if (cancel.aborted) return outcome(null, 'interrupted by shutdown');
    const e = err as { name?: string; code?: string; message?: string };
    const reason =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.message ?? String(err));
    // A refused address stays refused: no point in retrying it.
    return outcome(null, reason, e.code === 'ERR_OUTBOUND_REFUSED');
  }
}

/**
 * The webhook's state after `attempt`: DELIVERED on success, FAILED when it was the last
 * attempt allowed, otherwise still PENDING with the next attempt scheduled. The log keeps
 * the latest `maxAttempts` attempts.
 */
export function afterAttempt(
  webhook: WebhookState,
  attempt: WebhookAttempt,
  policy: RetryPolicy,
  now: Date,
  random = Math.random,
): WebhookProgress {
  const log = [...webhook.log, attempt].slice(-policy.maxAttempts);
  const attempts = attempt.attempt;
  if (attempt.error === null) {
    return { status: 'DELIVERED', attempts, lastError: null, nextAttemptAt: null, log };
  }
  if (attempts >= policy.maxAttempts || attempt.final) {
    return { status: 'FAILED', attempts, lastError: attempt.error, nextAttemptAt: null, log };
  }
  const nextAttemptAt = new Date(now.getTime() + retryDelay(attempts, policy, random));
  return { status: 'PENDING', attempts, lastError: attempt.error, nextAttemptAt, log };
}
