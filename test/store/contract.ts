import type { Test } from 'tap';
import type {
  AcceptedJob,
  ImageOutcome,
  ImageRecord,
  JobKind,
  JobRecord,
  JobStore,
  ProductRecord,
  TransformOptions,
  WebhookAttempt,
  WebhookProgress,
  WebhookState,
} from '../../src/store/job-store.js';

/**
 * The behaviour every `JobStore` must have, whatever it is built on. Run it from a test
 * file per implementation (see sqlite.test.ts); a new store (MongoDB) is done when it
 * passes this suite unchanged.
 */

export interface StoreHandle {
  /** Initialised (`init()` already called) and ready to use. */
  store: JobStore;
  /**
   * Where the data lives, so a second store can be opened on the same data: a file path
   * for SQLite, a database name for MongoDB.
   */
  location: string;
  /**
   * Closes the store and, when this handle created the location, removes its data. Must
   * tolerate a store that the test already closed itself.
   */
  cleanup(): Promise<void>;
}

/**
 * Opens a store on a fresh, empty location, or on `location` when given (data written
 * there by an earlier store must then be visible; the MongoDB run passes the same
 * database name).
 */
export type MakeStore = (location?: string) => Promise<StoreHandle>;

// Every time the store sees comes from here, so leases and ordering are deterministic.
const T0 = new Date('2024-03-01T10:00:00.000Z');
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);

const OPTIONS: TransformOptions = {
  quality: 70,
  format: 'webp',
  maxWidth: 800,
  maxHeight: null,
  thumbnails: [
    { name: 'small', width: 128, height: 128 },
    { name: '300x200', width: 300, height: 200 },
  ],
};
const COLUMNS = ['Serial Number', 'Product Name', 'Input Image Urls', 'Notes'];
// Text that a naive serialisation (CSV-ish joins, unescaped JSON) would mangle.
const AWKWARD = 'note, with "quotes"\nand a line break — ünïcödé';

interface Seeded {
  id: string;
  products: ProductRecord[];
  images: ImageRecord[];
}

/**
 * Products and images for a job whose rows use `rows[i]` as their URLs, shaped the way
 * the job service builds them: a URL repeated anywhere in the job is one image, and each
 * use of it is one ref (so a row using it twice has two refs and counts it twice).
 */
function build(id: string, rows: string[][]): Seeded {
  const images = new Map<string, ImageRecord>();
  const products = rows.map((urls, index): ProductRecord => {
    const row = index + 1;
    const imageSeqs = urls.map((url, position) => {
      let image = images.get(url);
      if (!image) {
        image = {
          requestId: id,
          seq: images.size + 1,
          url,
          originalName: null,
          outputName: `${row}-${position + 1}`,
          refs: [],
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
        images.set(url, image);
      }
      image.refs.push({ row, position: position + 1 });
      return image.seq;
    });
    return {
      requestId: id,
      row,
      serial: `S-${row}`,
      name: `Product ${row}`,
      cells: [`S-${row}`, `Product ${row}`, urls.join(', '), AWKWARD],
      inputUrls: urls,
      imageSeqs,
      imagesPending: urls.length,
    };
  });
  return { id, products, images: [...images.values()] };
}

/** `count` rows of one distinct image each. */
const distinct = (id: string, count: number): string[][] =>
  Array.from({ length: count }, (_, i) => [`https://img.test/${id}/${i + 1}.jpg`]);

function acceptance(seeded: Seeded, webhookUrl: string | null = null): AcceptedJob {
  return {
    options: { ...OPTIONS, thumbnails: OPTIONS.thumbnails.map((spec) => ({ ...spec })) },
    baseUrl: 'http://files.test',
    columns: [...COLUMNS],
    webhookUrl,
    productsTotal: seeded.products.length,
    imagesTotal: seeded.images.length,
  };
}

interface SeedOptions {
  createdAt?: Date;
  /** Given to beginJob; the store's default (a CSV job) when absent. */
  kind?: JobKind;
  /** When false the job stays RECEIVING. */
  accept?: boolean;
  webhookUrl?: string | null;
}

/** Records a job the way the job service does: begin, product batches, images, accept. */
async function seed(
  store: JobStore,
  id: string,
  rows: string[][],
  { createdAt = T0, accept = true, webhookUrl = null, kind }: SeedOptions = {},
): Promise<Seeded> {
  const seeded = build(id, rows);
  await store.beginJob(id, createdAt, kind);
  // Two product batches and two image batches, so nothing relies on a single batch.
  // No empty batches: adding rows counts as activity (see listAbandonedJobs), and a job
  // seeded without rows must stay untouched since its creation.
  const half = Math.ceil(seeded.products.length / 2);
  for (const batch of [seeded.products.slice(0, half), seeded.products.slice(half)]) {
    if (batch.length > 0) await store.addProducts(id, batch);
  }
  const imagesHalf = Math.ceil(seeded.images.length / 2);
  for (const batch of [seeded.images.slice(0, imagesHalf), seeded.images.slice(imagesHalf)]) {
    if (batch.length > 0) await store.addImages(id, batch);
  }
  if (accept) {
    await store.acceptJob(id, acceptance(seeded, webhookUrl), new Date(createdAt.getTime() + 1));
  }
  return seeded;
}

async function mustGetJob(store: JobStore, id: string): Promise<JobRecord> {
  const job = await store.getJob(id);
  if (job === null) throw new Error(`job ${id} is missing`);
  return job;
}

/** The counters of a job, for comparing a job's progress in one assertion. */
function counters(job: JobRecord | null) {
  if (job === null) return null;
  return {
    productsTotal: job.productsTotal,
    productsDone: job.productsDone,
    imagesTotal: job.imagesTotal,
    imagesProcessed: job.imagesProcessed,
    imagesFailed: job.imagesFailed,
  };
}

const seqsOf = (images: ImageRecord[]): number[] => images.map((i) => i.seq).sort((a, b) => a - b);
const keysOf = (images: ImageRecord[]): string[] =>
  images.map((i) => `${i.requestId}#${i.seq}`).sort();

const processed = (seq: number): ImageOutcome => ({
  status: 'PROCESSED',
  outputFile: `out/${seq}.webp`,
  thumbnails: { small: `out/${seq}.small.webp`, '300x200': `out/${seq}.300x200.webp` },
  bytesIn: 1000 + seq,
  bytesOut: 100 + seq,
  metadata: {
    width: 600 + seq,
    height: 800,
    format: 'webp',
    input: { width: 1200, height: 1600 + seq, format: 'jpeg' },
    orientation: 6,
    rotated: true,
  },
  error: null,
  processingMs: 40 + seq,
});
const failed = (error: string): ImageOutcome => ({
  status: 'FAILED',
  outputFile: null,
  thumbnails: {},
  bytesIn: null,
  bytesOut: null,
  metadata: null,
  error,
  processingMs: 7,
});

export function runStoreContract(t: Test, name: string, makeStore: MakeStore): void {
  /** A store on fresh data, cleaned up when the subtest ends. */
  async function open(t: Test): Promise<JobStore> {
    const handle = await makeStore();
    t.teardown(() => handle.cleanup());
    return handle.store;
  }

  t.test(`${name}: JobStore contract`, async (t) => {
    t.test('ping resolves on an open store', async (t) => {
      const store = await open(t);
      await t.resolves(store.ping());
    });

    t.test('init can run again on an initialised store', async (t) => {
      const store = await open(t);
      await seed(store, 'job-a', distinct('job-a', 1));
      await t.resolves(store.init());
      t.equal((await mustGetJob(store, 'job-a')).status, 'PENDING', 'data is kept');
    });

    t.test('beginJob records a RECEIVING job', async (t) => {
      const store = await open(t);
      await store.beginJob('job-a', T0);
      const job = await mustGetJob(store, 'job-a');
      // What a RECEIVING job holds in options, columns and baseUrl is the store's business.
      const { options: _options, columns: _columns, baseUrl: _baseUrl, ...rest } = job;
      t.strictSame(rest, {
        id: 'job-a',
        kind: 'csv',
        status: 'RECEIVING',
        createdAt: T0,
        updatedAt: T0,
        completedAt: null,
        webhook: null,
        productsTotal: 0,
        productsDone: 0,
        imagesTotal: 0,
        imagesProcessed: 0,
        imagesFailed: 0,
        error: null,
      });
      t.equal(await store.getJob('no-such-job'), null, 'an unknown id is null');
      t.strictSame(await store.listUnfinishedJobs(), [], 'a RECEIVING job is not unfinished');
    });

    t.test('acceptJob makes the job PENDING with its options, columns and totals', async (t) => {
      const store = await open(t);
      const withHook = await seed(store, 'job-a', [['https://img.test/1.jpg']], {
        webhookUrl: 'https://hooks.test/done',
      });
      const plain = await seed(store, 'job-b', distinct('job-b', 3), { createdAt: at(5) });

      const a = await mustGetJob(store, 'job-a');
      const { updatedAt, ...rest } = a;
      t.strictSame(rest, {
        id: 'job-a',
        kind: 'csv',
        status: 'PENDING',
        createdAt: T0,
        completedAt: null,
        baseUrl: 'http://files.test',
        options: OPTIONS,
        columns: COLUMNS,
        webhook: {
          url: 'https://hooks.test/done',
          status: 'PENDING',
          attempts: 0,
          lastError: null,
          nextAttemptAt: null,
          log: [],
          owner: null,
          leaseUntil: null,
          round: 1,
        },
        productsTotal: 1,
        productsDone: 0,
        imagesTotal: 1,
        imagesProcessed: 0,
        imagesFailed: 0,
        error: null,
      });
      t.type(updatedAt, Date);

      const b = await mustGetJob(store, 'job-b');
      t.equal(b.status, 'PENDING');
      t.equal(b.webhook, null, 'no webhook URL, no webhook state');
      t.strictSame(counters(b), {
        productsTotal: 3,
        productsDone: 0,
        imagesTotal: 3,
        imagesProcessed: 0,
        imagesFailed: 0,
      });

      t.strictSame(await store.listProducts('job-a', 0, 100), withHook.products);
      t.strictSame(await store.listImages('job-b'), plain.images, 'images are stored PENDING');
    });

    t.test('acceptJob changes nothing on a job that is not RECEIVING', async (t) => {
      const store = await open(t);
      const seeded = await seed(store, 'job-a', distinct('job-a', 2));
      const before = await mustGetJob(store, 'job-a');
      const other: AcceptedJob = {
        options: { quality: 10, format: 'png', maxWidth: null, maxHeight: 5, thumbnails: [] },
        baseUrl: 'http://elsewhere.test',
        columns: ['x'],
        webhookUrl: 'https://hooks.test/late',
        productsTotal: 99,
        imagesTotal: 99,
      };
      await store.acceptJob('job-a', other, at(60));
      t.strictSame(await store.getJob('job-a'), before, 'a PENDING job is untouched');

      await store.completeJob('job-a', at(70));
      const completed = await mustGetJob(store, 'job-a');
      await store.acceptJob('job-a', other, at(80));
      t.strictSame(await store.getJob('job-a'), completed, 'a COMPLETED job is untouched');
      t.equal(completed.status, 'COMPLETED');

      await store.acceptJob('no-such-job', acceptance(seeded), at(90));
      t.equal(await store.getJob('no-such-job'), null, 'accepting an unknown id creates nothing');
    });

    t.test('listAbandonedJobs lists RECEIVING jobs untouched since the cutoff', async (t) => {
      const store = await open(t);
      await seed(store, 'old', [], { accept: false });
      await seed(store, 'recent', [], { createdAt: at(3600), accept: false });
      await seed(store, 'accepted-old', distinct('accepted-old', 1));
      await store.beginJob('busy', T0);
      // Rows arriving count as activity. addProducts takes no time, so the store stamps it
      // with its own clock, which is years after T0.
      await store.addProducts('busy', build('busy', distinct('busy', 1)).products);

      t.strictSame((await store.listAbandonedJobs(at(1800))).sort(), ['old']);
      t.strictSame((await store.listAbandonedJobs(at(7200))).sort(), ['old', 'recent']);
      t.strictSame(await store.listAbandonedJobs(at(-1)), [], 'nothing is older than T0');
    });

    t.test('deleteJob removes the job, its products and its images', async (t) => {
      const store = await open(t);
      await seed(store, 'job-a', distinct('job-a', 3));
      const kept = await seed(store, 'job-b', distinct('job-b', 2), { createdAt: at(1) });
      await store.deleteJob('job-a');

      t.equal(await store.getJob('job-a'), null);
      t.strictSame(await store.listProducts('job-a', 0, 100), []);
      t.strictSame(await store.listImages('job-a'), []);
      t.strictSame(await store.findImages('job-a', [1, 2, 3]), []);
      const claimed = await store.claimImages('w1', at(10), at(40), 10);
      t.strictSame(keysOf(claimed), ['job-b#1', 'job-b#2'], 'deleted images are not claimed');

      t.equal((await mustGetJob(store, 'job-b')).status, 'PENDING', 'other jobs are kept');
      t.strictSame(await store.listProducts('job-b', 0, 100), kept.products);
      await t.resolves(store.deleteJob('no-such-job'), 'deleting an unknown id is harmless');
    });

    t.test('markJobDeleting', async (t) => {
      t.test('moves a job in one of the given statuses only', async (t) => {
        const store = await open(t);
        await seed(store, 'pending', distinct('pending', 1));
        await seed(store, 'completed', distinct('completed', 1), { createdAt: at(1) });
        await seed(store, 'receiving', distinct('receiving', 1), { accept: false });
        await store.completeJob('completed', at(2));

        const finished = ['COMPLETED', 'FAILED'] as const;
        t.equal(await store.markJobDeleting('pending', finished, at(5)), false, 'not PENDING');
        t.equal((await mustGetJob(store, 'pending')).status, 'PENDING', 'left as it was');
        t.equal(await store.markJobDeleting('receiving', finished, at(5)), false);
        t.equal(await store.markJobDeleting('no-such-job', finished, at(5)), false);
        t.equal(await store.markJobDeleting('completed', finished, at(5)), true);
        t.match(await store.getJob('completed'), { status: 'DELETING', updatedAt: at(5) });
        t.equal(await store.markJobDeleting('completed', finished, at(6)), false, 'once');
        t.equal(await store.markJobDeleting('pending', ['PENDING'], at(7)), true);
        t.strictSame((await store.listDeletingJobs()).sort(), ['completed', 'pending']);

        await store.deleteJob('completed');
        t.strictSame(await store.listDeletingJobs(), ['pending'], 'deleted is no longer listed');
      });

      t.test('a DELETING job is out of every listing, claim and completion', async (t) => {
        const store = await open(t);
        await seed(store, 'doomed', distinct('doomed', 3), { webhookUrl: 'https://hooks.test/x' });
        await seed(store, 'hooked', distinct('hooked', 1), {
          createdAt: at(1),
          webhookUrl: 'https://hooks.test/y',
        });
        await seed(store, 'kept', distinct('kept', 1), { createdAt: at(2) });
        const [first] = await store.claimImages('w1', at(3), at(30), 1);
        t.equal(first?.requestId, 'doomed', 'fixture: one image of the job in flight');
        await store.completeJob('hooked', at(4));

        t.ok(await store.markJobDeleting('doomed', ['PENDING', 'PROCESSING'], at(5)));
        t.ok(await store.markJobDeleting('hooked', ['COMPLETED'], at(5)));
        t.strictSame(keysOf(await store.claimImages('w1', at(6), at(36), 10)), ['kept#1']);
        t.strictSame(
          (await store.listJobs({}, 0, 10)).jobs.map((j) => j.id),
          ['kept'],
          'not listed',
        );
        t.strictSame(
          (await store.listUnfinishedJobs()).map((j) => j.id),
          ['kept'],
          'not resumed as unfinished',
        );
        t.equal(await store.completeJob('doomed', at(7)), false, 'cannot complete');
        t.equal(await store.claimDueWebhook('d1', at(8), at(38)), null, 'webhook not sent');
        t.strictSame(
          await store.countJobs(),
          { PENDING: 1, PROCESSING: 0, COMPLETED: 0, FAILED: 0 },
          'not counted',
        );

        // The image already in flight can still be recorded; the answer says DELETING, so
        // the worker knows to drop it.
        const after = await store.finishImage('doomed', 1, 'w1', processed(1), at(9));
        t.equal(after?.status, 'DELETING');
      });
    });

    t.test('listExpiredJobs lists finished jobs completed before the cutoff', async (t) => {
      const store = await open(t);
      await seed(store, 'old', distinct('old', 1));
      await seed(store, 'older', distinct('older', 1), { createdAt: at(1) });
      await seed(store, 'recent', distinct('recent', 1), { createdAt: at(2) });
      await seed(store, 'running', distinct('running', 1), { createdAt: at(3) });
      await seed(store, 'receiving', distinct('receiving', 1), { accept: false });
      await store.completeJob('old', at(20));
      await store.completeJob('older', at(10));
      await store.completeJob('recent', at(100));
      await store.markJobProcessing('running', at(5));

      t.strictSame(await store.listExpiredJobs(at(50), 10), ['older', 'old'], 'earliest first');
      t.strictSame(await store.listExpiredJobs(at(50), 1), ['older'], 'at most the limit');
      t.strictSame(await store.listExpiredJobs(at(20), 10), ['older'], 'strictly before');
      t.strictSame(
        await store.listExpiredJobs(at(1e6), 10),
        ['older', 'old', 'recent'],
        'never one still running or receiving',
      );
      await store.markJobDeleting('old', ['COMPLETED'], at(30));
      t.strictSame(await store.listExpiredJobs(at(50), 10), ['older'], 'nor one being deleted');
    });

    t.test('listProducts orders by row and pages with offset and limit', async (t) => {
      const store = await open(t);
      const seeded = build('job-a', distinct('job-a', 5));
      await store.beginJob('job-a', T0);
      const byRow = (row: number): ProductRecord => {
        const product = seeded.products.find((p) => p.row === row);
        if (!product) throw new Error(`no row ${row}`);
        return product;
      };
      // Batches out of order: the order comes from `row`, not from insertion.
      await store.addProducts('job-a', [byRow(3), byRow(1)]);
      await store.addProducts('job-a', [byRow(5), byRow(2), byRow(4)]);
      await store.addProducts('job-b', build('job-b', distinct('job-b', 2)).products);

      const rows = async (offset: number, limit: number) =>
        (await store.listProducts('job-a', offset, limit)).map((p) => p.row);
      t.strictSame(await store.listProducts('job-a', 0, 100), seeded.products, 'whole records');
      t.strictSame(await rows(0, 2), [1, 2]);
      t.strictSame(await rows(1, 2), [2, 3]);
      t.strictSame(await rows(4, 10), [5]);
      t.strictSame(await rows(5, 10), []);
      t.strictSame(await store.listProducts('no-such-job', 0, 10), []);
    });

    t.test('listImages orders by seq; findImages returns the requested seqs', async (t) => {
      const store = await open(t);
      const seeded = build('job-a', distinct('job-a', 4));
      await store.beginJob('job-a', T0);
      await store.addProducts('job-a', seeded.products);
      const bySeq = (seq: number): ImageRecord => {
        const image = seeded.images.find((i) => i.seq === seq);
        if (!image) throw new Error(`no seq ${seq}`);
        return image;
      };
      await store.addImages('job-a', [bySeq(4), bySeq(2)]);
      await store.addImages('job-a', [bySeq(1), bySeq(3)]);

      t.strictSame(await store.listImages('job-a'), seeded.images, 'in seq order');
      const found = await store.findImages('job-a', [4, 1, 99]);
      t.strictSame(
        [...found].sort((a, b) => a.seq - b.seq),
        [bySeq(1), bySeq(4)],
        'unknown seqs are ignored',
      );
      t.strictSame(await store.findImages('job-a', []), []);
      t.strictSame(await store.findImages('no-such-job', [1]), []);
    });

    t.test('addImageRefs appends later uses to recorded images, in order', async (t) => {
      const store = await open(t);
      const u1 = 'https://img.test/1.jpg';
      const u2 = 'https://img.test/2.jpg';
      // The way a CSV streams in: rows 1–2 and their images first; rows 3–4 only reuse them.
      const seeded = build('job-a', [[u1], [u2, u1], [u2], [u1, u1]]);
      const early = build('job-a', [[u1], [u2, u1]]);
      await store.beginJob('job-a', T0);
      await store.addProducts('job-a', seeded.products.slice(0, 2));
      await store.addImages('job-a', early.images);
      await store.addProducts('job-a', seeded.products.slice(2));
      await store.addImageRefs('job-a', [
        { seq: 2, ref: { row: 3, position: 1 } },
        { seq: 1, ref: { row: 4, position: 1 } },
        { seq: 1, ref: { row: 4, position: 2 } },
      ]);
      await store.addImageRefs('job-a', []);
      t.strictSame(await store.listImages('job-a'), seeded.images, 'as if recorded at once');

      await store.acceptJob('job-a', acceptance(seeded), at(0));
      await store.claimImages('w1', at(0), at(30), 10);
      await store.finishImage('job-a', 1, 'w1', processed(1), at(1));
      const pending = (await store.listProducts('job-a', 0, 100)).map((p) => p.imagesPending);
      t.strictSame(pending, [0, 1, 1, 0], 'every added use of image 1 was counted');
      const job = await store.finishImage('job-a', 2, 'w1', processed(2), at(2));
      t.equal(job?.productsDone, 4);
    });

    t.test('a job keeps its kind; listJobs pages one kind, newest first', async (t) => {
      const store = await open(t);
      await seed(store, 'csv-old', distinct('csv-old', 1), { createdAt: at(0) });
      await seed(store, 'image-1', distinct('image-1', 1), { createdAt: at(1), kind: 'image' });
      await seed(store, 'image-3', distinct('image-3', 1), { createdAt: at(3), kind: 'image' });
      await seed(store, 'csv-new', distinct('csv-new', 1), { createdAt: at(4), kind: 'csv' });
      // Created at the same moment: the id breaks the tie, descending.
      await seed(store, 'image-2a', distinct('image-2a', 1), { createdAt: at(2), kind: 'image' });
      await seed(store, 'image-2b', distinct('image-2b', 1), { createdAt: at(2), kind: 'image' });
      await seed(store, 'image-rx', distinct('image-rx', 1), {
        createdAt: at(5),
        kind: 'image',
        accept: false,
      });

      t.equal((await mustGetJob(store, 'image-1')).kind, 'image');
      t.equal((await mustGetJob(store, 'csv-old')).kind, 'csv', 'csv by default');
      t.equal((await mustGetJob(store, 'image-rx')).kind, 'image', 'from beginJob on');

      const ids = async (kind: JobKind, offset: number, limit: number) => {
        const page = await store.listJobs({ kind }, offset, limit);
        return { total: page.total, ids: page.jobs.map((job) => job.id) };
      };
      t.strictSame(await ids('image', 0, 10), {
        total: 4,
        ids: ['image-3', 'image-2b', 'image-2a', 'image-1'],
      });
      t.strictSame(await ids('image', 1, 2), { total: 4, ids: ['image-2b', 'image-2a'] });
      t.strictSame(await ids('image', 4, 2), { total: 4, ids: [] });
      t.strictSame(await ids('csv', 0, 10), { total: 2, ids: ['csv-new', 'csv-old'] });
      const [first] = (await store.listJobs({ kind: 'image' }, 0, 1)).jobs;
      t.strictSame(first, await store.getJob('image-3'), 'whole job records');
      await store.markJobProcessing('image-3', at(10));
      const pendingImages = await store.listJobs({ status: 'PENDING', kind: 'image' }, 0, 10);
      t.strictSame(
        { total: pendingImages.total, ids: pendingImages.jobs.map((job) => job.id) },
        { total: 3, ids: ['image-2b', 'image-2a', 'image-1'] },
        'status and kind together',
      );
    });

    t.test('listImagesOfJobs returns every image of the jobs asked for', async (t) => {
      const store = await open(t);
      const a = await seed(store, 'job-a', distinct('job-a', 2));
      const b = await seed(store, 'job-b', distinct('job-b', 1), { createdAt: at(1) });
      await seed(store, 'job-c', distinct('job-c', 1), { createdAt: at(2) });
      const found = await store.listImagesOfJobs(['job-b', 'job-a', 'no-such-job']);
      t.strictSame(
        [...found].sort((x, y) => x.requestId.localeCompare(y.requestId) || x.seq - y.seq),
        [...a.images, ...b.images],
      );
      t.strictSame(await store.listImagesOfJobs([]), []);
    });

    t.test('an image keeps the original name of a direct upload', async (t) => {
      const store = await open(t);
      const image: ImageRecord = {
        requestId: 'job-a',
        seq: 1,
        url: 'upload:job-a',
        originalName: AWKWARD,
        outputName: 'image',
        refs: [],
        status: 'PENDING',
        owner: null,
        leaseUntil: null,
        outputFile: null,
        thumbnails: {},
        bytesIn: null,
        bytesOut: null,
        metadata: null,
        processingMs: null,
        error: null,
      };
      await store.beginJob('job-a', T0, 'image');
      await store.addImages('job-a', [image]);
      t.strictSame(await store.listImages('job-a'), [image]);
      t.strictSame(await store.findImages('job-a', [1]), [image]);
    });

    t.test('claimImages', async (t) => {
      t.test('takes nothing from RECEIVING or COMPLETED jobs', async (t) => {
        const store = await open(t);
        await seed(store, 'receiving', distinct('receiving', 2), { accept: false });
        await seed(store, 'completed', distinct('completed', 2));
        t.equal(await store.completeJob('completed', at(1)), true);
        t.strictSame(await store.claimImages('w1', at(10), at(40), 10), []);

        await seed(store, 'pending', distinct('pending', 1), { createdAt: at(2) });
        await seed(store, 'processing', distinct('processing', 1), { createdAt: at(3) });
        await store.markJobProcessing('processing', at(4));
        const claimed = await store.claimImages('w1', at(10), at(40), 10);
        t.strictSame(keysOf(claimed), ['pending#1', 'processing#1']);
      });

      t.test('marks what it returns PROCESSING for the owner until the lease', async (t) => {
        const store = await open(t);
        const seeded = await seed(store, 'job-a', distinct('job-a', 2));
        const claimed = await store.claimImages('w1', at(10), at(40), 10);
        const expected = seeded.images.map((i) => ({
          ...i,
          status: 'PROCESSING' as const,
          owner: 'w1',
          leaseUntil: at(40),
        }));
        t.strictSame(
          [...claimed].sort((a, b) => a.seq - b.seq),
          expected,
          'returned as claimed',
        );
        t.strictSame(await store.listImages('job-a'), expected, 'stored as claimed');
      });

      t.test('serves the oldest job first', async (t) => {
        const store = await open(t);
        // Begun first but created later: age, not insertion order, decides.
        await seed(store, 'newer', distinct('newer', 3), { createdAt: at(60) });
        await seed(store, 'older', distinct('older', 3), { createdAt: at(0) });
        const first = await store.claimImages('w1', at(100), at(130), 1);
        t.strictSame(
          first.map((i) => i.requestId),
          ['older'],
        );
      });

      t.test('respects the limit and hands out each image once', async (t) => {
        const store = await open(t);
        await seed(store, 'job-a', distinct('job-a', 10));
        const sizes: number[] = [];
        const seen: string[] = [];
        for (let i = 0; i < 5; i++) {
          const claimed = await store.claimImages(`w${i}`, at(10), at(40), 3);
          sizes.push(claimed.length);
          seen.push(...keysOf(claimed));
        }
        t.strictSame(sizes, [3, 3, 3, 1, 0]);
        t.equal(new Set(seen).size, 10, 'no image twice');
        t.strictSame(
          seqsOf(await store.listImages('job-a')),
          Array.from({ length: 10 }, (_, i) => i + 1),
        );
      });

      t.test('never hands one image to two concurrent owners', async (t) => {
        const store = await open(t);
        await seed(store, 'job-a', distinct('job-a', 10));
        await seed(store, 'job-b', distinct('job-b', 10), { createdAt: at(1) });
        const [one, two] = await Promise.all([
          store.claimImages('w1', at(10), at(40), 12),
          store.claimImages('w2', at(10), at(40), 12),
        ]);
        const a = keysOf(one);
        const b = keysOf(two);
        t.equal(a.length + b.length, 20, 'all twenty images are claimed');
        t.strictSame(
          a.filter((key) => b.includes(key)),
          [],
          'the two claims are disjoint',
        );
        const owners = new Map((await store.listImages('job-a')).map((i) => [i.seq, i.owner]));
        for (const image of one.filter((i) => i.requestId === 'job-a')) {
          t.equal(owners.get(image.seq), 'w1', `job-a#${image.seq} is stored as w1's`);
        }
      });

      t.test('re-claims a PROCESSING image only after its lease expired', async (t) => {
        const store = await open(t);
        await seed(store, 'job-a', distinct('job-a', 2));
        t.equal((await store.claimImages('w1', at(10), at(40), 10)).length, 2);
        t.strictSame(await store.claimImages('w2', at(20), at(50), 10), [], 'lease still held');
        t.strictSame(await store.claimImages('w1', at(39), at(69), 10), [], 'even by its owner');

        const retaken = await store.claimImages('w2', at(41), at(71), 10);
        t.strictSame(seqsOf(retaken), [1, 2], 'taken over once the lease expired');
        t.strictSame(
          (await store.listImages('job-a')).map((i) => [i.owner, i.leaseUntil]),
          [
            ['w2', at(71)],
            ['w2', at(71)],
          ],
        );
        t.equal(
          await store.finishImage('job-a', 1, 'w1', processed(1), at(42)),
          null,
          'the previous owner has lost it',
        );
      });

      t.test('shares the limit between active jobs', async (t) => {
        const store = await open(t);
        await seed(store, 'job-a', distinct('job-a', 10));
        await seed(store, 'job-b', distinct('job-b', 10), { createdAt: at(1) });
        const claimed = await store.claimImages('w1', at(10), at(40), 4);
        t.equal(claimed.length, 4);
        const jobs = new Set(claimed.map((i) => i.requestId));
        t.strictSame([...jobs].sort(), ['job-a', 'job-b'], 'a job behind another still moves');
      });

      t.test('fills the limit from other jobs when one runs dry', async (t) => {
        const store = await open(t);
        await seed(store, 'job-a', distinct('job-a', 1));
        await seed(store, 'job-b', distinct('job-b', 10), { createdAt: at(1) });
        const claimed = await store.claimImages('w1', at(10), at(40), 4);
        t.strictSame(keysOf(claimed), ['job-a#1', 'job-b#1', 'job-b#2', 'job-b#3']);
      });
    });

    t.test('renewLeases extends only the owner’s leases', async (t) => {
      const store = await open(t);
      await seed(store, 'job-a', distinct('job-a', 5));
      const mine = await store.claimImages('w1', at(0), at(30), 2);
      const theirs = await store.claimImages('w2', at(0), at(30), 2);
      t.equal(mine.length, 2);
      t.equal(theirs.length, 2);
      // One of w1's images finishes: it has no lease left to renew.
      const finishedSeq = mine[0]?.seq ?? -1;
      t.not(
        await store.finishImage('job-a', finishedSeq, 'w1', processed(finishedSeq), at(5)),
        null,
      );

      await store.renewLeases('w1', at(90));
      // At 60s w2's leases (30s) have expired and w1's renewed ones (90s) have not.
      const taken = await store.claimImages('w3', at(60), at(120), 10);
      const all = keysOf(await store.listImages('job-a'));
      t.strictSame(
        keysOf(taken),
        all.filter((key) => !keysOf(mine).includes(key)),
        'w2’s expired images and the pending one are taken, not w1’s',
      );
      t.equal(taken.length, 3);

      const images = new Map((await store.listImages('job-a')).map((i) => [i.seq, i]));
      const kept = mine[1]?.seq ?? -1;
      t.equal(images.get(kept)?.owner, 'w1', 'the renewed image is still w1’s');
      t.strictSame(images.get(kept)?.leaseUntil, at(90), 'until the new lease');
      const finished = images.get(finishedSeq);
      t.strictSame(
        [finished?.status, finished?.owner, finished?.leaseUntil],
        ['PROCESSED', null, null],
        'a finished image gets no lease',
      );
      t.strictSame(await store.claimImages('w4', at(89), at(150), 10), [], 'held until 90s');
      t.strictSame(
        keysOf(await store.claimImages('w4', at(121), at(150), 10)),
        all.filter((key) => key !== `job-a#${finishedSeq}`),
        'all leases expired: every unfinished image is claimable again',
      );
    });

    t.test('markJobProcessing moves PENDING to PROCESSING only', async (t) => {
      const store = await open(t);
      await seed(store, 'pending', distinct('pending', 1));
      await seed(store, 'receiving', distinct('receiving', 1), { accept: false });
      await seed(store, 'completed', distinct('completed', 1));
      await store.completeJob('completed', at(5));

      await store.markJobProcessing('pending', at(10));
      await store.markJobProcessing('receiving', at(10));
      await store.markJobProcessing('completed', at(10));
      await store.markJobProcessing('no-such-job', at(10));

      const processing = await mustGetJob(store, 'pending');
      t.equal(processing.status, 'PROCESSING');
      t.strictSame(processing.updatedAt, at(10));
      t.equal((await mustGetJob(store, 'receiving')).status, 'RECEIVING');
      t.equal((await mustGetJob(store, 'completed')).status, 'COMPLETED');
      t.equal(await store.getJob('no-such-job'), null);

      await store.markJobProcessing('pending', at(20));
      t.strictSame(await store.getJob('pending'), processing, 'a second call changes nothing');
    });

    t.test('finishImage', async (t) => {
      t.test('returns null and changes nothing without the lease', async (t) => {
        const store = await open(t);
        await seed(store, 'job-a', distinct('job-a', 3));
        const [first] = await store.claimImages('w1', at(0), at(30), 1);
        t.equal(first?.seq, 1);
        const before = await mustGetJob(store, 'job-a');
        const imagesBefore = await store.listImages('job-a');
        const productsBefore = await store.listProducts('job-a', 0, 100);

        t.equal(await store.finishImage('job-a', 1, 'w2', processed(1), at(5)), null, 'owner');
        t.equal(await store.finishImage('job-a', 2, 'w1', processed(2), at(5)), null, 'PENDING');
        t.equal(await store.finishImage('job-a', 99, 'w1', processed(9), at(5)), null, 'unknown');
        t.equal(await store.finishImage('job-b', 1, 'w1', processed(1), at(5)), null, 'job');
        t.strictSame(await store.getJob('job-a'), before, 'job unchanged');
        t.strictSame(await store.listImages('job-a'), imagesBefore, 'images unchanged');
        t.strictSame(await store.listProducts('job-a', 0, 100), productsBefore, 'products too');

        const job = await store.finishImage('job-a', 1, 'w1', processed(1), at(6));
        t.equal(job?.imagesProcessed, 1);
        t.equal(
          await store.finishImage('job-a', 1, 'w1', processed(1), at(7)),
          null,
          'an image is finished once',
        );
        t.strictSame(counters(await store.getJob('job-a')), counters(job), 'counted once');
      });

      t.test('records the outcome, clears the lease and counts it', async (t) => {
        const store = await open(t);
        const seeded = await seed(store, 'job-a', distinct('job-a', 2));
        await store.claimImages('w1', at(0), at(30), 2);

        const afterOk = await store.finishImage('job-a', 1, 'w1', processed(1), at(5));
        t.match(afterOk, { id: 'job-a', imagesProcessed: 1, imagesFailed: 0, productsDone: 1 });
        const afterFail = await store.finishImage('job-a', 2, 'w1', failed('HTTP 404'), at(6));
        t.strictSame(counters(afterFail), {
          productsTotal: 2,
          productsDone: 2,
          imagesTotal: 2,
          imagesProcessed: 1,
          imagesFailed: 1,
        });
        t.strictSame(counters(await store.getJob('job-a')), counters(afterFail), 'as stored');

        const [one, two] = seeded.images;
        t.strictSame(await store.listImages('job-a'), [
          { ...one, ...processed(1), owner: null, leaseUntil: null },
          { ...two, ...failed('HTTP 404'), owner: null, leaseUntil: null },
        ]);
        t.strictSame(
          (await store.listProducts('job-a', 0, 100)).map((p) => p.imagesPending),
          [0, 0],
        );
      });

      t.test('finishes products when their last image lands, shared images included', async (t) => {
        const store = await open(t);
        const u1 = 'https://img.test/1.jpg';
        const u2 = 'https://img.test/2.jpg';
        const u3 = 'https://img.test/3.jpg';
        // Row 1 uses images 1 and 2; row 2 shares image 2; row 3 uses image 3 twice.
        const seeded = await seed(store, 'job-a', [[u1, u2], [u2], [u3, u3]]);
        t.strictSame(
          seeded.images.map((i) => [i.seq, i.refs.length]),
          [
            [1, 1],
            [2, 2],
            [3, 2],
          ],
          'fixture: shared and repeated images have one ref per use',
        );
        await store.claimImages('w1', at(0), at(30), 10);
        const pending = async () =>
          (await store.listProducts('job-a', 0, 100)).map((p) => p.imagesPending);

        const three = await store.finishImage('job-a', 3, 'w1', processed(3), at(1));
        t.equal(three?.productsDone, 1, 'the row using image 3 twice is done');
        t.strictSame(await pending(), [2, 1, 0]);

        const two = await store.finishImage('job-a', 2, 'w1', processed(2), at(2));
        t.equal(two?.productsDone, 2, 'image 2 finishes row 2 but not row 1');
        t.strictSame(await pending(), [1, 0, 0]);

        const one = await store.finishImage('job-a', 1, 'w1', failed('timeout'), at(3));
        t.strictSame(counters(one), {
          productsTotal: 3,
          productsDone: 3,
          imagesTotal: 3,
          imagesProcessed: 2,
          imagesFailed: 1,
        });
        t.strictSame(await pending(), [0, 0, 0]);
        t.strictSame(one?.updatedAt, at(3), 'updatedAt is the finishing time');
      });
    });

    t.test('recountJob recomputes the counters from the images', async (t) => {
      const store = await open(t);
      const u = (n: number) => `https://img.test/${n}.jpg`;
      await seed(store, 'job-a', [[u(1), u(2)], [u(2)], [u(3), u(3)], [u(4)]]);

      const fresh = await store.recountJob('job-a', at(1));
      t.strictSame(counters(fresh), {
        productsTotal: 4,
        productsDone: 0,
        imagesTotal: 4,
        imagesProcessed: 0,
        imagesFailed: 0,
      });

      await store.claimImages('w1', at(2), at(32), 10);
      await store.finishImage('job-a', 2, 'w1', processed(2), at(3));
      await store.finishImage('job-a', 3, 'w1', failed('HTTP 500'), at(4));
      const counted = await mustGetJob(store, 'job-a');
      const pendingBefore = (await store.listProducts('job-a', 0, 100)).map((p) => p.imagesPending);
      t.strictSame(pendingBefore, [1, 0, 0, 1], 'fixture: what finishImage left');

      // Images 1 and 4 are still PROCESSING: claimed is not finished.
      const recounted = await store.recountJob('job-a', at(5));
      t.strictSame(counters(recounted), counters(counted), 'the same counters as finishImage');
      t.strictSame(counters(recounted), {
        productsTotal: 4,
        productsDone: 2,
        imagesTotal: 4,
        imagesProcessed: 1,
        imagesFailed: 1,
      });
      t.strictSame(
        (await store.listProducts('job-a', 0, 100)).map((p) => p.imagesPending),
        pendingBefore,
        'the same pending counts per product',
      );
      t.strictSame(counters(await store.getJob('job-a')), counters(recounted), 'as stored');
      t.equal(await store.recountJob('no-such-job', at(6)), null);
    });

    t.test('completeJob succeeds exactly once', async (t) => {
      const store = await open(t);
      await seed(store, 'plain', distinct('plain', 1));
      await seed(store, 'hooked', distinct('hooked', 1), {
        createdAt: at(1),
        webhookUrl: 'https://hooks.test/done',
      });
      for (const id of ['plain', 'hooked']) {
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) => store.completeJob(id, at(10 + i))),
        );
        t.equal(results.filter((r) => r).length, 1, `${id}: one caller wins`);
        t.equal(results.filter((r) => !r).length, 4);
        const winner = results.indexOf(true);

        const job = await mustGetJob(store, id);
        t.equal(job.status, 'COMPLETED');
        t.strictSame(job.completedAt, at(10 + winner), `${id}: completedAt is the winner’s time`);
        t.equal(await store.completeJob(id, at(20)), false, `${id}: and never again`);
        t.strictSame((await mustGetJob(store, id)).completedAt, at(10 + winner));
      }
    });

    t.test('retryFailedImages', async (t) => {
      const u = (n: number) => `https://img.test/${n}.jpg`;
      /**
       * A completed job whose rows use [1, 2], [2], [3] and [4]: images 2 and 4 failed, so
       * rows 1, 2 and 4 have a failure and row 3 has none.
       */
      async function completedWithFailures(
        store: JobStore,
        id: string,
        webhookUrl: string | null,
      ): Promise<void> {
        await seed(store, id, [[u(1), u(2)], [u(2)], [u(3)], [u(4)]], { webhookUrl });
        await store.claimImages('w1', at(1), at(31), 10);
        await store.finishImage(id, 1, 'w1', processed(1), at(2));
        await store.finishImage(id, 2, 'w1', failed('HTTP 503'), at(2));
        await store.finishImage(id, 3, 'w1', processed(3), at(2));
        await store.finishImage(id, 4, 'w1', failed('timeout'), at(2));
        if (!(await store.completeJob(id, at(3)))) throw new Error('fixture: not completed');
      }

      t.test('only re-opens a COMPLETED job that has FAILED images', async (t) => {
        const store = await open(t);
        await seed(store, 'pending', distinct('pending', 1));
        await seed(store, 'receiving', distinct('receiving', 1), { accept: false });
        await seed(store, 'all-good', distinct('all-good', 1));
        await store.claimImages('w1', at(1), at(31), 10);
        await store.finishImage('all-good', 1, 'w1', processed(1), at(2));
        await store.completeJob('all-good', at(3));
        await completedWithFailures(store, 'deleting', null);
        await store.markJobDeleting('deleting', ['COMPLETED'], at(4));
        const before = await Promise.all(
          ['pending', 'receiving', 'all-good', 'deleting'].map((id) => store.getJob(id)),
        );

        for (const id of ['pending', 'receiving', 'all-good', 'deleting', 'no-such-job']) {
          t.equal(await store.retryFailedImages(id, at(10)), null, `${id}: null`);
        }
        t.strictSame(
          await Promise.all(
            ['pending', 'receiving', 'all-good', 'deleting'].map((id) => store.getJob(id)),
          ),
          before,
          'nothing changed',
        );
      });

      t.test('re-opens the failed images, their products and the job', async (t) => {
        const store = await open(t);
        const hook = 'https://hooks.test/done';
        await completedWithFailures(store, 'job-a', hook);
        const delivered = await store.claimDueWebhook('d1', at(3), at(33));
        t.ok(delivered, 'fixture: the first round is announced');
        await store.recordWebhookAttempt(
          'job-a',
          'd1',
          {
            status: 'DELIVERED',
            attempts: 1,
            lastError: null,
            nextAttemptAt: null,
            log: [{ attempt: 1, at: at(4), httpStatus: 200, error: null, durationMs: 5 }],
          },
          at(4),
        );
        const imagesBefore = await store.listImages('job-a');

        const reopened = await store.retryFailedImages('job-a', at(10));
        t.strictSame(reopened, await store.getJob('job-a'), 'returns the job as stored');
        t.match(reopened, {
          status: 'PROCESSING',
          completedAt: null,
          updatedAt: at(10),
        });
        t.strictSame(counters(reopened), {
          productsTotal: 4,
          productsDone: 1,
          imagesTotal: 4,
          imagesProcessed: 2,
          imagesFailed: 0,
        });
        t.strictSame(
          reopened?.webhook,
          {
            url: hook,
            status: 'PENDING',
            attempts: 0,
            lastError: null,
            nextAttemptAt: null,
            log: [],
            owner: null,
            leaseUntil: null,
            round: 2,
          },
          'a new delivery, not due yet',
        );
        t.equal(await store.claimDueWebhook('d1', at(11), at(41)), null, 'nothing to send yet');

        const cleared = (seq: number) => ({
          ...imagesBefore[seq - 1],
          status: 'PENDING',
          owner: null,
          leaseUntil: null,
          outputFile: null,
          bytesIn: null,
          bytesOut: null,
          error: null,
          processingMs: null,
        });
        t.strictSame(await store.listImages('job-a'), [
          imagesBefore[0],
          cleared(2),
          imagesBefore[2],
          cleared(4),
        ]);
        t.strictSame(
          (await store.listProducts('job-a', 0, 10)).map((p) => p.imagesPending),
          [1, 1, 0, 1],
        );
        t.equal(await store.retryFailedImages('job-a', at(12)), null, 'once');

        t.strictSame(keysOf(await store.claimImages('w2', at(13), at(43), 10)), [
          'job-a#2',
          'job-a#4',
        ]);
        await store.finishImage('job-a', 2, 'w2', processed(2), at(14));
        const last = await store.finishImage('job-a', 4, 'w2', processed(4), at(15));
        t.strictSame(counters(last), {
          productsTotal: 4,
          productsDone: 4,
          imagesTotal: 4,
          imagesProcessed: 4,
          imagesFailed: 0,
        });
        t.equal(await store.completeJob('job-a', at(16)), true, 'completes again');
        const announced = await store.claimDueWebhook('d1', at(16), at(46));
        t.match(announced?.webhook, { status: 'PENDING', attempts: 0, round: 2 });
        t.match(await store.getImageTotals(), { processed: 4, failed: 2 }, 'six outcomes');
      });

      t.test('one caller wins; a job without a webhook keeps none', async (t) => {
        const store = await open(t);
        await completedWithFailures(store, 'job-a', null);
        const results = await Promise.all(
          Array.from({ length: 4 }, (_, i) => store.retryFailedImages('job-a', at(10 + i))),
        );
        t.equal(results.filter((r) => r !== null).length, 1, 'one caller re-opens it');
        t.match(
          results.find((r) => r !== null),
          { status: 'PROCESSING', webhook: null },
        );
        t.strictSame(
          (await store.listProducts('job-a', 0, 10)).map((p) => p.imagesPending),
          [1, 1, 0, 1],
          're-opened once',
        );
      });
    });

    t.test('webhooks', async (t) => {
      const hook = 'https://hooks.test/done';
      /** A job with a webhook, completed (and so due) at `dueAt` unless null. */
      async function hooked(store: JobStore, id: string, dueAt: Date | null): Promise<void> {
        await seed(store, id, distinct(id, 1), { webhookUrl: hook });
        if (dueAt !== null && !(await store.completeJob(id, dueAt))) {
          throw new Error(`fixture: ${id} did not complete`);
        }
      }
      const attempt = (n: number, seconds: number, httpStatus: number | null): WebhookAttempt => ({
        attempt: n,
        at: at(seconds),
        httpStatus,
        error: httpStatus === 200 ? null : `HTTP ${httpStatus}`,
        durationMs: 12 + n,
      });

      t.test('completeJob makes the webhook due, and only a webhook', async (t) => {
        const store = await open(t);
        await hooked(store, 'running', null);
        t.equal(await store.claimDueWebhook('d1', at(1000), at(1030)), null, 'not before');
        t.equal((await mustGetJob(store, 'running')).webhook?.nextAttemptAt, null);

        await hooked(store, 'done', at(10));
        await seed(store, 'plain', distinct('plain', 1));
        t.equal(await store.completeJob('plain', at(10)), true);
        t.strictSame((await mustGetJob(store, 'done')).webhook, {
          url: hook,
          status: 'PENDING',
          attempts: 0,
          lastError: null,
          nextAttemptAt: at(10),
          log: [],
          owner: null,
          leaseUntil: null,
          round: 1,
        });
        t.equal((await mustGetJob(store, 'plain')).webhook, null, 'no webhook, none made');
      });

      t.test('claimDueWebhook', async (t) => {
        t.test('does not take a webhook before it is due', async (t) => {
          const store = await open(t);
          await hooked(store, 'job-a', at(10));
          t.equal(await store.claimDueWebhook('d1', at(9), at(39)), null);
          t.equal((await mustGetJob(store, 'job-a')).webhook?.owner, null, 'nothing changed');
          t.equal((await store.claimDueWebhook('d1', at(10), at(40)))?.id, 'job-a', 'due at 10s');
        });

        t.test('takes it for its owner until the lease ends, then anyone may', async (t) => {
          const store = await open(t);
          await hooked(store, 'job-a', at(10));
          const claimed = await store.claimDueWebhook('d1', at(12), at(42));
          const stored = await mustGetJob(store, 'job-a');
          t.strictSame(claimed, stored, 'the whole job, as updated');
          t.match(stored.webhook, { status: 'PENDING', owner: 'd1', leaseUntil: at(42) });
          t.strictSame(stored.webhook?.leaseUntil, at(42));

          t.equal(await store.claimDueWebhook('d1', at(20), at(50)), null, 'not even by d1');
          t.equal(await store.claimDueWebhook('d2', at(42), at(72)), null, 'held until 42s');
          const taken = await store.claimDueWebhook('d2', at(43), at(73));
          t.equal(taken?.id, 'job-a', 'an expired lease is claimable again');
          t.match((await mustGetJob(store, 'job-a')).webhook, { owner: 'd2' });
          t.strictSame((await mustGetJob(store, 'job-a')).webhook?.leaseUntil, at(73));
        });

        t.test('is exclusive when called concurrently', async (t) => {
          const store = await open(t);
          for (const id of ['job-a', 'job-b', 'job-c']) await hooked(store, id, at(10));
          const claims = await Promise.all(
            Array.from({ length: 8 }, (_, i) => store.claimDueWebhook(`d${i}`, at(20), at(50))),
          );
          const won = claims.filter((c): c is JobRecord => c !== null);
          t.strictSame(won.map((j) => j.id).sort(), ['job-a', 'job-b', 'job-c'], 'each once');
          t.equal(claims.filter((c) => c === null).length, 5);
          for (const job of won) {
            const owner = job.webhook?.owner;
            t.equal((await mustGetJob(store, job.id)).webhook?.owner, owner, `${job.id} kept`);
          }
          t.equal(await store.claimDueWebhook('late', at(21), at(51)), null, 'nothing left');
        });

        t.test('takes the most overdue first', async (t) => {
          const store = await open(t);
          await hooked(store, 'later', at(20));
          await hooked(store, 'sooner', at(5));
          const first = await store.claimDueWebhook('d1', at(30), at(60));
          const second = await store.claimDueWebhook('d1', at(30), at(60));
          t.strictSame([first?.id, second?.id], ['sooner', 'later']);
        });
      });

      t.test('recordWebhookAttempt', async (t) => {
        t.test('records under the claim only, and clears the lease', async (t) => {
          const store = await open(t);
          await hooked(store, 'job-a', at(10));
          const unclaimed: WebhookProgress = {
            status: 'DELIVERED',
            attempts: 1,
            lastError: null,
            nextAttemptAt: null,
            log: [attempt(1, 10, 200)],
          };
          t.equal(await store.recordWebhookAttempt('job-a', 'd1', unclaimed, at(11)), false);
          t.not(await store.claimDueWebhook('d1', at(10), at(40)), null);
          const before = await mustGetJob(store, 'job-a');
          t.equal(await store.recordWebhookAttempt('job-a', 'd2', unclaimed, at(11)), false);
          t.equal(await store.recordWebhookAttempt('other', 'd1', unclaimed, at(11)), false);
          t.strictSame(await store.getJob('job-a'), before, 'a stranger changes nothing');

          const retry: WebhookProgress = {
            status: 'PENDING',
            attempts: 1,
            lastError: 'HTTP 500',
            nextAttemptAt: at(70),
            log: [attempt(1, 10, 500)],
          };
          t.equal(await store.recordWebhookAttempt('job-a', 'd1', retry, at(11)), true);
          const job = await mustGetJob(store, 'job-a');
          t.strictSame(job.webhook, {
            url: hook,
            ...retry,
            owner: null,
            leaseUntil: null,
            round: 1,
          });
          t.strictSame(job.updatedAt, at(11));
          t.equal(
            await store.recordWebhookAttempt('job-a', 'd1', retry, at(12)),
            false,
            'the claim is spent',
          );

          t.equal(await store.claimDueWebhook('d1', at(69), at(99)), null, 'due again at 70s');
          t.not(await store.claimDueWebhook('d2', at(70), at(100)), null, 'lease or not');
        });

        t.test('a DELIVERED or FAILED webhook is settled for good', async (t) => {
          const store = await open(t);
          await hooked(store, 'delivered', at(10));
          await hooked(store, 'failed', at(10));
          const outcomes: Record<string, WebhookProgress> = {
            delivered: {
              status: 'DELIVERED',
              attempts: 2,
              lastError: null,
              nextAttemptAt: null,
              log: [attempt(1, 10, 503), attempt(2, 12, 200)],
            },
            failed: {
              status: 'FAILED',
              attempts: 2,
              lastError: 'HTTP 503',
              nextAttemptAt: null,
              log: [attempt(1, 10, 503), attempt(2, 12, 503)],
            },
          };
          for (let i = 0; i < 2; i++) {
            const job = await store.claimDueWebhook('d1', at(12), at(42));
            if (job === null) throw new Error('expected a due webhook');
            const outcome = outcomes[job.id];
            if (outcome === undefined) throw new Error(`unexpected job ${job.id}`);
            t.equal(await store.recordWebhookAttempt(job.id, 'd1', outcome, at(13)), true);
          }
          for (const [id, outcome] of Object.entries(outcomes)) {
            const expected: WebhookState = {
              url: hook,
              ...outcome,
              owner: null,
              leaseUntil: null,
              round: 1,
            };
            t.strictSame((await mustGetJob(store, id)).webhook, expected, `${id} as recorded`);
          }
          t.equal(await store.claimDueWebhook('d1', at(1e6), at(1e6 + 30)), null, 'never due');
        });
      });
    });

    t.test('listJobs', async (t) => {
      /** Jobs created in the order given, one second apart; two share the last second. */
      async function seedListing(store: JobStore): Promise<void> {
        await seed(store, 'a-oldest', distinct('a-oldest', 1), { createdAt: at(0) });
        await seed(store, 'b', distinct('b', 2), { createdAt: at(1) });
        await seed(store, 'c', distinct('c', 1), { createdAt: at(2) });
        await seed(store, 'receiving', distinct('receiving', 1), {
          createdAt: at(3),
          accept: false,
        });
        // Created in the same millisecond: the id (descending) decides their order.
        await seed(store, 'd-tie', distinct('d-tie', 1), { createdAt: at(4) });
        await seed(store, 'e-tie', distinct('e-tie', 1), { createdAt: at(4) });
        await store.markJobProcessing('b', at(10));
        await store.completeJob('c', at(11));
      }
      const ids = (page: { jobs: JobRecord[] }) => page.jobs.map((j) => j.id);

      t.test('lists accepted jobs newest first, with the total', async (t) => {
        const store = await open(t);
        await seedListing(store);
        const all = await store.listJobs({}, 0, 100);
        t.strictSame(ids(all), ['e-tie', 'd-tie', 'c', 'b', 'a-oldest'], 'RECEIVING is left out');
        t.equal(all.total, 5);
        for (const job of all.jobs) {
          t.strictSame(job, await store.getJob(job.id), `${job.id} is the whole job record`);
        }
      });

      t.test('pages with offset and limit; total counts every match', async (t) => {
        const store = await open(t);
        await seedListing(store);
        t.strictSame(await store.listJobs({}, 0, 2).then(ids), ['e-tie', 'd-tie']);
        t.strictSame(await store.listJobs({}, 2, 2).then(ids), ['c', 'b']);
        t.strictSame(await store.listJobs({}, 4, 2).then(ids), ['a-oldest']);
        const past = await store.listJobs({}, 9, 2);
        t.strictSame(past, { total: 5, jobs: [] }, 'past the end: no jobs, the same total');
        t.equal((await store.listJobs({}, 2, 1)).total, 5);
      });

      t.test('filters by status', async (t) => {
        const store = await open(t);
        await seedListing(store);
        const pending = await store.listJobs({ status: 'PENDING' }, 0, 100);
        t.strictSame(ids(pending), ['e-tie', 'd-tie', 'a-oldest']);
        t.equal(pending.total, 3);
        t.strictSame(await store.listJobs({ status: 'PENDING' }, 1, 1), {
          total: 3,
          jobs: [await mustGetJob(store, 'd-tie')],
        });
        t.strictSame(await store.listJobs({ status: 'PROCESSING' }, 0, 100).then(ids), ['b']);
        t.strictSame(await store.listJobs({ status: 'COMPLETED' }, 0, 100).then(ids), ['c']);
        t.strictSame(await store.listJobs({ status: 'FAILED' }, 0, 100), { total: 0, jobs: [] });
      });

      t.test('an empty store lists nothing', async (t) => {
        const store = await open(t);
        t.strictSame(await store.listJobs({}, 0, 20), { total: 0, jobs: [] });
      });
    });

    t.test('countJobs counts accepted jobs by status', async (t) => {
      const store = await open(t);
      const none = { PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0 };
      t.strictSame(await store.countJobs(), none, 'every status, at 0');
      await seed(store, 'receiving', distinct('receiving', 1), { accept: false });
      await seed(store, 'p1', distinct('p1', 1), { createdAt: at(1) });
      await seed(store, 'p2', distinct('p2', 1), { createdAt: at(2) });
      await seed(store, 'running', distinct('running', 1), { createdAt: at(3) });
      await seed(store, 'done', distinct('done', 1), { createdAt: at(4) });
      await store.markJobProcessing('running', at(5));
      await store.completeJob('done', at(6));
      t.strictSame(await store.countJobs(), { ...none, PENDING: 2, PROCESSING: 1, COMPLETED: 1 });
    });

    t.test('getImageTotals: every recorded outcome; bytes of processed images only', async (t) => {
      const store = await open(t);
      await seed(store, 'job-a', distinct('job-a', 3));
      await seed(store, 'job-b', distinct('job-b', 1), { createdAt: at(1) });
      await store.claimImages('w1', at(0), at(30), 10);
      await store.finishImage('job-a', 1, 'w1', processed(1), at(1));
      await store.finishImage('job-a', 2, 'w1', processed(2), at(2));
      await store.finishImage('job-b', 1, 'w1', failed('HTTP 404'), at(3));
      // Not counted: the lease is another owner's, or the image is already finished.
      await store.finishImage('job-a', 3, 'w2', processed(3), at(4));
      await store.finishImage('job-a', 1, 'w1', processed(1), at(4));
      // A failure after the download still reports the bytes it read: not counted either.
      const late = { ...failed('corrupt or truncated data'), bytesIn: 5000 };
      await store.finishImage('job-a', 3, 'w1', late, at(5));

      const totals = {
        processed: 2,
        failed: 2,
        processingMs: 41 + 42 + 7 + 7,
        bytesIn: 1001 + 1002,
        bytesOut: 101 + 102,
      };
      t.strictSame(await store.getImageTotals(), totals);
      await store.deleteJob('job-a');
      t.strictSame(await store.getImageTotals(), totals, 'deleting a job leaves the totals alone');
    });

    t.test('listUnfinishedJobs lists PENDING and PROCESSING jobs', async (t) => {
      const store = await open(t);
      await seed(store, 'receiving', distinct('receiving', 1), { accept: false });
      await seed(store, 'pending', distinct('pending', 1), { createdAt: at(1) });
      await seed(store, 'processing', distinct('processing', 1), { createdAt: at(2) });
      await seed(store, 'completed', distinct('completed', 1), { createdAt: at(3) });
      await store.markJobProcessing('processing', at(5));
      await store.completeJob('completed', at(5));

      const unfinished = await store.listUnfinishedJobs();
      t.strictSame(unfinished.map((j) => j.id).sort(), ['pending', 'processing']);
      const processing = unfinished.find((j) => j.id === 'processing');
      t.strictSame(processing, await store.getJob('processing'), 'whole job records');
    });

    t.test('data survives close and reopen', async (t) => {
      const first = await makeStore();
      t.teardown(() => first.cleanup());
      const store = first.store;
      await seed(store, 'job-a', distinct('job-a', 3), { webhookUrl: 'https://hooks.test/x' });
      await seed(store, 'job-b', distinct('job-b', 1), { createdAt: at(1), accept: false });
      t.equal((await store.claimImages('w1', at(10), at(40), 10)).length, 3);
      await store.finishImage('job-a', 1, 'w1', processed(1), at(11));

      const job = await store.getJob('job-a');
      const products = await store.listProducts('job-a', 0, 100);
      const images = await store.listImages('job-a');
      const receiving = await store.getJob('job-b');
      const totals = await store.getImageTotals();
      await store.close();

      const second = await makeStore(first.location);
      t.teardown(() => second.cleanup());
      const reopened = second.store;
      t.strictSame(await reopened.getJob('job-a'), job);
      t.strictSame(await reopened.listProducts('job-a', 0, 100), products);
      t.strictSame(await reopened.listImages('job-a'), images);
      t.strictSame(await reopened.getJob('job-b'), receiving);
      t.strictSame(await reopened.getImageTotals(), totals);
      // Leases are data too: w1's unfinished images are not up for grabs before they expire.
      t.strictSame(await reopened.claimImages('w2', at(20), at(50), 10), []);
      t.strictSame(keysOf(await reopened.claimImages('w2', at(41), at(71), 10)), [
        'job-a#2',
        'job-a#3',
      ]);
    });
  });
}
