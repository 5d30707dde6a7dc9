import type { OutputFormat } from '../config.js';
import type { DecodableType } from '../pipeline/image-type.js';

/**
 * RECEIVING is internal: the CSV is still being recorded and the client has no id yet.
 * Such a job is invisible through the API and is discarded if it is never accepted.
 */
export type JobStatus = 'RECEIVING' | 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'FAILED';
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
  /** Time spent fetching and processing the image (the whole pipeline), in ms. */
  processingMs: number | null;
  error: string | null;
}

export interface ImageOutcome {
  status: 'PROCESSED' | 'FAILED';
  outputFile: string | null;
  thumbnails: Record<string, string>;
  bytesIn: number | null;
  bytesOut: number | null;
  metadata: ImageMetadata | null;
  processingMs: number | null;
  error: string | null;
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
  /** Records one batch of a RECEIVING job's distinct images, once all its rows are known. */
  addImages(requestId: string, images: ImageRecord[]): Promise<void>;
  /** RECEIVING → PENDING: from here on the job is visible and will be processed. */
  acceptJob(id: string, accepted: AcceptedJob, now: Date): Promise<void>;
  /** Removes a job and everything recorded for it. */
  deleteJob(id: string): Promise<void>;
  /** Ids of RECEIVING jobs untouched since `before`: uploads that died half-way. */
  listAbandonedJobs(before: Date): Promise<string[]>;

  getJob(id: string): Promise<JobRecord | null>;
  /**
   * Accepted jobs (never RECEIVING) of one kind, newest first (by creation time, then by
   * id descending so that paging is stable); `total` counts every one.
   */
  listJobsByKind(
    kind: JobKind,
    offset: number,
    limit: number,
  ): Promise<{ total: number; jobs: JobRecord[] }>;
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
   * counters. Returns the job after the update, or null when the lease had been lost
   * (another worker owns the image now, and it will do the accounting).
   */
  finishImage(
    requestId: string,
    seq: number,
    owner: string,
    outcome: ImageOutcome,
    now: Date,
  ): Promise<JobRecord | null>;

  /** Jobs that were accepted and are not COMPLETED or FAILED. */
  listUnfinishedJobs(): Promise<JobRecord[]>;
  /** Recomputes a job's counters from its images and products (after a crash). */
  recountJob(id: string, now: Date): Promise<JobRecord | null>;
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
