import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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
