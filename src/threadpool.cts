/**
 * libuv sizes its threadpool once, on first use, and loading an ES module entry already
 * uses it; so the size has to be settled by a CommonJS entry (main.cts, bin.cts) before
 * any ES module is read.
 *
 * Every image being re-encoded holds a threadpool thread for the whole libvips call, and
 * libuv's default of 4 threads would cap the pool's CONCURRENCY at 4 and queue file writes
 * and DNS lookups behind the codec. CONCURRENCY + 4 leaves room for both. An explicit
 * UV_THREADPOOL_SIZE always wins; a malformed CONCURRENCY is reported by the config loader.
 * (Under tsx, as in `npm run dev`, the loader has already started the pool: no effect there.)
 */
const RESERVED_THREADS = 4;

/** @param defaultConcurrency CONCURRENCY's default (cores.cts), for when it is not set. */
export function sizeThreadpool(env: NodeJS.ProcessEnv, defaultConcurrency: number): void {
  if (env.UV_THREADPOOL_SIZE) return;
  const concurrency = Number.parseInt(env.CONCURRENCY ?? '', 10);
  const base = Number.isInteger(concurrency) && concurrency > 0 ? concurrency : defaultConcurrency;
  env.UV_THREADPOOL_SIZE = String(Math.min(base + RESERVED_THREADS, 1024));
}
