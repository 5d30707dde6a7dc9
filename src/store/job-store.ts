import type { OutputFormat } from '../config.js';
import type { DecodableType } from '../pipeline/image-type.js';

/**
 * RECEIVING and DELETING are internal. RECEIVING: the CSV is still being recorded and the
 * client has no id yet; such a job is discarded if it is never accepted. DELETING: the job
 * is being removed; none of its images is claimed, it cannot complete and its webhook is
 * not sent, and a deletion cut short is finished at the next start. Either way the job is
 * invisible through the API.
 */
export type JobStatus =
  'RECEIVING' | 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'FAILED' | 'DELETING';
/** The statuses a client can see and filter on. */
export type VisibleJobStatus = Exclude<JobStatus, 'RECEIVING' | 'DELETING'>;
export const VISIBLE_JOB_STATUSES: readonly VisibleJobStatus[] = [
  'PENDING',
  'PROCESSING',
  'COMPLETED',
  'FAILED',
];
export type ImageStatus = 'PENDING' | 'PROCESSING' | 'PROCESSED' | 'FAILED';
export type WebhookStatus = 'PENDING' | 'DELIVERED' | 'FAILED';
/** `csv`: rows of image URLs uploaded as a CSV; `image`: one image uploaded directly. */
export type JobKind = 'csv' | 'image';

/** An extra, smaller output of every image of a job: fit inside `width`×`height`. */
export interface ThumbnailSpec {
  /** `small`, `medium`, or the box spelled `<width>x<height>`; unique within a job. */
  name: string;
  width: number;
  height: number;
}

export interface TransformOptions {
  quality: number;
  format: OutputFormat;
  maxWidth: number | null;
  maxHeight: number | null;
  /** Variants made beside the main output, in the order the client listed them. */
  thumbnails: ThumbnailSpec[];
}

/** One call of a job's webhook, as it went. */
export interface WebhookAttempt {
  /** 1-based number of the attempt, as sent in `X-Webhook-Attempt`. */
  attempt: number;
  at: Date;
  /** The receiver's HTTP status, or null when no answer came (network error, timeout). */
  httpStatus: number | null;
  /** Why the attempt failed, or null when it was delivered. */
  error: string | null;
  durationMs: number;
  /** Set when retrying cannot help (the outbound policy refused the address). */
  final?: boolean;
}

export interface WebhookState {
  url: string;
  /** PENDING until delivered or out of attempts; a delivery waiting for a retry is PENDING. */
  status: WebhookStatus;
  attempts: number;
  lastError: string | null;
  /**
   * When the next attempt is due: null until the job completes, and again once the
   * webhook is DELIVERED or FAILED. Kept in the store so a restart loses no delivery.
   */
  nextAttemptAt: Date | null;
  /** The most recent attempts, oldest first. */
  log: WebhookAttempt[];
  /** The dispatcher making an attempt right now, and until when that claim holds. */
  owner: string | null;
  leaseUntil: Date | null;
  /**
   * Which completion of the job this delivery announces: 1 for the first, one more each time
   * retry-failed re-opens the job, which starts a new delivery with fresh attempts.
   */
  round: number;
}

/**
 * The webhook of a job just accepted: nothing attempted, nothing due until it completes.
 * Typed with its empty parts as such, so each store can keep it in its own date encoding.
 */
export function newWebhook(url: string): Omit<
  WebhookState,
  'nextAttemptAt' | 'leaseUntil' | 'log'
> & {
  nextAttemptAt: null;
  leaseUntil: null;
  log: [];
} {
  return {
    url,
    status: 'PENDING',
    attempts: 0,
    lastError: null,
    nextAttemptAt: null,
    log: [],
    owner: null,
    leaseUntil: null,
    round: 1,
  };
}

/** What an attempt changes in a webhook's state; the claim itself is always released. */
export type WebhookProgress = Pick<
  WebhookState,
  'status' | 'attempts' | 'lastError' | 'nextAttemptAt' | 'log'
>;

export interface JobRecord {
  id: string;
  kind: JobKind;
  status: JobStatus;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  /** Origin that output URLs are built on, fixed at upload time. */
  baseUrl: string;
  options: TransformOptions;
  /** The input CSV's header, in its order, so the results CSV can repeat it. */
  columns: string[];
  webhook: WebhookState | null;
  productsTotal: number;
  productsDone: number;
  imagesTotal: number;
  imagesProcessed: number;
  imagesFailed: number;
  error: string | null;
}

export interface ProductRecord {
  requestId: string;
  /** 1-based index of the data row in the input CSV (the header is not counted). */
  row: number;
  serial: string;
  name: string;
  /** Every cell of the input row, in column order. */
  cells: string[];
  inputUrls: string[];
  /** Image `seq` for each input URL, position for position. */
  imageSeqs: number[];
  imagesPending: number;
}

export interface ImageRef {
  row: number;
  position: number;
}

/** What decoding and re-encoding an image found and made. */
export interface ImageMetadata {
  /** The main output, as stored: after orientation and any resize. */
  width: number;
  height: number;
  format: OutputFormat;
  input: {
    /** As stored in the file, before its EXIF orientation is applied. */
    width: number;
    height: number;
    format: DecodableType;
  };
  /** The input's EXIF orientation (1–8), null when it had none. */
  orientation: number | null;
  /** Whether the pixels were turned or mirrored upright (orientation 2–8). */
  rotated: boolean;
}

export interface ImageRecord {
  requestId: string;
  /** Distinct image within its job: a URL repeated in a job is one image, fetched once. */
  seq: number;
  /**
   * Where the input comes from: an http(s) URL to download, or for a direct upload
   * `upload:<request id>`, the file saved under the uploads directory (see `uploadUrl`).
   */
  url: string;
  /** The client's file name of a direct upload; null for an image from a CSV. */
  originalName: string | null;
  /** Deterministic output name (from the first row and position that used the URL). */
  outputName: string;
  /** Product rows that use this image, so finishing it can advance their progress. */
  refs: ImageRef[];
  status: ImageStatus;
  owner: string | null;
  leaseUntil: Date | null;
  outputFile: string | null;
  /** Output file of each thumbnail variant, by variant name; empty until processed. */
  thumbnails: Record<string, string>;
  bytesIn: number | null;
  bytesOut: number | null;
  /** Null until processed. */
  metadata: ImageMetadata | null;
  error: string | null;
  /**
   * Wall time of its fetch (download, or read of a direct upload), check, encode (with its
   * thumbnails) and store, in ms; null until it is finished.
   */
  processingMs: number | null;
}

/** One more use of an already recorded image. */
export interface ImageRefAddition {
  seq: number;
  ref: ImageRef;
}

/** How many times each product row uses the images whose refs are given, by row. */
export function usesByRow(refs: Iterable<ImageRef>): Map<number, number> {
  const uses = new Map<number, number>();
  for (const ref of refs) uses.set(ref.row, (uses.get(ref.row) ?? 0) + 1);
  return uses;
}

/**
 * An image not yet fetched: everything a processing run fills in starts empty. Spelled
 * out field by field: V8 built `{ ...image, status, … }` some 25 times slower (about 20 µs
 * an image, 2 s of a 100,000-row upload; measured with a 100,000-call loop).
 */
export function pendingImage(
  image: Pick<ImageRecord, 'requestId' | 'seq' | 'url' | 'originalName' | 'outputName' | 'refs'>,
): ImageRecord {
  return {
    requestId: image.requestId,
    seq: image.seq,
    url: image.url,
    originalName: image.originalName,
    outputName: image.outputName,
    refs: image.refs,
    status: 'PENDING',
    owner: null,
    leaseUntil: null,
    outputFile: null,
    thumbnails: {},
    bytesIn: null,
    bytesOut: null,
    metadata: null,
    error: null,
    processingMs: null,
  };
}

export interface ImageOutcome {
  status: 'PROCESSED' | 'FAILED';
  outputFile: string | null;
  thumbnails: Record<string, string>;
  bytesIn: number | null;
  bytesOut: number | null;
  metadata: ImageMetadata | null;
  error: string | null;
  /** Wall time of the fetch, check, encode and store, in ms, failed or not. */
  processingMs: number;
}

/**
 * Running totals over every image outcome a store has recorded, kept as images finish so
 * that reading them costs one lookup. An image retried counts once per run; deleting a job
 * does not take its images back out.
 */
export interface ImageTotals {
  processed: number;
  failed: number;
  /** Sum of `processingMs` over processed and failed images alike. */
  processingMs: number;
  /** Bytes downloaded and written, over processed images only. */
  bytesIn: number;
  bytesOut: number;
}

/** Which jobs a listing shows: those in `status` and of `kind`, each when given. */
export interface JobFilter {
  status?: VisibleJobStatus | undefined;
  kind?: JobKind | undefined;
}

/** One page of a job listing, and how many jobs match in all. */
export interface JobPage {
  total: number;
  jobs: JobRecord[];
}

export interface AcceptedJob {
  options: TransformOptions;
  baseUrl: string;
  columns: string[];
  webhookUrl: string | null;
  productsTotal: number;
  imagesTotal: number;
}

/**
 * Persistence for jobs, their products and their images.
 *
 * Shaped for MongoDB: every method is a handful of single-document atomic updates,
 * counters move by increments, and claims are conditional updates, so the same contract
 * holds on a standalone server with no transactions, and for several processes sharing
 * one database.
 */
export interface JobStore {
  readonly kind: 'embedded' | 'mongodb';
  init(): Promise<void>;
  /** Throws when the store does not answer. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Records a job in RECEIVING state, before its rows arrive; a CSV job unless `kind` says. */
  beginJob(id: string, now: Date, kind?: JobKind): Promise<void>;
  /** Records one batch of a RECEIVING job's products. */
  addProducts(requestId: string, products: ProductRecord[]): Promise<void>;
  /** Records one batch of a RECEIVING job's distinct images. */
  addImages(requestId: string, images: ImageRecord[]): Promise<void>;
  /**
   * Appends uses to images of a RECEIVING job recorded by an earlier batch (a URL seen
   * again further down the CSV), in the order given.
   */
  addImageRefs(requestId: string, refs: ImageRefAddition[]): Promise<void>;
  /** RECEIVING → PENDING: from here on the job is visible and will be processed. */
  acceptJob(id: string, accepted: AcceptedJob, now: Date): Promise<void>;
  /** Removes a job and everything recorded for it. */
  deleteJob(id: string): Promise<void>;
  /**
   * Moves the job to DELETING if it is in one of `from`, in one conditional update, so a
   * job that moved on meanwhile (completed, re-opened) is not taken by surprise. True when
   * it was moved.
   */
  markJobDeleting(id: string, from: readonly JobStatus[], now: Date): Promise<boolean>;
  /** Ids of jobs whose deletion began and has not finished. */
  listDeletingJobs(): Promise<string[]>;
  /**
   * Ids of finished jobs (COMPLETED or FAILED) that completed before `before`, the
   * earliest first, at most `limit`.
   */
  listExpiredJobs(before: Date, limit: number): Promise<string[]>;
  /** Ids of RECEIVING jobs untouched since `before`: uploads that died half-way. */
  listAbandonedJobs(before: Date): Promise<string[]>;

  getJob(id: string): Promise<JobRecord | null>;
  /**
   * Accepted jobs (never RECEIVING or DELETING) that match `filter`, newest first (by
   * creation time, then by id descending so that paging is stable), skipping `offset` and
   * returning at most `limit` (at least 1); `total` counts every match.
   */
  listJobs(filter: JobFilter, offset: number, limit: number): Promise<JobPage>;
  /** How many accepted jobs are in each status (every status present, 0 when none). */
  countJobs(): Promise<Record<VisibleJobStatus, number>>;
  listProducts(requestId: string, offset: number, limit: number): Promise<ProductRecord[]>;
  listImages(requestId: string): Promise<ImageRecord[]>;
  findImages(requestId: string, seqs: number[]): Promise<ImageRecord[]>;
  /** Every image of these jobs, in no particular order. */
  listImagesOfJobs(requestIds: string[]): Promise<ImageRecord[]>;

  /**
   * Atomically takes up to `limit` images that are PENDING, or PROCESSING under an expired
   * lease, marking them PROCESSING for `owner` until `leaseUntil`. Oldest jobs first.
   */
  claimImages(owner: string, now: Date, leaseUntil: Date, limit: number): Promise<ImageRecord[]>;
  /** Extends the lease of every image `owner` is processing. */
  renewLeases(owner: string, leaseUntil: Date): Promise<void>;
  /** Hands every image `owner` is still processing back as PENDING (at shutdown). */
  releaseImages(owner: string): Promise<void>;
  /** PENDING → PROCESSING for a job whose first image was claimed. */
  markJobProcessing(id: string, now: Date): Promise<void>;
  /**
   * Records an image's final state if `owner` still holds it, and advances the job's
   * counters and the image totals. Returns the job after the update, or null when the lease had been lost
   * (another worker owns the image now, and it will do the accounting).
   */
  finishImage(
    requestId: string,
    seq: number,
    owner: string,
    outcome: ImageOutcome,
    now: Date,
  ): Promise<JobRecord | null>;

  /** Totals over every image outcome recorded (see `finishImage`). */
  getImageTotals(): Promise<ImageTotals>;

  /** Jobs that were accepted and are not COMPLETED or FAILED. */
  listUnfinishedJobs(): Promise<JobRecord[]>;
  /** Recomputes a job's counters from its images and products (after a crash). */
  recountJob(id: string, now: Date): Promise<JobRecord | null>;
  /**
   * Re-opens a COMPLETED job that has FAILED images: they become PENDING again (their
   * outcome cleared), their products unfinished, the job PROCESSING with no completion
   * time, and its webhook (if any) a new delivery of the next round, not due until the job
   * completes again. The job is moved first, by a conditional update that one caller wins,
   * and the images last, so no image is claimed before the counters expect it. Returns the
   * job after the update, or null when it is not COMPLETED or has no FAILED image.
   */
  retryFailedImages(id: string, now: Date): Promise<JobRecord | null>;
  /**
   * Marks the job COMPLETED if it is not already, and makes its webhook (if any) due at
   * `now` in the same update, so a crash cannot leave a completed job unannounced. True
   * for exactly one caller.
   */
  completeJob(id: string, now: Date): Promise<boolean>;

  /**
   * Atomically takes the most overdue webhook that is PENDING, due by `now`, and not held
   * under an unexpired lease, for `owner` until `leaseUntil`. Returns its job after the
   * update, or null when none is due. Two callers never get the same attempt.
   */
  claimDueWebhook(owner: string, now: Date, leaseUntil: Date): Promise<JobRecord | null>;
  /**
   * Records the attempt made under `owner`'s claim and releases the claim. False, and
   * nothing changed, when `owner` no longer holds the webhook.
   */
  recordWebhookAttempt(
    id: string,
    owner: string,
    progress: WebhookProgress,
    now: Date,
  ): Promise<boolean>;
}
