import { setTimeout as sleep } from 'node:timers/promises';
import { ImageError } from './image-error.js';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with full jitter (so a burst of failures against one host does not
 * come back in lockstep), or the server's own Retry-After; never more than `maxMs`.
 */
export function backoffMs(
  attempt: number,
  retryAfterMs: number | null,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, policy.maxMs);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; null when absent or invalid. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now = Date.now(),
): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return null;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * Runs `attempt` until it succeeds, fails for good, or runs out of retries. Only an
 * ImageError marked retryable is tried again; the final error says how many attempts it
 * took, so "HTTP 503 (after 3 attempts)" is distinguishable from a first-try failure.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  cancel?: AbortSignal,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const retry = err instanceof ImageError && err.retryable && n <= policy.retries;
      if (!retry || cancel?.aborted) {
        if (err instanceof ImageError && n > 1) {
          throw new ImageError(err.kind, `${err.reason} (after ${n} attempts)`, false);
        }
        throw err;
      }
      await sleep(backoffMs(n, err.retryAfterMs, policy), undefined, { signal: cancel });
    }
  }
}
