/**
 * Runs `task` with a signal that aborts after `timeoutMs` (reason: a TimeoutError naming
 * `what`) or as soon as `cancel` does (its reason), whichever comes first. Both links are
 * undone when the task settles.
 *
 * Not AbortSignal.any: on Node 20 each signal it makes leaves ~170 bytes behind on a
 * long-lived source, such as a job's cancel signal, that are not reclaimed (34 MB after
 * 200,000 calls, still growing), and costs ~45 µs of CPU against ~5 µs for a listener
 * added and removed; and AbortSignal.timeout inside it can be garbage-collected before it
 * fires (nodejs/node#57736).
 */
export async function withDeadline<T>(
  what: string,
  timeoutMs: number,
  cancel: AbortSignal | undefined,
  task: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`${what} timed out`, 'TimeoutError')),
    timeoutMs,
  );
  const onCancel = () => controller.abort(cancel?.reason);
  if (cancel?.aborted) onCancel();
  else cancel?.addEventListener('abort', onCancel, { once: true });
  try {
    return await task(controller.signal);
  } finally {
    clearTimeout(timer);
    cancel?.removeEventListener('abort', onCancel);
  }
}
