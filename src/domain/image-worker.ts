import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { EncodeSlot, ImagePipeline } from '../pipeline/image-pipeline.js';
import { isUploadUrl } from '../pipeline/upload-source.js';
import type { ImageRecord, JobRecord, JobStore, TransformOptions } from '../store/job-store.js';
import { Alarm } from './alarm.js';
import { ImageSlots } from './image-slots.js';
import { removeOutputImage } from './job-files.js';
import { jobLog } from './job-log.js';
import type { ImageTally } from './stats.js';

export interface WorkerSettings {
  /** Where the pipeline writes output images, so an image of a deleted job can be removed. */
  imagesDir: string;
  /** Images encoded at once. */
  concurrency: number;
  /** Images downloaded, or downloaded and waiting for an encode, at once. */
  downloadConcurrency: number;
  /** Images downloaded from one host at once; its other images wait without a slot. */
  perHostConcurrency: number;
  leaseMs: number;
  /** How often to look for work nobody told us about (expired leases, other processes). */
  idlePollMs: number;
}

/** A job's images dispatched to the pool and not yet settled, and the switch that abandons them. */
interface JobRuns {
  cancel: AbortController;
  runs: Set<Promise<void>>;
}

/**
 * The one image pool of the process. It claims images from the store (so a crashed or
 * parallel worker's leftovers are picked up the same way as new work), runs each through
 * the pipeline in the process's download and encode slots, records the outcome once its
 * encode slot is free again (a store round trip need not keep an encoder waiting), and
 * hands a job on to `onJobDone` when its last image is recorded.
 */
export class ImageWorker {
  readonly owner = randomUUID();
  private readonly slots: ImageSlots;
  private readonly options = new Map<string, TransformOptions>();
  private readonly started = new Set<string>();
  private readonly jobRuns = new Map<string, JobRuns>();
  private inFlight = 0;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly alarm = new Alarm();
  private leaseTimer: NodeJS.Timeout | null = null;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle: (() => void) | null = null;

  constructor(
    private readonly store: JobStore,
    private readonly pipeline: ImagePipeline,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
    private readonly onJobDone: (job: JobRecord) => Promise<void>,
    /** Counts the outcomes this worker records, for the since-start statistics. */
    private readonly tally: ImageTally,
  ) {
    this.slots = new ImageSlots({
      downloads: settings.downloadConcurrency,
      encodes: settings.concurrency,
      perHost: settings.perHostConcurrency,
    });
  }

  get activeCount(): number {
    return this.inFlight;
  }

  /** Images in the pool's slots: being downloaded (or waiting for an encode) or encoded now. */
  get runningCount(): number {
    return this.slots.occupied;
  }

  /** Images claimed and waiting for a slot or their host's turn, or being recorded. */
  get queuedCount(): number {
    return this.inFlight - this.slots.occupied;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.leaseTimer = setInterval(() => {
      this.store
        .renewLeases(this.owner, new Date(Date.now() + this.settings.leaseMs))
        .catch((err: unknown) => this.log.error({ err }, 'could not renew image leases'));
    }, this.settings.leaseMs / 3);
    this.loopDone = this.loop();
  }

  /** New work may be waiting: look now rather than at the next poll. */
  wake(): void {
    this.alarm.wake();
  }

  /**
   * Abandons a job's images in this process (the job is being deleted): those waiting for a
   * slot are skipped, downloads in flight are aborted, and no outcome of the job is recorded
   * from here on. Other jobs' images go on as before. Resolves once none of the job's images
   * is running here any more, so no file of it is written after that.
   */
  async cancelJob(id: string): Promise<void> {
    this.options.delete(id);
    this.started.delete(id);
    const job = this.jobRuns.get(id);
    if (!job) return;
    job.cancel.abort();
    await Promise.allSettled([...job.runs]);
  }

  /**
   * Stops claiming and waits for the images in flight, up to `deadlineMs`. Images still
   * running then are cut off, their outcomes dropped, and handed back as PENDING so the
   * next start (or another worker) takes them at once. True when everything finished.
   */
  async stop(deadlineMs: number): Promise<boolean> {
    this.running = false;
    this.wake();
    await this.loopDone;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    const drained = await this.settled(deadlineMs);
    if (!drained) {
      // Out of time: every job's switch is thrown, as if it were being deleted, so that
      // downloads in flight end and no outcome is recorded. (One switch per job rather than
      // a shutdown signal combined into every image's: see pipeline/deadline.ts.)
      for (const job of this.jobRuns.values()) job.cancel.abort();
      // A download ends as soon as it is aborted; an encode already under way cannot be
      // interrupted, but is short.
      await this.settled(5000);
    }
    try {
      await this.store.releaseImages(this.owner);
    } catch (err) {
      // The leases still expire, so the images are taken over a little later instead.
      this.log.error({ err }, 'could not hand unfinished images back');
    }
    return drained;
  }

  private settled(ms: number): Promise<boolean> {
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), ms).unref());
    return Promise.race([this.idle.then(() => true as const), timeout]);
  }

  private async loop(): Promise<void> {
    // A small queue ahead of the pool keeps it busy between claims without taking so much
    // that a newly arrived job has to wait behind this process's backlog. Images waiting
    // on a busy host do not count against it (other hosts' images should fill the pool),
    // but the whole backlog stays bounded.
    // Claims are taken CONCURRENCY at a time: each one is a write to the store (about 0.3 ms
    // of the event loop on the embedded store, four operations on MongoDB), and while room
    // is short of that the queue still holds at least `slots` images, so no slot goes idle.
    const { concurrency, downloadConcurrency } = this.settings;
    const slots = concurrency + downloadConcurrency;
    const target = slots + concurrency;
    const backlog = slots * 4;
    const claimAtLeast = concurrency;
    while (this.running) {
      const room = Math.min(
        target - (this.inFlight - this.slots.waitingForHost),
        backlog - this.inFlight,
      );
      let claimed: ImageRecord[] = [];
      if (room >= claimAtLeast) {
        try {
          const now = Date.now();
          claimed = await this.store.claimImages(
            this.owner,
            new Date(now),
            new Date(now + this.settings.leaseMs),
            room,
          );
        } catch (err) {
          this.log.error({ err }, 'could not claim images');
        }
      }
      for (const image of claimed) this.dispatch(image);
      // A full claim means more may be waiting; otherwise wait for an image to finish, a
      // job to arrive, or the poll interval.
      if (room < claimAtLeast || claimed.length < room) {
        await this.alarm.sleep(this.settings.idlePollMs);
      }
    }
  }

  private dispatch(image: ImageRecord): void {
    if (this.inFlight === 0) {
      this.idle = new Promise((resolve) => {
        this.settleIdle = resolve;
      });
    }
    this.inFlight++;
    const job = this.runsOf(image.requestId);
    // A direct upload is read from disk: no origin to spare, so no host limit to wait on.
    const host = isUploadUrl(image.url) ? null : new URL(image.url).host;
    const run: Promise<void> = this.slots
      .run(host, (encodeSlot) => this.run(image, job.cancel.signal, encodeSlot))
      .catch((err: unknown) =>
        jobLog(this.log, image.requestId).error({ err, seq: image.seq }, 'image run failed'),
      )
      .finally(() => {
        job.runs.delete(run);
        if (job.runs.size === 0 && this.jobRuns.get(image.requestId) === job) {
          this.jobRuns.delete(image.requestId);
        }
        this.inFlight--;
        if (this.inFlight === 0) this.settleIdle?.();
        this.wake();
      });
    job.runs.add(run);
  }

  private runsOf(requestId: string): JobRuns {
    let job = this.jobRuns.get(requestId);
    if (!job) {
      job = { cancel: new AbortController(), runs: new Set() };
      // Each of the job's images listens while it downloads or waits to retry: up to one
      // per download slot, more than Node's leak warning expects (10) by design.
      const { downloadConcurrency, concurrency } = this.settings;
      setMaxListeners(downloadConcurrency + concurrency, job.cancel.signal);
      this.jobRuns.set(requestId, job);
    }
    return job;
  }

  private async run(
    image: ImageRecord,
    cancelled: AbortSignal,
    encodeSlot: EncodeSlot,
  ): Promise<void> {
    // Claimed but not started when a stop began: left for releaseImages to hand back.
    if (!this.running || cancelled.aborted) return;
    const options = await this.jobOptions(image.requestId, cancelled);
    if (options === null) return;
    const started = performance.now();
    const result = await this.pipeline.process(image, options, cancelled, encodeSlot);
    if (cancelled.aborted) return;
    const outcome = { ...result, processingMs: Math.round(performance.now() - started) };
    const job = await this.store.finishImage(
      image.requestId,
      image.seq,
      this.owner,
      outcome,
      new Date(),
    );
    jobLog(this.log, image.requestId).debug(
      { seq: image.seq, status: outcome.status, error: outcome.error },
      'image finished',
    );
    if (job) this.tally.record(outcome);
    if (job === null || job.status === 'DELETING') {
      const files = [outcome.outputFile, ...Object.values(outcome.thumbnails)];
      await this.discardIfDeleted(
        image,
        files.filter((file) => file !== null),
        job,
      );
      return;
    }
    if (job.imagesProcessed + job.imagesFailed >= job.imagesTotal) {
      this.options.delete(job.id);
      this.started.delete(job.id);
      await this.onJobDone(job);
    }
  }

  /**
   * The image (and its thumbnails) was written but its job was deleted meanwhile, perhaps
   * from another process after it removed the job's files, so the files go too. A null
   * answer from the store can also mean another worker took the image over; its job is then
   * still there, and so are the files, which that worker writes under the same names.
   */
  private async discardIfDeleted(
    image: ImageRecord,
    files: string[],
    finished: JobRecord | null,
  ): Promise<void> {
    if (files.length === 0) return;
    const job = finished ?? (await this.store.getJob(image.requestId));
    if (job !== null && job.status !== 'DELETING') return;
    for (const file of files) await removeOutputImage(this.settings.imagesDir, file);
    jobLog(this.log, image.requestId).info({ seq: image.seq }, 'image of a deleted job dropped');
  }

  private async jobOptions(
    requestId: string,
    cancelled: AbortSignal,
  ): Promise<TransformOptions | null> {
    if (!this.started.has(requestId)) {
      this.started.add(requestId);
      await this.store.markJobProcessing(requestId, new Date());
    }
    const cached = this.options.get(requestId);
    if (cached) return cached;
    const job = await this.store.getJob(requestId);
    if (!job || job.status === 'DELETING') {
      jobLog(this.log, requestId).warn('image claimed for a job that no longer exists');
      return null;
    }
    // Cancelled while the job was read: caching its options now would outlive the job.
    if (cancelled.aborted) return null;
    this.options.set(requestId, job.options);
    return job.options;
  }
}
