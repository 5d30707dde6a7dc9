import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { JobWatchers, type WatchEvent } from '../../src/domain/job-watchers.js';
import type { JobRecord, TransformOptions } from '../../src/store/job-store.js';
import { SqliteJobStore } from '../../src/store/sqlite-store.js';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'job-watchers-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const silent = pino({ level: 'silent' });
let files = 0;

/** A real embedded store holding one accepted job of one image, and that job. */
async function storeWithJob(t: Tap): Promise<{ store: SqliteJobStore; job: JobRecord }> {
  const store = new SqliteJobStore(path.join(dir, `jobs-${++files}.sqlite`));
  t.teardown(() => store.close());
  await store.init();
  const id = 'job-1';
  await store.beginJob(id, new Date());
  await store.addProducts(id, [
    {
      requestId: id,
      row: 1,
      serial: '1',
      name: 'one',
      cells: ['1', 'one', 'https://img.test/1.jpg'],
      inputUrls: ['https://img.test/1.jpg'],
      imageSeqs: [1],
      imagesPending: 1,
    },
  ]);
  await store.addImages(id, [
    {
      requestId: id,
      seq: 1,
      url: 'https://img.test/1.jpg',
      originalName: null,
      outputName: '1-1',
      refs: [{ row: 1, position: 1 }],
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
    },
  ]);
  const options: TransformOptions = {
    quality: 50,
    format: 'jpeg',
    maxWidth: null,
    maxHeight: null,
    thumbnails: [],
  };
  await store.acceptJob(
    id,
    {
      options,
      baseUrl: 'http://x.test',
      columns: [],
      webhookUrl: null,
      productsTotal: 1,
      imagesTotal: 1,
    },
    new Date(),
  );
  const job = await store.getJob(id);
  if (!job) throw new Error('the job was not recorded');
  return { store, job };
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** Collects a listener's events; `until` resolves once its condition holds. */
function recorder() {
  const events: WatchEvent[] = [];
  const waiters: Array<{ condition: () => boolean; resolve: () => void }> = [];
  return {
    events,
    listener: (event: WatchEvent) => {
      events.push(event);
      for (const waiter of waiters.filter((w) => w.condition())) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    until: (condition: () => boolean) =>
      new Promise<void>((resolve) => {
        if (condition()) resolve();
        else waiters.push({ condition, resolve });
      }),
    /** Resolves once an event of this type (and, optionally, this job status) has come. */
    untilEvent(type: WatchEvent['type'], status?: JobRecord['status']) {
      return this.until(() =>
        events.some(
          (e) =>
            e.type === type && (status === undefined || ('job' in e && e.job.status === status)),
        ),
      );
    },
  };
}

t.test('listeners of one job share one store read per tick', async (t) => {
  const { store, job } = await storeWithJob(t);
  let reads = 0;
  // keepaliveMs 0: every tick that sees no change sends each listener a keepalive, so the
  // keepalives a listener got count the ticks.
  const watchers = new JobWatchers(
    (id) => {
      reads++;
      return store.getJob(id);
    },
    { intervalMs: 5, keepaliveMs: 0 },
    silent,
  );
  const listeners = [recorder(), recorder(), recorder()];
  const stops = listeners.map((l) => watchers.watch(job, l.listener));
  t.equal(watchers.watchedJobs, 1);
  t.equal(watchers.listenerCount, 3);
  const [first] = listeners;
  await first?.until(() => first.events.length > 20);
  for (const stop of stops) stop();
  t.equal(watchers.watchedJobs, 0, 'the watcher went with its last listener');

  for (const { events } of listeners) {
    t.match(events[0], { type: 'progress', job }, 'each listener first gets the job it was given');
    t.ok(
      events.slice(1).every((e) => e.type === 'keepalive'),
      'nothing changed, so only keepalives follow',
    );
    t.equal(events.length - 1, reads, 'one store read per tick for all three listeners');
  }
});

t.test('a change is sent once; done ends the watch', async (t) => {
  const { store, job } = await storeWithJob(t);
  const watchers = new JobWatchers(
    (id) => store.getJob(id),
    { intervalMs: 5, keepaliveMs: 60_000 },
    silent,
  );
  const seen = recorder();
  watchers.watch(job, seen.listener);
  await store.markJobProcessing(job.id, new Date());
  await seen.untilEvent('progress', 'PROCESSING');
  const [claimed] = await store.claimImages('w', new Date(), new Date(Date.now() + 60_000), 1);
  t.ok(claimed, 'the image was claimed');
  await store.finishImage(
    job.id,
    1,
    'w',
    {
      status: 'PROCESSED',
      outputFile: 'x.jpg',
      thumbnails: {},
      bytesIn: 10,
      bytesOut: 5,
      metadata: null,
      error: null,
      processingMs: 3,
    },
    new Date(),
  );
  await store.completeJob(job.id, new Date());
  await seen.untilEvent('done');
  const final = await store.getJob(job.id);
  const types = seen.events.map((e) => e.type);
  t.strictSame(types.slice(0, 2), ['progress', 'progress'], 'the start, then PROCESSING');
  t.strictSame(types.slice(-2), ['progress', 'done'], 'the final state, then done');
  t.match(seen.events.at(-1), { type: 'done', job: final });
  const prints = seen.events.filter((e) => e.type === 'progress').map((e) => JSON.stringify(e));
  t.equal(new Set(prints).size, prints.length, 'no state is sent twice');
  t.equal(watchers.watchedJobs, 0, 'a finished job is no longer watched');
});

t.test('a job that disappears ends its listeners with gone', async (t) => {
  const { store, job } = await storeWithJob(t);
  const watchers = new JobWatchers(
    (id) => store.getJob(id),
    { intervalMs: 5, keepaliveMs: 60_000 },
    silent,
  );
  const seen = recorder();
  watchers.watch(job, seen.listener);
  await store.deleteJob(job.id);
  await seen.untilEvent('gone');
  t.strictSame(
    seen.events.map((e) => e.type),
    ['progress', 'gone'],
  );
  t.equal(watchers.watchedJobs, 0);
});

t.test('a store that fails is logged once, and the listeners wait', async (t) => {
  const { store, job } = await storeWithJob(t);
  const lines: Array<{ msg: string; request_id?: string }> = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  let failures = 0;
  const watchers = new JobWatchers(
    async (id) => {
      try {
        return await store.getJob(id);
      } catch (err) {
        failures++;
        throw err;
      }
    },
    { intervalMs: 5, keepaliveMs: 60_000 },
    log,
  );
  const seen = recorder();
  const stop = watchers.watch(job, seen.listener);
  await store.close();
  while (failures < 5) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(watchers.watchedJobs, 1, 'still watching');
  t.strictSame(
    seen.events.map((e) => e.type),
    ['progress'],
    'nothing was sent',
  );
  t.match(lines, [{ msg: 'could not read a watched job', request_id: job.id }]);
  t.equal(lines.length, 1, 'five failures in a row, one warning');
  stop();
});
