import { randomUUID } from 'node:crypto';
import { type Collection, type Db, type Filter, type IndexDescription, MongoClient } from 'mongodb';
import pLimit, { type LimitFunction } from 'p-limit';
import type {
  AcceptedJob,
  ImageMetadata,
  ImageOutcome,
  ImageRecord,
  ImageRef,
  ImageRefAddition,
  JobFilter,
  JobKind,
  JobPage,
  JobRecord,
  JobStatus,
  JobStore,
  ProductRecord,
  ImageTotals,
  TransformOptions,
  VisibleJobStatus,
  WebhookProgress,
  WebhookState,
} from './job-store.js';
import { newWebhook, usesByRow, VISIBLE_JOB_STATUSES } from './job-store.js';
import { claimRoundRobin } from './round-robin.js';

/**
 * A webhook state as stored: `WebhookState` itself, times as BSON dates. The fields added
 * with retries are optional because jobs recorded before them lack them.
 */
type WebhookDoc = Pick<WebhookState, 'url' | 'status' | 'attempts' | 'lastError'> &
  Partial<Pick<WebhookState, 'nextAttemptAt' | 'log' | 'owner' | 'leaseUntil' | 'round'>>;

interface RequestDoc {
  _id: string;
  /** Absent on jobs recorded before direct uploads existed, which were all CSV jobs. */
  kind?: JobKind;
  status: JobStatus;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  base_url: string;
  options: TransformOptions | null;
  columns: string[];
  webhook: WebhookDoc | null;
  products_total: number;
  products_done: number;
  images_total: number;
  images_processed: number;
  images_failed: number;
  error: string | null;
}

interface ProductDoc {
  request_id: string;
  row: number;
  serial: string;
  name: string;
  cells: string[];
  input_urls: string[];
  image_seqs: number[];
  images_pending: number;
  /**
   * Set once, by the first finishImage to see images_pending at 0, so that a product is
   * counted done exactly once however many finishes race; cleared when retry-failed
   * re-opens it. Absent on products written before it existed, which reads as not done.
   */
  done?: boolean;
}

interface ImageDoc {
  request_id: string;
  seq: number;
  url: string;
  output_name: string;
  refs: ImageRef[];
  status: ImageRecord['status'];
  owner: string | null;
  lease_until: Date | null;
  /** Marks the images taken by one claim, so they can be read back after the update. */
  claim: string | null;
  output_file: string | null;
  bytes_in: number | null;
  bytes_out: number | null;
  error: string | null;
  // Absent on images recorded before direct uploads, thumbnails, metadata and processing
  // times existed.
  original_name?: string | null;
  thumbnails?: Record<string, string> | null;
  metadata?: ImageMetadata | null;
  processing_ms?: number | null;
}

/** The one document of `stats`: totals over every image outcome recorded. */
interface ImageTotalsDoc {
  _id: 'images';
  processed: number;
  failed: number;
  processing_ms: number;
  bytes_in: number;
  bytes_out: number;
}

const ACTIVE: JobStatus[] = ['PENDING', 'PROCESSING'];
const DEFAULT_OPTIONS: TransformOptions = {
  quality: 50,
  format: 'jpeg',
  maxWidth: null,
  maxHeight: null,
  thumbnails: [],
};

function toWebhook(doc: WebhookDoc): WebhookState {
  return {
    url: doc.url,
    status: doc.status,
    attempts: doc.attempts,
    lastError: doc.lastError,
    nextAttemptAt: doc.nextAttemptAt ?? null,
    log: doc.log ?? [],
    owner: doc.owner ?? null,
    leaseUntil: doc.leaseUntil ?? null,
    round: doc.round ?? 1,
  };
}

function toJob(doc: RequestDoc): JobRecord {
  return {
    id: doc._id,
    kind: doc.kind ?? 'csv',
    status: doc.status,
    createdAt: doc.created_at,
    updatedAt: doc.updated_at,
    completedAt: doc.completed_at,
    baseUrl: doc.base_url,
    options: doc.options ? { ...DEFAULT_OPTIONS, ...doc.options } : DEFAULT_OPTIONS,
    columns: doc.columns,
    webhook: doc.webhook && toWebhook(doc.webhook),
    productsTotal: doc.products_total,
    productsDone: doc.products_done,
    imagesTotal: doc.images_total,
    imagesProcessed: doc.images_processed,
    imagesFailed: doc.images_failed,
    error: doc.error,
  };
}

function toProduct(doc: ProductDoc): ProductRecord {
  return {
    requestId: doc.request_id,
    row: doc.row,
    serial: doc.serial,
    name: doc.name,
    cells: doc.cells,
    inputUrls: doc.input_urls,
    imageSeqs: doc.image_seqs,
    imagesPending: doc.images_pending,
  };
}

function toImage(doc: ImageDoc): ImageRecord {
  return {
    requestId: doc.request_id,
    seq: doc.seq,
    url: doc.url,
    originalName: doc.original_name ?? null,
    outputName: doc.output_name,
    refs: doc.refs,
    status: doc.status,
    owner: doc.owner,
    leaseUntil: doc.lease_until,
    outputFile: doc.output_file,
    thumbnails: doc.thumbnails ?? {},
    bytesIn: doc.bytes_in,
    bytesOut: doc.bytes_out,
    metadata: doc.metadata ?? null,
    error: doc.error,
    processingMs: doc.processing_ms ?? null,
  };
}

/** The database named in the URI's path, if any (`mongodb://host/db?opts`). */
export function databaseFromUri(uri: string): string | null {
  const match = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]+)/.exec(uri);
  return match?.[1] ? decodeURIComponent(match[1]) : null;
}

/**
 * The production store, on the official driver. Every state change is one atomic
 * single-document update (no transactions), so it runs on a standalone server, a replica
 * set, Atlas, and wire-compatible servers alike, and stays correct with several service
 * processes on one database: images are claimed by conditional update with an owner and a
 * lease, and a job is completed by a conditional update that only one caller can win.
 */
export class MongoJobStore implements JobStore {
  readonly kind = 'mongodb' as const;
  private readonly client: MongoClient;
  private readonly db: Db;
  private readonly requests: Collection<RequestDoc>;
  private readonly products: Collection<ProductDoc>;
  private readonly images: Collection<ImageDoc>;
  private readonly stats: Collection<ImageTotalsDoc>;
  /**
   * FerretDB v1 applies an update by reading the document, changing it and writing it
   * back, without isolation (FerretDB issue #3040): two concurrent `$inc` on one document
   * can lose one, and a lease renewal can undo a concurrent completion. Against such a
   * server this process sends its writes one at a time, which keeps one process correct;
   * on MongoDB itself every update is atomic and writes go out concurrently.
   */
  private serializeWrites: LimitFunction | null = null;
  private claimTurn = 0;

  constructor(uri: string, fallbackDb: string) {
    this.client = new MongoClient(uri, {
      serverSelectionTimeoutMS: 5000,
      appName: 'image-batch-service',
    });
    this.db = this.client.db(databaseFromUri(uri) ?? fallbackDb);
    this.requests = this.db.collection<RequestDoc>('requests');
    this.products = this.db.collection<ProductDoc>('products');
    this.images = this.db.collection<ImageDoc>('images');
    this.stats = this.db.collection<ImageTotalsDoc>('stats');
  }

  async init(): Promise<void> {
    await this.client.connect();
    const info = await this.db.admin().command({ buildInfo: 1 });
    if ('ferretdbVersion' in info) this.serializeWrites = pLimit(1);
    // Creating an index that exists with the same specification is a no-op, so every start
    // may run this. One index per command: FerretDB v1 panics on a multi-index
    // createIndexes whose indexes already exist.
    const indexes: Array<[string, IndexDescription]> = [
      ['requests', { key: { status: 1, created_at: 1 }, name: 'status_created' }],
      ['requests', { key: { 'webhook.nextAttemptAt': 1 }, name: 'webhook_due' }],
      // Newest-first listing: one status is a range of it, all of them a merge of four.
      ['requests', { key: { status: 1, created_at: -1, _id: -1 }, name: 'status_created_listing' }],
      // Finished jobs by completion time, for the retention sweep.
      ['requests', { key: { status: 1, completed_at: 1 }, name: 'status_completed' }],
      // Newest-first listing of one kind (GET /images, GET /requests?kind=).
      ['requests', { key: { kind: 1, created_at: -1, _id: -1 }, name: 'kind_created_listing' }],
      ['products', { key: { request_id: 1, row: 1 }, name: 'request_row', unique: true }],
      ['images', { key: { request_id: 1, seq: 1 }, name: 'request_seq', unique: true }],
      ['images', { key: { request_id: 1, status: 1, seq: 1 }, name: 'request_status_seq' }],
      ['images', { key: { owner: 1, status: 1 }, name: 'owner_status' }],
      ['images', { key: { claim: 1 }, name: 'claim' }],
    ];
    for (const [collection, index] of indexes) {
      await this.db.collection(collection).createIndexes([index]);
    }
  }

  /** Whether writes are serialized because the server does not update atomically. */
  get writesSerialized(): boolean {
    return this.serializeWrites !== null;
  }

  private write<T>(operation: () => Promise<T>): Promise<T> {
    return this.serializeWrites ? this.serializeWrites(operation) : operation();
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async beginJob(id: string, now: Date, kind: JobKind = 'csv'): Promise<void> {
    await this.write(() =>
      this.requests.insertOne({
        _id: id,
        kind,
        status: 'RECEIVING',
        created_at: now,
        updated_at: now,
        completed_at: null,
        base_url: '',
        options: null,
        columns: [],
        webhook: null,
        products_total: 0,
        products_done: 0,
        images_total: 0,
        images_processed: 0,
        images_failed: 0,
        error: null,
      }),
    );
  }

  async addProducts(requestId: string, products: ProductRecord[]): Promise<void> {
    if (products.length > 0) {
      await this.write(() =>
        this.products.insertMany(
          products.map((p) => ({
            request_id: requestId,
            row: p.row,
            serial: p.serial,
            name: p.name,
            cells: p.cells,
            input_urls: p.inputUrls,
            image_seqs: p.imageSeqs,
            images_pending: p.imagesPending,
          })),
          { ordered: false },
        ),
      );
    }
    await this.touch(requestId);
  }

  async addImages(requestId: string, images: ImageRecord[]): Promise<void> {
    if (images.length > 0) {
      await this.write(() =>
        this.images.insertMany(
          images.map((i) => ({
            request_id: requestId,
            seq: i.seq,
            url: i.url,
            original_name: i.originalName,
            output_name: i.outputName,
            refs: i.refs,
            status: i.status,
            owner: null,
            lease_until: null,
            claim: null,
            output_file: null,
            thumbnails: {},
            bytes_in: null,
            bytes_out: null,
            metadata: null,
            error: null,
            processing_ms: null,
          })),
          { ordered: false },
        ),
      );
    }
    await this.touch(requestId);
  }

  async addImageRefs(requestId: string, refs: ImageRefAddition[]): Promise<void> {
    // One update per image, its new refs in order, rather than one per use.
    const bySeq = new Map<number, ImageRef[]>();
    for (const { seq, ref } of refs) {
      const added = bySeq.get(seq);
      if (added) added.push(ref);
      else bySeq.set(seq, [ref]);
    }
    if (bySeq.size > 0) {
      await this.write(() =>
        this.images.bulkWrite(
          [...bySeq].map(([seq, added]) => ({
            updateOne: {
              filter: { request_id: requestId, seq },
              update: { $push: { refs: { $each: added } } },
            },
          })),
          { ordered: false },
        ),
      );
    }
    await this.touch(requestId);
  }

  /** Keeps a long upload from looking abandoned while its rows are still arriving. */
  private async touch(requestId: string): Promise<void> {
    await this.write(() =>
      this.requests.updateOne({ _id: requestId }, { $set: { updated_at: new Date() } }),
    );
  }

  async acceptJob(id: string, accepted: AcceptedJob, now: Date): Promise<void> {
    await this.write(() =>
      this.requests.updateOne(
        { _id: id, status: 'RECEIVING' },
        {
          $set: {
            status: 'PENDING',
            updated_at: now,
            base_url: accepted.baseUrl,
            options: accepted.options,
            columns: accepted.columns,
            webhook: accepted.webhookUrl ? newWebhook(accepted.webhookUrl) : null,
            products_total: accepted.productsTotal,
            images_total: accepted.imagesTotal,
          },
        },
      ),
    );
  }

  async deleteJob(id: string): Promise<void> {
    // The job document goes last, so an interrupted delete is still found and finished by
    // the next sweep rather than leaving orphaned rows behind.
    await this.write(() => this.images.deleteMany({ request_id: id }));
    await this.write(() => this.products.deleteMany({ request_id: id }));
    await this.write(() => this.requests.deleteOne({ _id: id }));
  }

  async markJobDeleting(id: string, from: readonly JobStatus[], now: Date): Promise<boolean> {
    const result = await this.write(() =>
      this.requests.updateOne(
        { _id: id, status: { $in: [...from] } },
        { $set: { status: 'DELETING', updated_at: now } },
      ),
    );
    return result.modifiedCount === 1;
  }

  async listDeletingJobs(): Promise<string[]> {
    const docs = await this.requests
      .find({ status: 'DELETING' }, { projection: { _id: 1 } })
      .toArray();
    return docs.map((d) => d._id);
  }

  async listExpiredJobs(before: Date, limit: number): Promise<string[]> {
    const docs = await this.requests
      .find(
        { status: { $in: ['COMPLETED', 'FAILED'] }, completed_at: { $lt: before } },
        { projection: { _id: 1 } },
      )
      .sort({ completed_at: 1, _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map((d) => d._id);
  }

  async listAbandonedJobs(before: Date): Promise<string[]> {
    const docs = await this.requests
      .find({ status: 'RECEIVING', updated_at: { $lt: before } }, { projection: { _id: 1 } })
      .toArray();
    return docs.map((d) => d._id);
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const doc = await this.requests.findOne({ _id: id });
    return doc ? toJob(doc) : null;
  }

  async listJobs({ status, kind }: JobFilter, offset: number, limit: number): Promise<JobPage> {
    const filter: Filter<RequestDoc> = { status: status ?? { $in: [...VISIBLE_JOB_STATUSES] } };
    // A job without a kind is a CSV job recorded before kinds existed.
    if (kind === 'csv') filter.$or = [{ kind }, { kind: { $exists: false } }];
    if (kind === 'image') filter.kind = kind;
    const [total, docs] = await Promise.all([
      this.requests.countDocuments(filter),
      this.requests
        .find(filter)
        .sort({ created_at: -1, _id: -1 })
        .skip(offset)
        .limit(limit)
        .toArray(),
    ]);
    return { total, jobs: docs.map(toJob) };
  }

  async countJobs(): Promise<Record<VisibleJobStatus, number>> {
    // One index count per status, rather than a $group, which scans.
    const counts = await Promise.all(
      VISIBLE_JOB_STATUSES.map((status) => this.requests.countDocuments({ status })),
    );
    return Object.fromEntries(
      VISIBLE_JOB_STATUSES.map((status, i) => [status, counts[i] ?? 0]),
    ) as Record<VisibleJobStatus, number>;
  }

  async listProducts(requestId: string, offset: number, limit: number): Promise<ProductRecord[]> {
    const docs = await this.products
      .find({ request_id: requestId })
      .sort({ row: 1 })
      .skip(offset)
      .limit(limit)
      .toArray();
    return docs.map(toProduct);
  }

  async listImages(requestId: string): Promise<ImageRecord[]> {
    const docs = await this.images.find({ request_id: requestId }).sort({ seq: 1 }).toArray();
    return docs.map(toImage);
  }

  async findImages(requestId: string, seqs: number[]): Promise<ImageRecord[]> {
    if (seqs.length === 0) return [];
    const docs = await this.images
      .find({ request_id: requestId, seq: { $in: seqs } })
      .sort({ seq: 1 })
      .toArray();
    return docs.map(toImage);
  }

  async listImagesOfJobs(requestIds: string[]): Promise<ImageRecord[]> {
    if (requestIds.length === 0) return [];
    const docs = await this.images.find({ request_id: { $in: requestIds } }).toArray();
    return docs.map(toImage);
  }

  async claimImages(
    owner: string,
    now: Date,
    leaseUntil: Date,
    limit: number,
  ): Promise<ImageRecord[]> {
    const active = await this.requests
      .find({ status: { $in: ACTIVE } }, { projection: { _id: 1 } })
      .sort({ created_at: 1, _id: 1 })
      .toArray();
    return claimRoundRobin(
      active.map((j) => j._id),
      limit,
      this.claimTurn++,
      (id, want) => this.claimFrom(id, owner, now, leaseUntil, want),
    );
  }

  /**
   * Picks candidates, then takes them with one conditional update that re-checks each
   * one's claimability: a candidate another worker took in between is simply not matched,
   * and the next round looks further.
   */
  private async claimFrom(
    requestId: string,
    owner: string,
    now: Date,
    leaseUntil: Date,
    want: number,
  ): Promise<ImageRecord[]> {
    const claimable: Filter<ImageDoc> = {
      request_id: requestId,
      $or: [{ status: 'PENDING' }, { status: 'PROCESSING', lease_until: { $lt: now } }],
    };
    const claim = randomUUID();
    let taken = 0;
    for (let round = 0; round < 3 && taken < want; round++) {
      const candidates = await this.images
        .find(claimable, { projection: { seq: 1 } })
        .sort({ seq: 1 })
        .limit(want - taken)
        .toArray();
      if (candidates.length === 0) break;
      const result = await this.write(() =>
        this.images.updateMany(
          { ...claimable, seq: { $in: candidates.map((c) => c.seq) } },
          { $set: { status: 'PROCESSING', owner, lease_until: leaseUntil, claim } },
        ),
      );
      taken += result.modifiedCount;
    }
    if (taken === 0) return [];
    const docs = await this.images.find({ claim }).sort({ seq: 1 }).toArray();
    return docs.map(toImage);
  }

  async renewLeases(owner: string, leaseUntil: Date): Promise<void> {
    await this.write(() =>
      this.images.updateMany(
        { owner, status: 'PROCESSING' },
        { $set: { lease_until: leaseUntil } },
      ),
    );
  }

  async releaseImages(owner: string): Promise<void> {
    await this.write(() =>
      this.images.updateMany(
        { owner, status: 'PROCESSING' },
        { $set: { status: 'PENDING', owner: null, lease_until: null, claim: null } },
      ),
    );
  }

  async markJobProcessing(id: string, now: Date): Promise<void> {
    await this.write(() =>
      this.requests.updateOne(
        { _id: id, status: 'PENDING' },
        { $set: { status: 'PROCESSING', updated_at: now } },
      ),
    );
  }

  async finishImage(
    requestId: string,
    seq: number,
    owner: string,
    outcome: ImageOutcome,
    now: Date,
  ): Promise<JobRecord | null> {
    const image = await this.write(() =>
      this.images.findOneAndUpdate(
        { request_id: requestId, seq, status: 'PROCESSING', owner },
        {
          $set: {
            status: outcome.status,
            output_file: outcome.outputFile,
            thumbnails: outcome.thumbnails,
            bytes_in: outcome.bytesIn,
            bytes_out: outcome.bytesOut,
            metadata: outcome.metadata,
            error: outcome.error,
            processing_ms: outcome.processingMs,
            owner: null,
            lease_until: null,
            claim: null,
          },
        },
      ),
    );
    if (!image) return null;
    const productsDone = await this.countDown(requestId, usesByRow(image.refs));
    const processed = outcome.status === 'PROCESSED' ? 1 : 0;
    const job = await this.write(() =>
      this.requests.findOneAndUpdate(
        { _id: requestId },
        {
          $inc: {
            images_processed: processed,
            images_failed: 1 - processed,
            products_done: productsDone,
          },
          $set: { updated_at: now },
        },
        { returnDocument: 'after' },
      ),
    );
    if (!job) return null;
    // A hot document, but one $inc per image; kept apart from the job so that deleting
    // jobs leaves the totals whole.
    await this.write(() =>
      this.stats.updateOne(
        { _id: 'images' },
        {
          $inc: {
            processed,
            failed: 1 - processed,
            processing_ms: outcome.processingMs,
            bytes_in: processed ? (outcome.bytesIn ?? 0) : 0,
            bytes_out: processed ? (outcome.bytesOut ?? 0) : 0,
          },
        },
        { upsert: true },
      ),
    );
    return toJob(job);
  }

  /**
   * Takes a finished image off its products' pending counts; returns how many products
   * that finished. Each product now at zero is flagged done by whichever finish gets there
   * first, so one is counted once however many finishes race.
   */
  private async countDown(requestId: string, uses: Map<number, number>): Promise<number> {
    const [only, ...others] = uses;
    if (only === undefined) return 0;
    if (others.length === 0) {
      // Nearly always one row uses the image: its decrement answers with the count left,
      // so the flag costs a write only for a product's last image.
      const [row, count] = only;
      const product = await this.write(() =>
        this.products.findOneAndUpdate(
          { request_id: requestId, row },
          { $inc: { images_pending: -count } },
          // No projection: FerretDB 1.24 does not implement one on findAndModify.
          { returnDocument: 'after' },
        ),
      );
      return product?.images_pending === 0 ? this.flagDone(requestId, [row]) : 0;
    }
    // A few writes whatever the number of rows sharing the image (one per row was 2,500
    // sequential round trips for a URL repeated in 2,500 rows): one decrement per distinct
    // number of uses in a row (nearly always just 1).
    const rowsByCount = new Map<number, number[]>();
    for (const [row, count] of uses) {
      const rows = rowsByCount.get(count);
      if (rows) rows.push(row);
      else rowsByCount.set(count, [row]);
    }
    for (const [count, rows] of rowsByCount) {
      await this.write(() =>
        this.products.updateMany(
          { request_id: requestId, row: { $in: rows } },
          { $inc: { images_pending: -count } },
        ),
      );
    }
    return this.flagDone(requestId, [...uses.keys()]);
  }

  /** Flags the products among `rows` that have nothing pending done; returns how many. */
  private async flagDone(requestId: string, rows: number[]): Promise<number> {
    const flagged = await this.write(() =>
      this.products.updateMany(
        { request_id: requestId, row: { $in: rows }, images_pending: 0, done: { $ne: true } },
        { $set: { done: true } },
      ),
    );
    return flagged.modifiedCount;
  }

  async getImageTotals(): Promise<ImageTotals> {
    const totals = await this.stats.findOne({ _id: 'images' });
    return {
      processed: totals?.processed ?? 0,
      failed: totals?.failed ?? 0,
      processingMs: totals?.processing_ms ?? 0,
      bytesIn: totals?.bytes_in ?? 0,
      bytesOut: totals?.bytes_out ?? 0,
    };
  }

  async listUnfinishedJobs(): Promise<JobRecord[]> {
    const docs = await this.requests
      .find({ status: { $in: ACTIVE } })
      .sort({ created_at: 1, _id: 1 })
      .toArray();
    return docs.map(toJob);
  }

  async recountJob(id: string, now: Date): Promise<JobRecord | null> {
    const final = new Map<number, boolean>();
    let processed = 0;
    let failed = 0;
    const images = this.images.find({ request_id: id }, { projection: { seq: 1, status: 1 } });
    for await (const image of images) {
      if (image.status === 'PROCESSED') processed++;
      if (image.status === 'FAILED') failed++;
      final.set(image.seq, image.status === 'PROCESSED' || image.status === 'FAILED');
    }
    let productsDone = 0;
    const fixes: Array<{ row: number; pending: number }> = [];
    const products = this.products.find(
      { request_id: id },
      { projection: { row: 1, image_seqs: 1, images_pending: 1, done: 1 } },
    );
    for await (const product of products) {
      const pending = product.image_seqs.filter((s) => !final.get(s)).length;
      if (pending === 0) productsDone++;
      if (pending !== product.images_pending || (pending === 0) !== (product.done === true)) {
        fixes.push({ row: product.row, pending });
      }
    }
    if (fixes.length > 0) {
      await this.write(() =>
        this.products.bulkWrite(
          fixes.map((f) => ({
            updateOne: {
              filter: { request_id: id, row: f.row },
              update: { $set: { images_pending: f.pending, done: f.pending === 0 } },
            },
          })),
          { ordered: false },
        ),
      );
    }
    const job = await this.write(() =>
      this.requests.findOneAndUpdate(
        { _id: id },
        {
          $set: {
            images_processed: processed,
            images_failed: failed,
            products_done: productsDone,
            updated_at: now,
          },
        },
        { returnDocument: 'after' },
      ),
    );
    return job ? toJob(job) : null;
  }

  async retryFailedImages(id: string, now: Date): Promise<JobRecord | null> {
    const job = await this.requests.findOne({ _id: id, status: 'COMPLETED' });
    if (!job) return null;
    const failed = await this.images
      .find({ request_id: id, status: 'FAILED' }, { projection: { refs: 1 } })
      .toArray();
    if (failed.length === 0) return null;
    const uses = usesByRow(failed.flatMap((image) => image.refs));
    const webhook: WebhookDoc | null = job.webhook && {
      url: job.webhook.url,
      status: 'PENDING',
      attempts: 0,
      lastError: null,
      nextAttemptAt: null,
      log: [],
      owner: null,
      leaseUntil: null,
      round: (job.webhook.round ?? 1) + 1,
    };
    // Every product of a COMPLETED job is finished, so each one using a failed image is
    // re-opened.
    const reopened = await this.write(() =>
      this.requests.findOneAndUpdate(
        { _id: id, status: 'COMPLETED' },
        {
          $set: {
            status: 'PROCESSING',
            completed_at: null,
            updated_at: now,
            images_failed: 0,
            webhook,
          },
          $inc: { products_done: -uses.size },
        },
        { returnDocument: 'after' },
      ),
    );
    if (!reopened) return null;
    await this.write(() =>
      this.products.bulkWrite(
        [...uses].map(([row, count]) => ({
          updateOne: {
            filter: { request_id: id, row },
            update: { $inc: { images_pending: count }, $set: { done: false } },
          },
        })),
        { ordered: false },
      ),
    );
    await this.write(() =>
      this.images.updateMany(
        { request_id: id, status: 'FAILED' },
        {
          $set: {
            status: 'PENDING',
            owner: null,
            lease_until: null,
            claim: null,
            output_file: null,
            bytes_in: null,
            bytes_out: null,
            error: null,
            processing_ms: null,
          },
        },
      ),
    );
    return toJob(reopened);
  }

  async completeJob(id: string, now: Date): Promise<boolean> {
    const completed = { status: 'COMPLETED' as const, completed_at: now, updated_at: now };
    // A field cannot be set inside a null webhook, so there is one conditional update for a
    // job with a webhook and one for a job without. A job matches at most one of them, and
    // only while it is unfinished, so exactly one caller still wins.
    const withHook = await this.write(() =>
      this.requests.updateOne(
        { _id: id, status: { $in: ACTIVE }, webhook: { $ne: null } },
        { $set: { ...completed, 'webhook.nextAttemptAt': now } },
      ),
    );
    if (withHook.modifiedCount === 1) return true;
    const without = await this.write(() =>
      this.requests.updateOne(
        { _id: id, status: { $in: ACTIVE }, webhook: null },
        { $set: completed },
      ),
    );
    return without.modifiedCount === 1;
  }

  async claimDueWebhook(owner: string, now: Date, leaseUntil: Date): Promise<JobRecord | null> {
    const doc = await this.write(() =>
      this.requests.findOneAndUpdate(
        {
          status: 'COMPLETED',
          'webhook.status': 'PENDING',
          'webhook.nextAttemptAt': { $lte: now },
          $or: [{ 'webhook.leaseUntil': null }, { 'webhook.leaseUntil': { $lt: now } }],
        },
        { $set: { 'webhook.owner': owner, 'webhook.leaseUntil': leaseUntil } },
        { sort: { 'webhook.nextAttemptAt': 1, _id: 1 }, returnDocument: 'after' },
      ),
    );
    return doc ? toJob(doc) : null;
  }

  async recordWebhookAttempt(
    id: string,
    owner: string,
    progress: WebhookProgress,
    now: Date,
  ): Promise<boolean> {
    const result = await this.write(() =>
      this.requests.updateOne(
        { _id: id, 'webhook.owner': owner, 'webhook.status': 'PENDING' },
        {
          $set: {
            updated_at: now,
            'webhook.status': progress.status,
            'webhook.attempts': progress.attempts,
            'webhook.lastError': progress.lastError,
            'webhook.nextAttemptAt': progress.nextAttemptAt,
            'webhook.log': progress.log,
            'webhook.owner': null,
            'webhook.leaseUntil': null,
          },
        },
      ),
    );
    return result.modifiedCount === 1;
  }
}
