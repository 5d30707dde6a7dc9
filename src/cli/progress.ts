import type { JobStatus } from './api.js';

/** What one progress report shows: a job's counts, and the pace the client has seen. */
export interface ProgressSnapshot {
  status: JobStatus['status'];
  /** Images finished either way (processed + failed). */
  done: number;
  total: number;
  failed: number;
  /** As the service computes it (GET /status progress.percent). */
  percent: number;
  /** Images finished per second lately; null until there is a pace to show. */
  rate: number | null;
  /** Seconds left at `rate`; null when unknown. */
  etaSeconds: number | null;
}

const TERMINAL: ReadonlySet<JobStatus['status']> = new Set(['COMPLETED', 'FAILED']);

/**
 * Images finished per second over a sliding window of (time, done) samples. Clock-free: the
 * caller passes the time of each sample, so the arithmetic can be checked with made-up times.
 */
export class RateMeter {
  private readonly samples: Array<{ at: number; done: number }> = [];

  constructor(private readonly windowMs = 10_000) {}

  add(at: number, done: number): void {
    this.samples.push({ at, done });
    // Keep one sample at least `windowMs` old, so the window always spans the whole period.
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= this.windowMs) {
      this.samples.shift();
    }
  }

  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first === undefined || last === undefined || last.at <= first.at) return null;
    return Math.max(0, last.done - first.done) / ((last.at - first.at) / 1000);
  }
}

export function snapshot(status: JobStatus, rate: number | null): ProgressSnapshot {
  const p = status.progress;
  const done = p.images_processed + p.images_failed;
  const remaining = Math.max(0, p.images_total - done);
  let etaSeconds: number | null = null;
  if (remaining === 0) etaSeconds = 0;
  else if (rate !== null && rate > 0) etaSeconds = remaining / rate;
  return {
    status: status.status,
    done,
    total: p.images_total,
    failed: p.images_failed,
    percent: p.percent,
    rate,
    etaSeconds,
  };
}

/** `42s`, `3m 05s`, `2h 07m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatRate(rate: number): string {
  return `${rate < 100 ? rate.toFixed(1) : Math.round(rate)} img/s`;
}

/** The parts after the bar: counts, then failures, pace and time left when they mean something. */
function details(s: ProgressSnapshot): string[] {
  const parts = [`${s.done}/${s.total} images`];
  if (s.failed > 0) parts.push(`${s.failed} failed`);
  if (s.rate !== null && !TERMINAL.has(s.status)) parts.push(formatRate(s.rate));
  if (s.etaSeconds !== null && !TERMINAL.has(s.status) && s.done < s.total) {
    parts.push(`ETA ${formatDuration(s.etaSeconds)}`);
  }
  return parts;
}

const BAR_MIN = 10;
const BAR_MAX = 40;
const FILLED = '█';
const EMPTY = '░';

/** Room kept for a pace and a time left of ordinary width: `  12.5 img/s  ETA 1m 05s`. */
const PACE_ROOM = '  99.9 img/s  ETA 9m 59s'.length;

/**
 * One terminal line, redrawn in place: status, bar, percent, counts, failures, pace, time
 * left. The bar's width depends only on the terminal and the job's size, so it stays put
 * while the numbers change. Never wider than `columns - 1`, since a line that wraps cannot
 * be redrawn with a carriage return: details go from the end when they do not fit, and the
 * bar goes when fewer than 10 cells are left for it.
 */
export function renderBar(s: ProgressSnapshot, columns: number): string {
  const width = columns - 1;
  const status = s.status.padEnd(10);
  const percent = `${s.percent.toFixed(1)}%`;
  const parts = details(s);
  const widestCounts = `${s.total}/${s.total} images`.length;
  const barWidth = Math.min(
    BAR_MAX,
    width - status.length - 2 - percent.padStart(6).length - 2 - widestCounts - PACE_ROOM,
  );
  if (barWidth >= BAR_MIN) {
    const filled = Math.min(barWidth, Math.floor((s.percent / 100) * barWidth));
    const bar = FILLED.repeat(filled) + EMPTY.repeat(barWidth - filled);
    for (let keep = parts.length; keep >= 1; keep--) {
      const line = `${status} ${bar} ${[percent.padStart(6), ...parts.slice(0, keep)].join('  ')}`;
      if (line.length <= width) return line;
    }
  }
  for (let keep = parts.length; keep >= 1; keep--) {
    const line = `${s.status} ${[percent, ...parts.slice(0, keep)].join('  ')}`;
    if (line.length <= width || keep === 1) return line.slice(0, Math.max(0, width));
  }
  return '';
}

/** One log line, for output that is not a terminal (CI logs, files, pipes). */
export function renderLine(s: ProgressSnapshot): string {
  const [counts, ...more] = details(s);
  return [`${s.status} ${counts} (${s.percent.toFixed(1)}%)`, ...more].join(', ');
}

/**
 * Whether `next` deserves a new log line after `previous` (printed at `previous.at`): only
 * when the status or the counts moved, at most once per `intervalMs`, except that the final
 * state is always shown.
 */
export function lineDue(
  previous: { snapshot: ProgressSnapshot; at: number } | null,
  next: ProgressSnapshot,
  now: number,
  intervalMs: number,
): boolean {
  if (previous === null) return true;
  const p = previous.snapshot;
  if (p.status === next.status && p.done === next.done && p.failed === next.failed) return false;
  return TERMINAL.has(next.status) || now - previous.at >= intervalMs;
}
