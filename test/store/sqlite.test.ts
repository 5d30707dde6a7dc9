import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { SqliteJobStore } from '../../src/store/sqlite-store.js';
import { type MakeStore, runStoreContract } from './contract.js';

// One directory for the whole file; each store gets its own database file in it, and a
// reopened store is simply a second SqliteJobStore on an existing file.
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sqlite-store-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

let count = 0;
const makeStore: MakeStore = async (location) => {
  const file = location ?? path.join(dir, `jobs-${++count}.sqlite`);
  const store = new SqliteJobStore(file);
  await store.init();
  return {
    store,
    location: file,
    async cleanup() {
      await store.close();
      // Only the handle that created the file removes it (with its WAL and SHM files).
      if (location === undefined) {
        await Promise.all(
          ['', '-wal', '-shm'].map((suffix) => fs.rm(`${file}${suffix}`, { force: true })),
        );
      }
    },
  };
};

runStoreContract(t, 'SqliteJobStore', makeStore);

t.test('SqliteJobStore reports its kind and creates its directory', async (t) => {
  const file = path.join(dir, 'nested', 'deeper', 'jobs.sqlite');
  const store = new SqliteJobStore(file);
  t.teardown(() => store.close());
  await store.init();
  t.equal(store.kind, 'embedded');
  t.equal(store.file, file);
  await t.resolves(fs.access(file), 'the database file exists');
});

t.test('SqliteJobStore adds the columns a database from before them lacks', async (t) => {
  const file = path.join(dir, 'old-schema.sqlite');
  // The tables as the first release made them, with one finished CSV job.
  const old = new Database(file);
  old.exec(`
    CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, completed_at INTEGER, base_url TEXT NOT NULL DEFAULT '',
      options TEXT NOT NULL DEFAULT '{}', columns TEXT NOT NULL DEFAULT '[]', webhook TEXT,
      products_total INTEGER NOT NULL DEFAULT 0, products_done INTEGER NOT NULL DEFAULT 0,
      images_total INTEGER NOT NULL DEFAULT 0, images_processed INTEGER NOT NULL DEFAULT 0,
      images_failed INTEGER NOT NULL DEFAULT 0, error TEXT);
    CREATE TABLE images (request_id TEXT NOT NULL, seq INTEGER NOT NULL, url TEXT NOT NULL,
      output_name TEXT NOT NULL, refs TEXT NOT NULL, status TEXT NOT NULL, owner TEXT,
      lease_until INTEGER, output_file TEXT, bytes_in INTEGER, bytes_out INTEGER, error TEXT,
      PRIMARY KEY (request_id, seq)) WITHOUT ROWID;
    INSERT INTO jobs (id, status, created_at, updated_at, options, images_total, images_processed)
      VALUES ('old-job', 'COMPLETED', 1, 2,
        '{"quality":60,"format":"jpeg","maxWidth":null,"maxHeight":null}', 1, 1);
    INSERT INTO images (request_id, seq, url, output_name, refs, status, output_file, bytes_in,
      bytes_out) VALUES ('old-job', 1, 'https://img.test/1.jpg', '1-1', '[{"row":1,"position":1}]',
      'PROCESSED', 'old-job/1-1.jpg', 2000, 300);
  `);
  old.close();

  const store = new SqliteJobStore(file);
  t.teardown(() => store.close());
  await store.init();
  await store.init();
  const job = await store.getJob('old-job');
  t.equal(job?.kind, 'csv', 'an old job is a CSV job');
  t.strictSame(job?.options, {
    quality: 60,
    format: 'jpeg',
    maxWidth: null,
    maxHeight: null,
    thumbnails: [],
  });
  t.match(await store.listImages('old-job'), [
    {
      url: 'https://img.test/1.jpg',
      originalName: null,
      outputFile: 'old-job/1-1.jpg',
      thumbnails: {},
      metadata: null,
      processingMs: null,
      bytesIn: 2000,
    },
  ]);
  t.strictSame(
    (await store.listJobs({ kind: 'csv' }, 0, 10)).jobs.map((j) => j.id),
    ['old-job'],
    'listed by kind',
  );
  const reader = new Database(file, { readonly: true });
  t.teardown(() => reader.close());
  const added = [
    ['jobs', 'kind'],
    ['images', 'original_name'],
    ['images', 'thumbnails'],
    ['images', 'metadata'],
    ['images', 'processing_ms'],
  ];
  for (const [table, column] of added) {
    const columns = reader.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
    t.ok(
      columns.some((c) => c.name === column),
      `${table} has ${column}`,
    );
  }
  const indexes = reader.prepare('PRAGMA index_list(jobs)').all() as Array<{ name: string }>;
  t.ok(
    indexes.some((i) => i.name === 'jobs_kind_listing'),
    'the kind index is made after its column',
  );
});
