import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { detectImageType } from '../pipeline/image-type.js';
import { uploadFile, uploadUrl } from '../pipeline/upload-source.js';
import type { ImageRecord, JobRecord, JobStore, TransformOptions } from '../store/job-store.js';
import { pendingImage } from '../store/job-store.js';
import { jobLog } from './job-log.js';

/** What a direct upload may be: the formats libvips decodes here, by content. */
export const UPLOADABLE_TYPES = ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff'] as const;
export type UploadableType = (typeof UPLOADABLE_TYPES)[number];

/** Enough of the start of a file for `detectImageType` (an SVG is looked for in 512 bytes). */
const HEAD_BYTES = 512;
/** How often a waiting upload looks at the store, for a job another process finished. */
const WAIT_POLL_MS = 500;
const ORIGINAL_NAME_LENGTH = 255;

/** An upload saved to a temporary file, not yet a job. */
export interface ReceivedImage {
  id: string;
  temporary: string;
  bytes: number;
  /** What its first bytes say it is; null when nothing we know. */
  type: ReturnType<typeof detectImageType>;
}

/** A direct upload's job and its one image. */
export interface UploadedImage {
  job: JobRecord;
  image: ImageRecord;
}

export const isUploadable = (type: ReceivedImage['type']): type is UploadableType =>
  (UPLOADABLE_TYPES as readonly string[]).includes(type ?? '');

/**
 * Images uploaded directly (`POST /images`). Each is a job of one image (`kind: 'image'`)
 * in the same store and pool as CSV jobs; its bytes are saved under the uploads directory
 * and its image record points at them (see upload-source.ts), so the worker reads them
 * instead of downloading. No products, no results CSV, no webhook.
 */
export class ImageUploads {
  private readonly finished = new EventEmitter();

  constructor(
    private readonly store: JobStore,
    private readonly uploadsDir: string,
    private readonly log: Logger,
    private readonly onAccepted: () => void,
  ) {
    // One listener per waiting request; a busy service may have many at once.
    this.finished.setMaxListeners(0);
  }

  /** Streams an upload to a temporary file in the uploads directory, noting its type. */
  async receive(input: Readable): Promise<ReceivedImage> {
    const id = randomUUID();
    await fs.mkdir(this.uploadsDir, { recursive: true });
    const temporary = path.join(this.uploadsDir, `${id}.${randomUUID()}.tmp`);
    let head = Buffer.alloc(0);
    let bytes = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        if (head.length < HEAD_BYTES) head = Buffer.concat([head, chunk]).subarray(0, HEAD_BYTES);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(input, measure, createWriteStream(temporary, { flags: 'wx' }));
    } catch (err) {
      await fs.rm(temporary, { force: true });
      throw err;
    }
    return { id, temporary, bytes, type: detectImageType(head) };
  }

  /** Forgets an upload that will not become a job. */
  async discard(received: ReceivedImage): Promise<void> {
    await fs.rm(received.temporary, { force: true });
  }

  /** Makes a received upload a job of one image: saved in place, recorded, queued. */
  async accept(
    received: ReceivedImage,
    originalName: string | null,
    options: TransformOptions,
    baseUrl: string,
  ): Promise<void> {
    const { id } = received;
    const file = uploadFile(this.uploadsDir, id);
    const image = pendingImage({
      requestId: id,
      seq: 1,
      url: uploadUrl(id),
      originalName: originalName?.slice(0, ORIGINAL_NAME_LENGTH) || null,
      outputName: 'image',
      refs: [],
    });
    try {
      await fs.rename(received.temporary, file);
      const now = new Date();
      await this.store.beginJob(id, now, 'image');
      await this.store.addImages(id, [image]);
      await this.store.acceptJob(
        id,
        { options, baseUrl, columns: [], webhookUrl: null, productsTotal: 0, imagesTotal: 1 },
        now,
      );
    } catch (err) {
      await this.store.deleteJob(id).catch(() => {});
      await fs.rm(file, { force: true });
      await this.discard(received);
      throw err;
    }
    jobLog(this.log, id).info({ bytes: received.bytes, type: received.type }, 'image accepted');
    this.onAccepted();
  }

  /** A direct upload by id; null for an unknown id and for a CSV job's. */
  async get(id: string): Promise<UploadedImage | null> {
    const job = await this.store.getJob(id);
    if (job === null || job.kind !== 'image') return null;
    if (job.status === 'RECEIVING' || job.status === 'DELETING') return null;
    const [image] = await this.store.findImages(id, [1]);
    return image === undefined ? null : { job, image };
  }

  /** Direct uploads, newest first. */
  async list(offset: number, limit: number): Promise<{ total: number; items: UploadedImage[] }> {
    const { total, jobs } = await this.store.listJobs({ kind: 'image' }, offset, limit);
    const images = new Map(
      (await this.store.listImagesOfJobs(jobs.map((job) => job.id))).map((i) => [i.requestId, i]),
    );
    const items: UploadedImage[] = [];
    for (const job of jobs) {
      const image = images.get(job.id);
      if (image !== undefined) items.push({ job, image });
    }
    return { total, items };
  }

  /**
   * The upload once its image is processed or failed, or as it stands after `ms`. The
   * worker's word (`jobFinished`) ends the wait at once; the store is also looked at every
   * WAIT_POLL_MS, for an image another process sharing the database finished.
   */
  async waitUntilDone(id: string, ms: number): Promise<UploadedImage | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = await this.get(id);
      const left = deadline - Date.now();
      if (found === null || isDone(found.image) || left <= 0) return found;
      await this.nextWord(id, Math.min(left, WAIT_POLL_MS));
    }
  }

  /** Called by the worker when a job's last image is recorded. */
  jobFinished(id: string): void {
    this.finished.emit(id);
  }

  private nextWord(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.finished.off(id, done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.finished.once(id, done);
    });
  }
}

const isDone = (image: ImageRecord): boolean =>
  image.status === 'PROCESSED' || image.status === 'FAILED';
