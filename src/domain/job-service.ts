import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'pino';
import type {
  ImageRecord,
  ImageRefAddition,
  JobPage,
  JobRecord,
  JobStore,
  ProductRecord,
  JobFilter,
} from '../store/job-store.js';
import { pendingImage } from '../store/job-store.js';
import { jobLog } from './job-log.js';
import { type CsvLimits, CsvTooLarge, type RowError, readProductCsv } from './csv-input.js';
import { resultsFile, writeResultsCsv } from './results-csv.js';
import type { UploadOptions } from './upload-options.js';

/** The job was deleted while the request was being served. */
export class JobNotFound extends Error {
  readonly statusCode = 404;
  constructor() {
    super('Request not found');
    this.name = 'JobNotFound';
  }
}

/** A CSV that cannot become a job: nothing of it stays recorded. */
export class CsvRejected extends Error {
  constructor(
    readonly statusCode: 400 | 413,
    message: string,
    readonly details: RowError[],
  ) {
    super(message);
    this.name = 'CsvRejected';
  }
}

export interface ReceivedCsv {
  id: string;
  columns: string[];
  products: number;
  images: number;
}

export interface JobServiceSettings {
  limits: CsvLimits;
  resultsDir: string;
  /** A RECEIVING job untouched this long is an upload that died half-way. */
  abandonedAfterMs: number;
}

const BATCH = 1000;

/**
 * Jobs from upload to announcement. A CSV row becomes products and images here
 * (`receiveCsv`), and a job whose last image is recorded is finished here (`finishJob`).
 */
export class JobService {
  constructor(
    private readonly store: JobStore,
    private readonly settings: JobServiceSettings,
    private readonly log: Logger,
    private readonly onAccepted: () => void,
    /** A job completed, and its webhook (if any) is due: the webhook dispatcher takes it. */
    private readonly onCompleted: () => void,
  ) {}

  /**
   * Records a CSV's rows under a new job that stays invisible until `accept`. A URL
   * repeated anywhere in the job becomes one image, fetched once and shared by its rows.
   * Rows and their new images are written a batch at a time as the CSV streams in; only
   * each distinct URL's number is held until the end, so a large upload's memory stays
   * close to its URLs' text rather than growing with full records.
   */
  async receiveCsv(input: Readable): Promise<ReceivedCsv> {
    const id = randomUUID();
    // Not awaited before reading starts: the upload stream must be consumed (and its
    // errors listened to) from the first tick, or a body that fails meanwhile is missed.
    const begun = this.store.beginJob(id, new Date());
    begun.catch(() => {});
    const seqByUrl = new Map<string, number>();
    let columns: string[] = [];
    try {
      const result = await readProductCsv(
        input,
        this.settings.limits,
        BATCH,
        async (rows, header) => {
          await begun;
          columns = header.columns;
          const added = new Map<number, ImageRecord>();
          const earlier: ImageRefAddition[] = [];
          const products: ProductRecord[] = rows.map((row) => ({
            requestId: id,
            row: row.row,
            serial: row.serial,
            name: row.name,
            cells: row.cells,
            inputUrls: row.urls,
            imageSeqs: row.urls.map((url, index) => {
              const ref = { row: row.row, position: index + 1 };
              const seq = seqByUrl.get(url);
              if (seq === undefined) {
                const image = pendingImage({
                  requestId: id,
                  seq: seqByUrl.size + 1,
                  url,
                  originalName: null,
                  outputName: `${row.row}-${index + 1}`,
                  refs: [ref],
                });
                seqByUrl.set(url, image.seq);
                added.set(image.seq, image);
                return image.seq;
              }
              const inThisBatch = added.get(seq);
              if (inThisBatch) inThisBatch.refs.push(ref);
              else earlier.push({ seq, ref });
              return seq;
            }),
            imagesPending: row.urls.length,
          }));
          await this.store.addProducts(id, products);
          await this.store.addImages(id, [...added.values()]);
          if (earlier.length > 0) await this.store.addImageRefs(id, earlier);
          // The embedded store writes synchronously; yielding after each batch keeps a
          // 100,000-row upload from holding the event loop (and /status) for long.
          await setImmediate();
        },
      );
      await begun;
      if (result.errorCount > 0) {
        const rows = result.errorCount === 1 ? 'problem' : 'problems';
        throw new CsvRejected(
          400,
          `CSV rejected: ${result.errorCount} ${rows} found`,
          result.errors,
        );
      }
      return { id, columns, products: result.rows, images: seqByUrl.size };
    } catch (err) {
      await this.store.deleteJob(id);
      if (err instanceof CsvTooLarge) throw new CsvRejected(413, err.message, []);
      throw err;
    }
  }

  /** Makes a received CSV a job: visible, queued, and announced when done. */
  async accept(received: ReceivedCsv, options: UploadOptions, baseUrl: string): Promise<void> {
    const { webhookUrl, ...transform } = options;
    await this.store.acceptJob(
      received.id,
      {
        options: transform,
        baseUrl,
        columns: received.columns,
        webhookUrl,
        productsTotal: received.products,
        imagesTotal: received.images,
      },
      new Date(),
    );
    jobLog(this.log, received.id).info(
      { products: received.products, images: received.images },
      'job accepted',
    );
    this.onAccepted();
  }

  /** Forgets a received CSV whose upload turned out to be invalid. */
  async discard(id: string): Promise<void> {
    await this.store.deleteJob(id);
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const job = await this.store.getJob(id);
    return job === null || job.status === 'RECEIVING' || job.status === 'DELETING' ? null : job;
  }

  /** Accepted jobs, newest first, optionally only those in one status and of one kind. */
  listJobs(filter: JobFilter, offset: number, limit: number): Promise<JobPage> {
    return this.store.listJobs(filter, offset, limit);
  }

  listProducts(id: string, offset: number, limit: number): Promise<ProductRecord[]> {
    return this.store.listProducts(id, offset, limit);
  }

  findImages(id: string, seqs: number[]): Promise<ImageRecord[]> {
    return this.store.findImages(id, seqs);
  }

  /** The results CSV of a COMPLETED job, written again if it went missing from disk. */
  async resultsPath(job: JobRecord): Promise<string> {
    const file = resultsFile(this.settings.resultsDir, job.id);
    try {
      await fs.access(file);
      return file;
    } catch {
      await writeResultsCsv(this.store, job, this.settings.resultsDir);
      if (await this.removeResultsIfDeleted(job.id)) throw new JobNotFound();
      return file;
    }
  }

  /**
   * A results CSV written while its job was being deleted may have landed after the
   * deletion removed the job's files: it is removed again. True when the job is gone.
   */
  private async removeResultsIfDeleted(id: string): Promise<boolean> {
    const job = await this.store.getJob(id);
    if (job !== null && job.status !== 'DELETING') return false;
    await fs.rm(resultsFile(this.settings.resultsDir, id), { force: true });
    return true;
  }

  /**
   * Called when a job's last image is recorded: writes the results CSV (a CSV job's; a
   * direct upload has none), then marks the job COMPLETED, which makes its webhook due in
   * the same update. Only the caller that wins
   * that transition wakes the webhook dispatcher; the webhook itself is claimed from the
   * store, so it is sent once even if two workers both saw the last image land. A job
   * being deleted cannot complete, so it is never announced.
   */
  async finishJob(job: JobRecord): Promise<void> {
    if (job.kind === 'csv') await writeResultsCsv(this.store, job, this.settings.resultsDir);
    if (!(await this.store.completeJob(job.id, new Date()))) {
      await this.removeResultsIfDeleted(job.id);
      return;
    }
    jobLog(this.log, job.id).info(
      { imagesProcessed: job.imagesProcessed, imagesFailed: job.imagesFailed },
      'job completed',
    );
    this.onCompleted();
  }

  /**
   * Picks up what a previous run left: counters are recomputed from the images (a crash
   * can fall between recording an image and counting it) and jobs whose images are all
   * done are finished. Images still PENDING or under an expired lease are simply claimed
   * again by the worker, and webhooks still due by the webhook dispatcher.
   */
  async resume(): Promise<void> {
    await this.sweepAbandoned();
    for (const stale of await this.store.listUnfinishedJobs()) {
      const job = await this.store.recountJob(stale.id, new Date());
      if (job && job.imagesProcessed + job.imagesFailed >= job.imagesTotal) {
        await this.finishJob(job);
      } else if (job) {
        jobLog(this.log, job.id).info(
          { remaining: job.imagesTotal - job.imagesProcessed - job.imagesFailed },
          'resuming job',
        );
      }
    }
  }

  async sweepAbandoned(): Promise<void> {
    const before = new Date(Date.now() - this.settings.abandonedAfterMs);
    for (const id of await this.store.listAbandonedJobs(before)) {
      await this.store.deleteJob(id);
      jobLog(this.log, id).info('discarded an upload that never finished');
    }
  }
}
