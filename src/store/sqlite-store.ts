import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type {
  AcceptedJob,
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
  VisibleJobStatus,
  WebhookProgress,
  WebhookState,
} from './job-store.js';
import { newWebhook, usesByRow } from './job-store.js';
import { claimRoundRobin } from './round-robin.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL DEFAULT 'csv',
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  completed_at INTEGER,
  base_url TEXT NOT NULL DEFAULT '',
  options TEXT NOT NULL DEFAULT '{}',
  columns TEXT NOT NULL DEFAULT '[]',
  webhook TEXT,
  products_total INTEGER NOT NULL DEFAULT 0,
  products_done INTEGER NOT NULL DEFAULT 0,
  images_total INTEGER NOT NULL DEFAULT 0,
  images_processed INTEGER NOT NULL DEFAULT 0,
  images_failed INTEGER NOT NULL DEFAULT 0,
  error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at);
-- Newest-first listing (GET /requests), with and without a status, in index order.
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (created_at, id);
CREATE INDEX IF NOT EXISTS jobs_status_listing ON jobs (status, created_at, id);
-- Finished jobs by completion time, for the retention sweep.
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (status, completed_at);
CREATE INDEX IF NOT EXISTS jobs_webhook_due ON jobs (json_extract(webhook, '$.nextAttemptAt'))
  WHERE json_extract(webhook, '$.nextAttemptAt') IS NOT NULL;

CREATE TABLE IF NOT EXISTS products (
  request_id TEXT NOT NULL,
  row INTEGER NOT NULL,
  serial TEXT NOT NULL,
  name TEXT NOT NULL,
  cells TEXT NOT NULL,
  input_urls TEXT NOT NULL,
  image_seqs TEXT NOT NULL,
  images_pending INTEGER NOT NULL,
  PRIMARY KEY (request_id, row)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS images (
  request_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  url TEXT NOT NULL,
  original_name TEXT,
  output_name TEXT NOT NULL,
  refs TEXT NOT NULL,
  status TEXT NOT NULL,
  owner TEXT,
  lease_until INTEGER,
  output_file TEXT,
  thumbnails TEXT,
  bytes_in INTEGER,
  bytes_out INTEGER,
  metadata TEXT,
  error TEXT,
  processing_ms INTEGER,
  PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_claim ON images (request_id, status, seq);
CREATE INDEX IF NOT EXISTS images_owner ON images (owner, status);

-- One row: totals over every image outcome, moved in the transaction that records it.
CREATE TABLE IF NOT EXISTS image_totals (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  processed INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  processing_ms INTEGER NOT NULL DEFAULT 0,
  bytes_in INTEGER NOT NULL DEFAULT 0,
  bytes_out INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO image_totals (id) VALUES (1);
`;

/** Indexes on columns in ADDED_COLUMNS: made once `init` has added those columns. */
const INDEXES = `
-- Newest-first listing of one kind (GET /images, GET /requests?kind=).
CREATE INDEX IF NOT EXISTS jobs_kind_listing ON jobs (kind, created_at, id);
`;

interface JobRow {
  id: string;
  kind: JobKind;
  status: JobStatus;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
  base_url: string;
  options: string;
  columns: string;
  webhook: string | null;
  products_total: number;
  products_done: number;
  images_total: number;
  images_processed: number;
  images_failed: number;
  error: string | null;
}

interface ProductRow {
  request_id: string;
  row: number;
  serial: string;
  name: string;
  cells: string;
  input_urls: string;
  image_seqs: string;
  images_pending: number;
}

interface ImageRow {
  request_id: string;
  seq: number;
  url: string;
  original_name: string | null;
  output_name: string;
  refs: string;
  status: ImageRecord['status'];
  owner: string | null;
  lease_until: number | null;
  output_file: string | null;
  thumbnails: string | null;
  bytes_in: number | null;
  bytes_out: number | null;
  metadata: string | null;
  error: string | null;
  processing_ms: number | null;
}

/**
 * Columns added since the first release. `CREATE TABLE IF NOT EXISTS` leaves a table made
 * by an earlier version as it was, so `init` adds whichever of these it lacks.
 */
const ADDED_COLUMNS: Array<{ table: string; column: string; type: string }> = [
  { table: 'jobs', column: 'kind', type: "TEXT NOT NULL DEFAULT 'csv'" },
  { table: 'images', column: 'original_name', type: 'TEXT' },
  { table: 'images', column: 'thumbnails', type: 'TEXT' },
  { table: 'images', column: 'metadata', type: 'TEXT' },
  { table: 'images', column: 'processing_ms', type: 'INTEGER' },
];

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

/**
 * A webhook state as stored in `jobs.webhook`: JSON with times in epoch milliseconds, so
 * SQL can compare `nextAttemptAt` and `leaseUntil` with a bound number. The fields added
 * with retries are optional because jobs recorded before them lack them.
 */
interface WebhookJson {
  url: string;
  status: WebhookState['status'];
  attempts: number;
  lastError: string | null;
  nextAttemptAt?: number | null;
  log?: Array<{
    attempt: number;
    at: number;
    httpStatus: number | null;
    error: string | null;
    durationMs: number;
  }>;
  owner?: string | null;
  leaseUntil?: number | null;
  round?: number;
}

function toWebhook(json: string): WebhookState {
  const stored = JSON.parse(json) as WebhookJson;
  return {
    url: stored.url,
    status: stored.status,
    attempts: stored.attempts,
    lastError: stored.lastError,
    nextAttemptAt: date(stored.nextAttemptAt ?? null),
    log: (stored.log ?? []).map((entry) => ({ ...entry, at: new Date(entry.at) })),
    owner: stored.owner ?? null,
    leaseUntil: date(stored.leaseUntil ?? null),
    round: stored.round ?? 1,
  };
}

const logJson = (log: WebhookState['log']): string =>
  JSON.stringify(log.map((entry) => ({ ...entry, at: entry.at.getTime() })));

function toJob(row: JobRow): JobRecord {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    completedAt: date(row.completed_at),
    baseUrl: row.base_url,
    // Jobs recorded before thumbnails existed have none.
    options: { thumbnails: [], ...JSON.parse(row.options) },
    columns: JSON.parse(row.columns),
    webhook: row.webhook === null ? null : toWebhook(row.webhook),
    productsTotal: row.products_total,
    productsDone: row.products_done,
    imagesTotal: row.images_total,
    imagesProcessed: row.images_processed,
    imagesFailed: row.images_failed,
    error: row.error,
  };
}

function toProduct(row: ProductRow): ProductRecord {
  return {
    requestId: row.request_id,
    row: row.row,
    serial: row.serial,
    name: row.name,
    cells: JSON.parse(row.cells),
    inputUrls: JSON.parse(row.input_urls),
    imageSeqs: JSON.parse(row.image_seqs),
    imagesPending: row.images_pending,
  };
}

function toImage(row: ImageRow): ImageRecord {
  return {
    requestId: row.request_id,
    seq: row.seq,
    url: row.url,
    originalName: row.original_name,
    outputName: row.output_name,
    refs: JSON.parse(row.refs),
    status: row.status,
    owner: row.owner,
    leaseUntil: date(row.lease_until),
    outputFile: row.output_file,
    thumbnails: row.thumbnails === null ? {} : JSON.parse(row.thumbnails),
    bytesIn: row.bytes_in,
    bytesOut: row.bytes_out,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
    error: row.error,
    processingMs: row.processing_ms,
  };
}

/**
 * The embedded store: one SQLite file under DATA_DIR. better-sqlite3 is synchronous, so
 * each method runs to completion on the event loop; the work per call is small and
 * bounded (batches are capped by the caller), and a multi-statement method runs in one
 * transaction, which is what makes a crash between its steps harmless here.
 */
export class SqliteJobStore implements JobStore {
  readonly kind = 'embedded' as const;
  private readonly db: Database.Database;
  private claimTurn = 0;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
  }

  /**
   * Each SQL text is prepared once: preparing costs more than running most of these
   * queries (a getJob call took ~48 µs preparing each time, ~18 µs with kept statements).
   */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  async init(): Promise<void> {
    this.db.exec(SCHEMA);
    for (const { table, column, type } of ADDED_COLUMNS) {
      const columns = this.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{
        name: string;
      }>;
      if (!columns.some((c) => c.name === column)) {
        this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
      }
    }
    this.db.exec(INDEXES);
  }

  async ping(): Promise<void> {
    this.sql('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async beginJob(id: string, now: Date, kind: JobKind = 'csv'): Promise<void> {
    this.sql(
      `INSERT INTO jobs (id, kind, status, created_at, updated_at) VALUES (?, ?, 'RECEIVING', ?, ?)`,
    ).run(id, kind, now.getTime(), now.getTime());
  }

  async addProducts(requestId: string, products: ProductRecord[]): Promise<void> {
    const insert = this.sql(
      `INSERT INTO products (request_id, row, serial, name, cells, input_urls, image_seqs, images_pending)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const p of products) {
        insert.run(
          requestId,
          p.row,
          p.serial,
          p.name,
          JSON.stringify(p.cells),
          JSON.stringify(p.inputUrls),
          JSON.stringify(p.imageSeqs),
          p.imagesPending,
        );
      }
      this.touch(requestId);
    })();
  }

  async addImages(requestId: string, images: ImageRecord[]): Promise<void> {
    const insert = this.sql(
      `INSERT INTO images (request_id, seq, url, original_name, output_name, refs, status)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const i of images) {
        insert.run(
          requestId,
          i.seq,
          i.url,
          i.originalName,
          i.outputName,
          JSON.stringify(i.refs),
          i.status,
        );
      }
      this.touch(requestId);
    })();
  }

  async addImageRefs(requestId: string, refs: ImageRefAddition[]): Promise<void> {
    const append = this.sql(
      `UPDATE images SET refs = json_insert(refs, '$[#]', json(?)) WHERE request_id = ? AND seq = ?`,
    );
    this.db.transaction(() => {
      for (const { seq, ref } of refs) append.run(JSON.stringify(ref), requestId, seq);
      this.touch(requestId);
    })();
  }

  /** Keeps a long upload from looking abandoned while its rows are still arriving. */
  private touch(requestId: string): void {
    this.sql('UPDATE jobs SET updated_at = ? WHERE id = ?').run(Date.now(), requestId);
  }

  async acceptJob(id: string, accepted: AcceptedJob, now: Date): Promise<void> {
    const webhook: WebhookJson | null = accepted.webhookUrl
      ? newWebhook(accepted.webhookUrl)
      : null;
    this.sql(
      `UPDATE jobs SET status = 'PENDING', updated_at = ?, base_url = ?, options = ?, columns = ?,
           webhook = ?, products_total = ?, images_total = ?
         WHERE id = ? AND status = 'RECEIVING'`,
    ).run(
      now.getTime(),
      accepted.baseUrl,
      JSON.stringify(accepted.options),
      JSON.stringify(accepted.columns),
      webhook === null ? null : JSON.stringify(webhook),
      accepted.productsTotal,
      accepted.imagesTotal,
      id,
    );
  }

  async deleteJob(id: string): Promise<void> {
    this.db.transaction(() => {
      this.sql('DELETE FROM images WHERE request_id = ?').run(id);
      this.sql('DELETE FROM products WHERE request_id = ?').run(id);
      this.sql('DELETE FROM jobs WHERE id = ?').run(id);
    })();
  }

  async markJobDeleting(id: string, from: readonly JobStatus[], now: Date): Promise<boolean> {
    const result = this.sql(
      `UPDATE jobs SET status = 'DELETING', updated_at = ?
         WHERE id = ? AND status IN (SELECT value FROM json_each(?))`,
    ).run(now.getTime(), id, JSON.stringify(from));
    return result.changes === 1;
  }

  async listDeletingJobs(): Promise<string[]> {
    const rows = this.sql(`SELECT id FROM jobs WHERE status = 'DELETING'`).all() as Array<{
      id: string;
    }>;
    return rows.map((r) => r.id);
  }

  async listExpiredJobs(before: Date, limit: number): Promise<string[]> {
    const rows = this.sql(
      `SELECT id FROM jobs WHERE status IN ('COMPLETED', 'FAILED') AND completed_at < ?
         ORDER BY completed_at, id LIMIT ?`,
    ).all(before.getTime(), limit) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async listAbandonedJobs(before: Date): Promise<string[]> {
    const rows = this.sql(`SELECT id FROM jobs WHERE status = 'RECEIVING' AND updated_at < ?`).all(
      before.getTime(),
    ) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = this.sql('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async listJobs(filter: JobFilter, offset: number, limit: number): Promise<JobPage> {
    const conditions = [
      filter.status === undefined ? `status NOT IN ('RECEIVING', 'DELETING')` : 'status = ?',
    ];
    const match: string[] = filter.status === undefined ? [] : [filter.status];
    if (filter.kind !== undefined) {
      conditions.push('kind = ?');
      match.push(filter.kind);
    }
    const where = conditions.join(' AND ');
    // One read transaction, so the total and the page describe the same moment.
    return this.db.transaction(() => {
      const { total } = this.sql(`SELECT COUNT(*) AS total FROM jobs WHERE ${where}`).get(
        ...match,
      ) as { total: number };
      const rows = this.sql(
        `SELECT * FROM jobs WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
      ).all(...match, limit, offset) as JobRow[];
      return { total, jobs: rows.map(toJob) };
    })();
  }

  async countJobs(): Promise<Record<VisibleJobStatus, number>> {
    const counts = { PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0 };
    // Reads the (status, created_at) index only.
    const rows = this.sql(
      `SELECT status, COUNT(*) AS count FROM jobs WHERE status NOT IN ('RECEIVING', 'DELETING')
       GROUP BY status`,
    ).all() as Array<{ status: VisibleJobStatus; count: number }>;
    for (const row of rows) counts[row.status] = row.count;
    return counts;
  }

  async listProducts(requestId: string, offset: number, limit: number): Promise<ProductRecord[]> {
    const rows = this.sql(
      'SELECT * FROM products WHERE request_id = ? ORDER BY row LIMIT ? OFFSET ?',
    ).all(requestId, limit, offset) as ProductRow[];
    return rows.map(toProduct);
  }

  async listImages(requestId: string): Promise<ImageRecord[]> {
    const rows = this.sql('SELECT * FROM images WHERE request_id = ? ORDER BY seq').all(
      requestId,
    ) as ImageRow[];
    return rows.map(toImage);
  }

  async findImages(requestId: string, seqs: number[]): Promise<ImageRecord[]> {
    const rows = this.sql(
      'SELECT * FROM images WHERE request_id = ? AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq',
    ).all(requestId, JSON.stringify(seqs)) as ImageRow[];
    return rows.map(toImage);
  }

  async listImagesOfJobs(requestIds: string[]): Promise<ImageRecord[]> {
    const rows = this.sql(
      'SELECT * FROM images WHERE request_id IN (SELECT value FROM json_each(?))',
    ).all(JSON.stringify(requestIds)) as ImageRow[];
    return rows.map(toImage);
  }

  async claimImages(
    owner: string,
    now: Date,
    leaseUntil: Date,
    limit: number,
  ): Promise<ImageRecord[]> {
    const active = this.sql(
      `SELECT id FROM jobs WHERE status IN ('PENDING', 'PROCESSING') ORDER BY created_at, id`,
    ).all() as Array<{ id: string }>;
    // Two statements rather than one with OR, so each walks the (request_id, status, seq)
    // index instead of scanning past every finished image of a large job.
    const claim = (condition: string) =>
      this.sql(
        `UPDATE images SET status = 'PROCESSING', owner = ?, lease_until = ?
         WHERE request_id = ? AND seq IN (
           SELECT seq FROM images INDEXED BY images_claim
             WHERE request_id = ? AND ${condition} ORDER BY seq LIMIT ?)
         RETURNING *`,
      );
    const reclaim = claim(`status = 'PROCESSING' AND lease_until < ?`);
    const fresh = claim(`status = 'PENDING'`);
    const until = leaseUntil.getTime();
    // Each statement is one atomic UPDATE ... RETURNING, so no other worker can take the
    // same image in between; leases that ran out go first, being older work.
    return claimRoundRobin(
      active.map((j) => j.id),
      limit,
      this.claimTurn++,
      async (id, want) => {
        const rows = reclaim.all(owner, until, id, id, now.getTime(), want) as ImageRow[];
        if (rows.length < want) {
          rows.push(...(fresh.all(owner, until, id, id, want - rows.length) as ImageRow[]));
        }
        return rows.map(toImage);
      },
    );
  }

  async renewLeases(owner: string, leaseUntil: Date): Promise<void> {
    this.sql(`UPDATE images SET lease_until = ? WHERE owner = ? AND status = 'PROCESSING'`).run(
      leaseUntil.getTime(),
      owner,
    );
  }

  async releaseImages(owner: string): Promise<void> {
    this.sql(
      `UPDATE images SET status = 'PENDING', owner = NULL, lease_until = NULL
         WHERE owner = ? AND status = 'PROCESSING'`,
    ).run(owner);
  }

  async markJobProcessing(id: string, now: Date): Promise<void> {
    this.sql(
      `UPDATE jobs SET status = 'PROCESSING', updated_at = ? WHERE id = ? AND status = 'PENDING'`,
    ).run(now.getTime(), id);
  }

  async finishImage(
    requestId: string,
    seq: number,
    owner: string,
    outcome: ImageOutcome,
    now: Date,
  ): Promise<JobRecord | null> {
    const finish = this.sql(
      `UPDATE images SET status = ?, output_file = ?, thumbnails = ?, bytes_in = ?, bytes_out = ?,
         metadata = ?, error = ?, processing_ms = ?, owner = NULL, lease_until = NULL
       WHERE request_id = ? AND seq = ? AND status = 'PROCESSING' AND owner = ?
       RETURNING refs`,
    );
    const decrement = this.sql(
      `UPDATE products SET images_pending = images_pending - 1
       WHERE request_id = ? AND row = ? RETURNING images_pending`,
    );
    const count = this.sql(
      `UPDATE jobs SET images_processed = images_processed + ?, images_failed = images_failed + ?,
         products_done = products_done + ?, updated_at = ?
       WHERE id = ? RETURNING *`,
    );
    const total = this.sql(
      `UPDATE image_totals SET processed = processed + ?, failed = failed + ?,
         processing_ms = processing_ms + ?, bytes_in = bytes_in + ?, bytes_out = bytes_out + ?`,
    );
    return this.db.transaction(() => {
      const image = finish.get(
        outcome.status,
        outcome.outputFile,
        JSON.stringify(outcome.thumbnails),
        outcome.bytesIn,
        outcome.bytesOut,
        outcome.metadata === null ? null : JSON.stringify(outcome.metadata),
        outcome.error,
        outcome.processingMs,
        requestId,
        seq,
        owner,
      ) as { refs: string } | undefined;
      if (!image) return null;
      let productsDone = 0;
      for (const ref of JSON.parse(image.refs) as Array<{ row: number }>) {
        const product = decrement.get(requestId, ref.row) as { images_pending: number };
        if (product.images_pending === 0) productsDone++;
      }
      const processed = outcome.status === 'PROCESSED' ? 1 : 0;
      const job = count.get(
        processed,
        1 - processed,
        productsDone,
        now.getTime(),
        requestId,
      ) as JobRow;
      total.run(
        processed,
        1 - processed,
        outcome.processingMs,
        processed ? (outcome.bytesIn ?? 0) : 0,
        processed ? (outcome.bytesOut ?? 0) : 0,
      );
      return toJob(job);
    })();
  }

  async getImageTotals(): Promise<ImageTotals> {
    return this.sql(
      `SELECT processed, failed, processing_ms AS processingMs, bytes_in AS bytesIn,
         bytes_out AS bytesOut FROM image_totals`,
    ).get() as ImageTotals;
  }

  async listUnfinishedJobs(): Promise<JobRecord[]> {
    const rows = this.sql(
      `SELECT * FROM jobs WHERE status IN ('PENDING', 'PROCESSING') ORDER BY created_at, id`,
    ).all() as JobRow[];
    return rows.map(toJob);
  }

  async recountJob(id: string, now: Date): Promise<JobRecord | null> {
    return this.db.transaction(() => {
      const final = new Map<number, boolean>();
      let processed = 0;
      let failed = 0;
      const images = this.sql('SELECT seq, status FROM images WHERE request_id = ?').all(
        id,
      ) as Array<{ seq: number; status: string }>;
      for (const image of images) {
        if (image.status === 'PROCESSED') processed++;
        if (image.status === 'FAILED') failed++;
        final.set(image.seq, image.status === 'PROCESSED' || image.status === 'FAILED');
      }
      const products = this.sql(
        'SELECT row, image_seqs, images_pending FROM products WHERE request_id = ?',
      ).all(id) as Array<{ row: number; image_seqs: string; images_pending: number }>;
      const setPending = this.sql(
        'UPDATE products SET images_pending = ? WHERE request_id = ? AND row = ?',
      );
      let productsDone = 0;
      for (const product of products) {
        const seqs = JSON.parse(product.image_seqs) as number[];
        const pending = seqs.filter((s) => !final.get(s)).length;
        if (pending === 0) productsDone++;
        if (pending !== product.images_pending) setPending.run(pending, id, product.row);
      }
      const row = this.sql(
        `UPDATE jobs SET images_processed = ?, images_failed = ?, products_done = ?, updated_at = ?
           WHERE id = ? RETURNING *`,
      ).get(processed, failed, productsDone, now.getTime(), id) as JobRow | undefined;
      return row ? toJob(row) : null;
    })();
  }

  async retryFailedImages(id: string, now: Date): Promise<JobRecord | null> {
    return this.db.transaction(() => {
      const completed = this.sql(`SELECT id FROM jobs WHERE id = ? AND status = 'COMPLETED'`).get(
        id,
      );
      if (!completed) return null;
      const failed = this.sql(
        `SELECT refs FROM images INDEXED BY images_claim
         WHERE request_id = ? AND status = 'FAILED'`,
      ).all(id) as Array<{ refs: string }>;
      if (failed.length === 0) return null;
      const uses = usesByRow(failed.flatMap((image) => JSON.parse(image.refs) as ImageRef[]));
      const reopen = this.sql(
        `UPDATE products SET images_pending = images_pending + ?
         WHERE request_id = ? AND row = ? RETURNING images_pending`,
      );
      let productsReopened = 0;
      for (const [row, count] of uses) {
        const product = reopen.get(count, id, row) as { images_pending: number } | undefined;
        if (product?.images_pending === count) productsReopened++;
      }
      this.sql(
        `UPDATE images INDEXED BY images_claim
         SET status = 'PENDING', owner = NULL, lease_until = NULL, output_file = NULL,
           bytes_in = NULL, bytes_out = NULL, error = NULL, processing_ms = NULL
         WHERE request_id = ? AND status = 'FAILED'`,
      ).run(id);
      // json_set on a NULL webhook is NULL, so a job without one keeps none.
      const row = this.sql(
        `UPDATE jobs SET status = 'PROCESSING', completed_at = NULL, updated_at = ?,
           images_failed = 0, products_done = products_done - ?,
           webhook = json_set(webhook, '$.status', 'PENDING', '$.attempts', 0,
             '$.lastError', NULL, '$.nextAttemptAt', NULL, '$.log', json('[]'),
             '$.owner', NULL, '$.leaseUntil', NULL,
             '$.round', coalesce(json_extract(webhook, '$.round'), 1) + 1)
         WHERE id = ? RETURNING *`,
      ).get(now.getTime(), productsReopened, id) as JobRow;
      return toJob(row);
    })();
  }

  async completeJob(id: string, now: Date): Promise<boolean> {
    // json_set on a NULL webhook is NULL, so a job without one keeps none.
    const result = this.sql(
      `UPDATE jobs SET status = 'COMPLETED', completed_at = ?, updated_at = ?,
           webhook = json_set(webhook, '$.nextAttemptAt', ?)
         WHERE id = ? AND status IN ('PENDING', 'PROCESSING')`,
    ).run(now.getTime(), now.getTime(), now.getTime(), id);
    return result.changes === 1;
  }

  async claimDueWebhook(owner: string, now: Date, leaseUntil: Date): Promise<JobRecord | null> {
    // One statement: SQLite runs it alone, so the pick and the take cannot be split.
    const row = this.sql(
      `UPDATE jobs SET webhook = json_set(webhook, '$.owner', ?, '$.leaseUntil', ?)
         WHERE id = (
           SELECT id FROM jobs
           WHERE json_extract(webhook, '$.nextAttemptAt') <= ?
             AND json_extract(webhook, '$.status') = 'PENDING'
             AND status = 'COMPLETED'
             AND (json_extract(webhook, '$.leaseUntil') IS NULL
               OR json_extract(webhook, '$.leaseUntil') < ?)
           ORDER BY json_extract(webhook, '$.nextAttemptAt'), id
           LIMIT 1)
         RETURNING *`,
    ).get(owner, leaseUntil.getTime(), now.getTime(), now.getTime()) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async recordWebhookAttempt(
    id: string,
    owner: string,
    progress: WebhookProgress,
    now: Date,
  ): Promise<boolean> {
    const result = this.sql(
      `UPDATE jobs SET updated_at = ?,
           webhook = json_set(webhook, '$.status', ?, '$.attempts', ?, '$.lastError', ?,
             '$.nextAttemptAt', ?, '$.log', json(?), '$.owner', NULL, '$.leaseUntil', NULL)
         WHERE id = ? AND json_extract(webhook, '$.owner') = ?
           AND json_extract(webhook, '$.status') = 'PENDING'`,
    ).run(
      now.getTime(),
      progress.status,
      progress.attempts,
      progress.lastError,
      progress.nextAttemptAt?.getTime() ?? null,
      logJson(progress.log),
      id,
      owner,
    );
    return result.changes === 1;
  }
}
