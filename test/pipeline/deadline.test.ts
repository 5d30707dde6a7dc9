import { getEventListeners } from 'node:events';
import t from 'tap';
import { withDeadline } from '../../src/pipeline/deadline.js';

/** A task that ends only when its signal aborts, with the signal's reason. */
const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

t.test('the deadline aborts the task with a TimeoutError naming it', async (t) => {
  const cancel = new AbortController();
  const err = await withDeadline('download', 20, cancel.signal, untilAborted).catch((e) => e);
  t.equal((err as DOMException).name, 'TimeoutError');
  t.equal((err as DOMException).message, 'download timed out');
  t.equal(getEventListeners(cancel.signal, 'abort').length, 0, 'nothing left on the cancel');
});

t.test('a cancel aborts the task with its own reason, before the deadline', async (t) => {
  const cancel = new AbortController();
  const stopping = new Error('shutting down');
  setTimeout(() => cancel.abort(stopping), 10);
  const started = Date.now();
  const err = await withDeadline('download', 60_000, cancel.signal, untilAborted).catch((e) => e);
  t.equal(err, stopping);
  t.ok(Date.now() - started < 30_000, 'did not wait for the deadline');
});

t.test('an already aborted cancel aborts the task at once', async (t) => {
  const cancel = new AbortController();
  cancel.abort(new Error('gone'));
  let seen: AbortSignal | null = null;
  await withDeadline('webhook', 60_000, cancel.signal, async (signal) => {
    seen = signal;
  });
  t.equal((seen as AbortSignal | null)?.aborted, true);
});

t.test('a settled task leaves no listener behind on a long-lived cancel', async (t) => {
  const cancel = new AbortController();
  for (let i = 0; i < 100; i++) {
    t.equal(await withDeadline('download', 60_000, cancel.signal, async () => i), i);
  }
  await withDeadline('download', 60_000, cancel.signal, async () => {
    throw new Error('failed');
  }).catch(() => {});
  t.equal(getEventListeners(cancel.signal, 'abort').length, 0);
});

t.test('without a cancel only the deadline applies', async (t) => {
  const err = await withDeadline('webhook', 20, undefined, untilAborted).catch((e) => e);
  t.equal((err as DOMException).name, 'TimeoutError');
});
