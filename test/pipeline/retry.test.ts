import t from 'tap';
import { ImageError } from '../../src/pipeline/image-error.js';
import { backoffMs, parseRetryAfter, withRetries } from '../../src/pipeline/retry.js';

const policy = { retries: 2, baseMs: 100, maxMs: 1000 };

t.test('backoff doubles from the base, with jitter in the upper half, capped', async (t) => {
  t.equal(
    backoffMs(1, null, policy, () => 0),
    50,
  );
  t.equal(
    backoffMs(1, null, policy, () => 1),
    100,
  );
  t.equal(
    backoffMs(2, null, policy, () => 1),
    200,
  );
  t.equal(
    backoffMs(3, null, policy, () => 1),
    400,
  );
  t.equal(
    backoffMs(10, null, policy, () => 1),
    1000,
    'capped at maxMs',
  );
  t.equal(
    backoffMs(10, null, policy, () => 0),
    500,
    'jitter stays within the cap',
  );
});

t.test("the server's Retry-After wins, within the cap", async (t) => {
  t.equal(
    backoffMs(1, 300, policy, () => 0),
    300,
  );
  t.equal(
    backoffMs(1, 60_000, policy, () => 0),
    1000,
  );
});

t.test('Retry-After as seconds or an HTTP date', async (t) => {
  const now = Date.parse('2026-11-21T10:00:00Z');
  t.equal(parseRetryAfter('3', now), 3000);
  t.equal(parseRetryAfter(['0'], now), 0);
  t.equal(parseRetryAfter('Sat, 21 Nov 2026 10:00:05 GMT', now), 5000);
  t.equal(parseRetryAfter('Sat, 21 Nov 2026 09:00:00 GMT', now), 0, 'a past date means now');
  t.equal(parseRetryAfter(undefined, now), null);
  t.equal(parseRetryAfter('soon', now), null);
});

t.test('retries only what may pass, and says how many attempts it took', async (t) => {
  const quick = { retries: 2, baseMs: 1, maxMs: 2 };
  let calls = 0;
  const flaky = () => {
    calls++;
    return calls < 3
      ? Promise.reject(new ImageError('http_error', 'HTTP 503', true))
      : Promise.resolve('ok');
  };
  t.equal(await withRetries(flaky, quick), 'ok');
  t.equal(calls, 3);

  calls = 0;
  const down = () => {
    calls++;
    return Promise.reject(new ImageError('http_error', 'HTTP 503', true));
  };
  await t.rejects(withRetries(down, quick), { message: 'HTTP 503 (after 3 attempts)' });
  t.equal(calls, 3, 'one attempt and two retries');

  calls = 0;
  const gone = () => {
    calls++;
    return Promise.reject(new ImageError('http_error', 'HTTP 404'));
  };
  await t.rejects(withRetries(gone, quick), { message: 'HTTP 404' });
  t.equal(calls, 1, 'a final error is not retried');
});

t.test('a cancelled retry loop stops waiting', async (t) => {
  const cancel = new AbortController();
  let calls = 0;
  const pending = withRetries(
    () => {
      calls++;
      cancel.abort();
      return Promise.reject(new ImageError('timeout', 'timed out', true));
    },
    { retries: 5, baseMs: 60_000, maxMs: 60_000 },
    cancel.signal,
  );
  await t.rejects(pending);
  t.equal(calls, 1);
});
