import type { JobStatus } from './api.js';
import {
  lineDue,
  type ProgressSnapshot,
  RateMeter,
  renderBar,
  renderLine,
  snapshot,
} from './progress.js';

/** Log lines (not a terminal) come at most this often, however fast the job moves. */
export const LINE_INTERVAL_MS = 2000;

/**
 * Shows a job's progress on `out`: on a terminal one bar redrawn in place on every update,
 * elsewhere a line whenever the counts move (see `lineDue`).
 */
export class ProgressReporter {
  private readonly meter = new RateMeter();
  private lastLine: { snapshot: ProgressSnapshot; at: number } | null = null;
  /** A bar is on screen and its line not yet ended. */
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(status: JobStatus): void {
    const now = Date.now();
    this.meter.add(now, status.progress.images_processed + status.progress.images_failed);
    const current = snapshot(status, this.meter.rate());
    if (this.out.isTTY) {
      // Erase to the end of the line: the new bar can be shorter than the old one.
      this.out.write(`\r${renderBar(current, this.out.columns || 80)}\x1b[K`);
      this.drawn = true;
    } else if (lineDue(this.lastLine, current, now, LINE_INTERVAL_MS)) {
      this.out.write(`${renderLine(current)}\n`);
      this.lastLine = { snapshot: current, at: now };
    }
  }

  /** Ends the bar's line, so whatever is written next starts on a line of its own. */
  end(): void {
    if (!this.drawn) return;
    this.out.write('\n');
    this.drawn = false;
  }

  /** A message between updates; the bar carries on below it. */
  note(message: string): void {
    this.end();
    this.out.write(`${message}\n`);
  }
}
