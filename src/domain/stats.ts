import type { ImageOutcome, ImageTotals, JobStore, VisibleJobStatus } from '../store/job-store.js';

const noImages = (): ImageTotals => ({
  processed: 0,
  failed: 0,
  processingMs: 0,
  bytesIn: 0,
  bytesOut: 0,
});

/**
 * The outcomes this process has recorded since it started, counted the way the store
 * counts its all-time totals, so that the two can be compared.
 */
export class ImageTally {
  private readonly totals = noImages();

  record(outcome: ImageOutcome): void {
    const processed = outcome.status === 'PROCESSED';
    this.totals.processed += processed ? 1 : 0;
    this.totals.failed += processed ? 0 : 1;
    this.totals.processingMs += outcome.processingMs;
    if (processed) {
      this.totals.bytesIn += outcome.bytesIn ?? 0;
      this.totals.bytesOut += outcome.bytesOut ?? 0;
    }
  }

  get snapshot(): ImageTotals {
    return { ...this.totals };
  }
}

export interface Stats {
  startedAt: Date;
  sinceStart: ImageTotals;
  allTime: ImageTotals;
  /** Jobs in each status right now. */
  jobs: Record<VisibleJobStatus, number>;
  /** How many of those jobs are direct image uploads (the rest are CSV jobs). */
  imageUploads: number;
}

/** Processing statistics: this process's since it started, and the store's of all time. */
export class StatsService {
  readonly startedAt = new Date();

  constructor(
    private readonly store: JobStore,
    readonly tally: ImageTally,
  ) {}

  async read(): Promise<Stats> {
    const [allTime, jobs, uploads] = await Promise.all([
      this.store.getImageTotals(),
      this.store.countJobs(),
      // A page of one: only its total is wanted.
      this.store.listJobs({ kind: 'image' }, 0, 1),
    ]);
    return {
      startedAt: this.startedAt,
      sinceStart: this.tally.snapshot,
      allTime,
      jobs,
      imageUploads: uploads.total,
    };
  }
}
