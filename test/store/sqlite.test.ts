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

t.test('init adds the columns a database from an earlier version lacks', async (t) => {
  const file = path.join(dir, 'earlier.sqlite');
  const earlier = new Database(file);
  earlier.exec(`
    CREATE TABLE images (
      request_id TEXT NOT NULL, seq INTEGER NOT NULL, url TEXT NOT NULL,
      output_name TEXT NOT NULL, refs TEXT NOT NULL, status TEXT NOT NULL, owner TEXT,
      lease_until INTEGER, output_file TEXT, bytes_in INTEGER, bytes_out INTEGER, error TEXT,
      PRIMARY KEY (request_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO images (request_id, seq, url, output_name, refs, status, output_file, bytes_in, bytes_out)
      VALUES ('old-job', 1, 'https://img.test/1.jpg', '1-1', '[{"row":1,"position":1}]',
        'PROCESSED', 'old-job/1-1.jpg', 2000, 300);
  `);
  earlier.close();

  const store = new SqliteJobStore(file);
  t.teardown(() => store.close());
  await store.init();
  await store.init();
  const [image] = await store.listImages('old-job');
  t.match(image, { seq: 1, status: 'PROCESSED', bytesIn: 2000 });
  t.equal(image?.processingMs, null, 'an image recorded before has no processing time');
  const reader = new Database(file, { readonly: true });
  t.teardown(() => reader.close());
  const columns = reader.prepare('PRAGMA table_info(images)').all() as Array<{ name: string }>;
  t.ok(
    columns.some((c) => c.name === 'processing_ms'),
    'images has processing_ms',
  );
});
