import { ApiError, getStatus, type JobStatus, openEvents } from './api.js';
import { EventStreamParser } from './sse.js';

export type Transport = 'connecting' | 'stream' | 'polling';

export interface FeedHandlers {
  status(status: JobStatus): void;
  transport(transport: Transport): void;
  /** A problem polling cannot get past (401, 404, …): the feed has stopped. */
  fatal(error: ApiError): void;
  /** A passing problem (the service unreachable, a 5xx): the feed keeps trying. */
  transient(error: ApiError | null): void;
}

const POLL_INTERVAL_MS = 1000;
const POLL_RETRY_MAX_MS = 10_000;

const finished = (status: JobStatus): boolean =>
  status.status === 'COMPLETED' || status.status === 'FAILED';

/**
 * Follows a job until it is COMPLETED or FAILED: through its event stream
 * (GET /status/:id/events, read with fetch() so the bearer token can be sent, which
 * EventSource cannot), and by polling GET /status/:id once the stream fails or ends early.
 * Returns a function that stops it.
 */
export function followJob(id: string, handlers: FeedHandlers): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  // An answer that was already on its way when the feed was stopped is not reported.
  const on: FeedHandlers = {
    status: (status) => signal.aborted || handlers.status(status),
    transport: (transport) => signal.aborted || handlers.transport(transport),
    fatal: (error) => signal.aborted || handlers.fatal(error),
    transient: (error) => signal.aborted || handlers.transient(error),
  };

  void (async () => {
    on.transport('connecting');
    try {
      if (await stream(id, signal, on)) return;
    } catch {
      // Whatever broke the stream (no such endpoint, a proxy, a dropped connection),
      // polling reports the job's real state, including a 404 or a 401, on its own.
    }
    if (signal.aborted) return;
    on.transport('polling');
    await poll(id, signal, on);
  })();

  return () => controller.abort();
}

/** Reads the event stream; true once the job's `done` event has arrived. */
async function stream(id: string, signal: AbortSignal, on: FeedHandlers): Promise<boolean> {
  const res = await openEvents(id, signal);
  if (res.body === null) return false;
  on.transport('stream');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventStreamParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      for (const event of parser.push(value)) {
        if (event.event !== 'progress' && event.event !== 'done') continue;
        on.status(JSON.parse(event.data) as JobStatus);
        if (event.event === 'done') return true;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function poll(id: string, signal: AbortSignal, on: FeedHandlers): Promise<void> {
  let delay = POLL_INTERVAL_MS;
  while (!signal.aborted) {
    try {
      const status = await getStatus(id, signal);
      on.transient(null);
      on.status(status);
      if (finished(status)) return;
      delay = POLL_INTERVAL_MS;
    } catch (err) {
      if (signal.aborted) return;
      if (!(err instanceof ApiError)) throw err;
      if (err.status !== 0 && err.status < 500) {
        on.fatal(err);
        return;
      }
      on.transient(err);
      delay = Math.min(delay * 2, POLL_RETRY_MAX_MS);
    }
    await sleep(delay, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    signal.addEventListener('abort', wake);
  });
}
