import t from 'tap';
import { afterAttempt, retryDelay, webhookSignature } from '../../src/domain/webhook.js';
import type { WebhookAttempt, WebhookState } from '../../src/store/job-store.js';

const policy = { maxAttempts: 6, baseMs: 1000, maxMs: 300_000 };
const NOW = new Date('2024-03-01T10:00:00.000Z');

t.test('retryDelay doubles from the base, caps, and jitters only downwards', async (t) => {
  const none = () => 0;
  t.strictSame(
    [1, 2, 3, 4, 5].map((failed) => retryDelay(failed, policy, none)),
    [1000, 2000, 4000, 8000, 16_000],
    'without jitter: base, then doubling',
  );
  t.equal(retryDelay(10, policy, none), 300_000, 'capped at maxMs');
  t.equal(retryDelay(99, policy, none), 300_000, 'however many failures');
  const most = () => 0.999_999;
  t.equal(retryDelay(1, policy, most), 800, 'jitter takes off at most 20%');
  t.equal(retryDelay(12, policy, most), 240_000, 'below the cap too');
  for (let failed = 1; failed <= 12; failed++) {
    const delay = retryDelay(failed, policy);
    const full = Math.min(300_000, 1000 * 2 ** (failed - 1));
    t.ok(delay <= full && delay >= full * 0.8, `after ${failed} failures: ${delay} ms`);
  }
});

t.test('webhookSignature is v1= and the hex HMAC of "<timestamp>.<body>"', async (t) => {
  // Reference value from `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`.
  t.equal(
    webhookSignature('secret', 1_700_000_000, '{"a":1}'),
    'v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686',
  );
});

const attempt = (n: number, httpStatus: number | null, error: string | null): WebhookAttempt => ({
  attempt: n,
  at: new Date(NOW.getTime() - 100),
  httpStatus,
  error,
  durationMs: 100,
});

function state(attempts: number): WebhookState {
  return {
    url: 'https://hooks.test/done',
    status: 'PENDING',
    attempts,
    lastError: attempts === 0 ? null : 'HTTP 500',
    nextAttemptAt: NOW,
    log: Array.from({ length: attempts }, (_, i) => attempt(i + 1, 500, 'HTTP 500')),
    owner: 'd1',
    leaseUntil: new Date(NOW.getTime() + 40_000),
    round: 1,
  };
}

t.test('afterAttempt', async (t) => {
  t.test('a failure before the last attempt schedules a retry', async (t) => {
    const failed = attempt(2, 503, 'HTTP 503');
    const next = afterAttempt(state(1), failed, policy, NOW, () => 0);
    t.strictSame(next, {
      status: 'PENDING',
      attempts: 2,
      lastError: 'HTTP 503',
      nextAttemptAt: new Date(NOW.getTime() + 2000),
      log: [...state(1).log, failed],
    });
  });

  t.test('a success is DELIVERED and schedules nothing', async (t) => {
    const ok = attempt(3, 204, null);
    const next = afterAttempt(state(2), ok, policy, NOW);
    t.strictSame(next, {
      status: 'DELIVERED',
      attempts: 3,
      lastError: null,
      nextAttemptAt: null,
      log: [...state(2).log, ok],
    });
  });

  t.test('the last attempt failing is FAILED', async (t) => {
    const last = attempt(6, null, 'connect ECONNREFUSED 127.0.0.1:9');
    const next = afterAttempt(state(5), last, policy, NOW);
    t.match(next, {
      status: 'FAILED',
      attempts: 6,
      lastError: /ECONNREFUSED/,
      nextAttemptAt: null,
    });
    t.equal(next.log.length, 6);
  });

  t.test('the log keeps the latest maxAttempts attempts', async (t) => {
    const small = { ...policy, maxAttempts: 3 };
    // A state left with a longer log by a deployment that allowed more attempts.
    const next = afterAttempt(state(5), attempt(6, 500, 'HTTP 500'), small, NOW);
    t.strictSame(
      next.log.map((a) => a.attempt),
      [4, 5, 6],
    );
    t.equal(next.status, 'FAILED');
  });
});
