import type { Logger } from 'pino';
import {
  type JobRecord,
  type JobStatus,
  type JobStore,
  VISIBLE_JOB_STATUSES,
  type VisibleJobStatus,
} from '../store/job-store.js';
import type { ImageWorker } from './image-worker.js';
import { type OutputDirs, removeJobFiles } from './job-files.js';
import { jobLog } from './job-log.js';

/** The job is in a status the operation does not apply to (HTTP 409). */
export class JobConflict extends Error {
  constructor(
    readonly status: VisibleJobStatus,
    message: string,
  ) {
    super(message);
    this.name = 'JobConflict';
  }
}

const FINISHED: readonly JobStatus[] = ['COMPLETED', 'FAILED'];
/** Expired jobs listed at a time by a sweep. */
const SWEEP_BATCH = 100;

/**
 * What happens to a job after it was uploaded: a client deletes it (with its files),
 * cancelling it first if it is still running, or retries its failed images; the retention
 * sweep deletes it once it is old.
 */
export class JobManager {
  constructor(
    private readonly store: JobStore,
    private readonly worker: Pick<ImageWorker, 'cancelJob' | 'wake'>,
    private readonly dirs: OutputDirs,
    private readonly log: Logger,
  ) {}

  /**
   * Deletes a job's records and files. A PENDING or PROCESSING job is only deleted with
   * `force`, and is cancelled first. False when there is no such job.
   *
   * The job becomes DELETING before anything is removed: from then on no worker claims its
   * images, it cannot complete, and its webhook is never sent. The images this process has
   * in flight for it are abandoned and waited for, so that no file of it is written after
   * its files are removed (a worker elsewhere removes what it writes for a DELETING or
   * vanished job itself). The records go last, so a deletion cut short is still found, and
   * finished, at the next start.
   */
  async delete(id: string, force: boolean): Promise<boolean> {
    const from = force ? VISIBLE_JOB_STATUSES : FINISHED;
    for (;;) {
      const job = await this.store.getJob(id);
      if (job === null || job.status === 'RECEIVING') return false;
      // Already being deleted: finishing that deletion is what was asked.
      if (job.status === 'DELETING') break;
      if (!from.includes(job.status)) {
        throw new JobConflict(
          job.status,
          `The job is ${job.status}: delete it once it has finished, or with ?force=true to cancel it`,
        );
      }
      if (await this.store.markJobDeleting(id, from, new Date())) {
        if (!FINISHED.includes(job.status)) {
          jobLog(this.log, id).info({ status: job.status }, 'cancelling job');
        }
        break;
      }
      // Not moved: the job changed status since it was read, so it is read again.
    }
    await this.remove(id);
    jobLog(this.log, id).info('job deleted');
    return true;
  }

  /**
   * Queues a COMPLETED job's failed images again. The job is PROCESSING until they are
   * done, then completes the usual way (results CSV rewritten, a new webhook delivery).
   * Null when there is no such job.
   */
  async retryFailed(id: string): Promise<JobRecord | null> {
    const job = await this.store.getJob(id);
    if (job === null || job.status === 'RECEIVING' || job.status === 'DELETING') return null;
    if (job.status !== 'COMPLETED') {
      throw new JobConflict(
        job.status,
        `The job is ${job.status}: only a COMPLETED job's failed images can be retried`,
      );
    }
    if (job.imagesFailed === 0) {
      throw new JobConflict(job.status, 'The job has no failed images to retry');
    }
    const reopened = await this.store.retryFailedImages(id, new Date());
    if (reopened === null) {
      // Another retry or a delete took it between the read and the update.
      const now = await this.store.getJob(id);
      if (now === null || now.status === 'RECEIVING' || now.status === 'DELETING') return null;
      throw new JobConflict(now.status, `The job is ${now.status}: it changed meanwhile`);
    }
    jobLog(this.log, id).info({ images: job.imagesFailed }, 'retrying failed images');
    this.worker.wake();
    return reopened;
  }

  /**
   * Deletes the finished jobs that completed before `before`, through the same path as a
   * client's delete, until there are none left or `stop` is aborted. Returns how many.
   */
  async sweepExpired(before: Date, stop?: AbortSignal): Promise<number> {
    let deleted = 0;
    for (;;) {
      const ids = await this.store.listExpiredJobs(before, SWEEP_BATCH);
      for (const id of ids) {
        if (stop?.aborted) return deleted;
        try {
          if (await this.delete(id, false)) deleted++;
        } catch (err) {
          // Re-opened by a retry since it was listed: it is no longer finished, so it stays.
          if (!(err instanceof JobConflict)) throw err;
        }
      }
      if (ids.length < SWEEP_BATCH) return deleted;
    }
  }

  /** Finishes the deletions a stop cut short; run at start, before the worker. */
  async resume(): Promise<void> {
    for (const id of await this.store.listDeletingJobs()) {
      await this.remove(id);
      jobLog(this.log, id).info('finished deleting job');
    }
  }

  private async remove(id: string): Promise<void> {
    await this.worker.cancelJob(id);
    await removeJobFiles(this.dirs, id);
    await this.store.deleteJob(id);
  }
}
