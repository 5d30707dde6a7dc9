import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import t from 'tap';
import { databaseFromUri, MongoJobStore } from '../../src/store/mongo-store.js';
import { type MakeStore, runStoreContract } from './contract.js';

const uri = process.env.MONGODB_URI;

if (!uri) {
  t.comment(
    'MONGODB_URI is not set: the MongoDB store contract run was SKIPPED. ' +
      'Start a server with `bash scripts/mongo-test-server.sh start` and set MONGODB_URI to run it.',
  );
  t.pass('skipped: no MongoDB server (MONGODB_URI unset)', { skip: 'MONGODB_URI unset' });
} else {
  // Each store gets a database of its own; a reopened store is a second client on the
  // same database name, which is all "the same location" means for MongoDB.
  const created: string[] = [];
  const makeStore: MakeStore = async (location) => {
    const db = location ?? `contract_${randomUUID().slice(0, 8)}`;
    if (!location) created.push(db);
    const store = new MongoJobStore(uri, db);
    await store.init();
    return { store, location: db, cleanup: () => store.close() };
  };
  t.teardown(async () => {
    const client = new MongoClient(uri);
    try {
      for (const db of created) await client.db(db).dropDatabase();
    } finally {
      await client.close();
    }
  });

  runStoreContract(t, 'MongoJobStore', makeStore);

  t.test('MongoJobStore reports its kind and creates its indexes idempotently', async (t) => {
    const db = `indexes_${randomUUID().slice(0, 8)}`;
    created.push(db);
    const first = new MongoJobStore(uri, db);
    await first.init();
    await first.init();
    t.equal(first.kind, 'mongodb');
    await first.close();
    const client = new MongoClient(uri);
    t.teardown(() => client.close());
    const names = async (collection: string) =>
      (await client.db(db).collection(collection).indexes()).map((i) => i.name).sort();
    t.strictSame(await names('requests'), [
      '_id_',
      'kind_created_listing',
      'status_completed',
      'status_created',
      'status_created_listing',
      'webhook_due',
    ]);
    t.strictSame(await names('products'), ['_id_', 'request_row']);
    t.strictSame(await names('images'), [
      '_id_',
      'claim',
      'owner_status',
      'request_seq',
      'request_status_seq',
    ]);
  });

  t.test('MongoJobStore reads documents recorded before kinds and metadata', async (t) => {
    const db = `old_docs_${randomUUID().slice(0, 8)}`;
    const client = new MongoClient(uri);
    t.teardown(async () => {
      await client.db(db).dropDatabase();
      await client.close();
    });
    const now = new Date('2024-03-01T10:00:00.000Z');
    await client
      .db(db)
      .collection<{ _id: string; [field: string]: unknown }>('requests')
      .insertOne({
        _id: 'old-job',
        status: 'COMPLETED',
        created_at: now,
        updated_at: now,
        completed_at: now,
        base_url: 'http://files.test',
        options: { quality: 60, format: 'jpeg', maxWidth: null, maxHeight: null },
        columns: [],
        webhook: null,
        products_total: 1,
        products_done: 1,
        images_total: 1,
        images_processed: 1,
        images_failed: 0,
        error: null,
      });
    await client
      .db(db)
      .collection('images')
      .insertOne({
        request_id: 'old-job',
        seq: 1,
        url: 'https://img.test/1.jpg',
        output_name: '1-1',
        refs: [{ row: 1, position: 1 }],
        status: 'PROCESSED',
        owner: null,
        lease_until: null,
        claim: null,
        output_file: 'old-job/1-1.jpg',
        bytes_in: 2000,
        bytes_out: 300,
        error: null,
      });

    const store = new MongoJobStore(uri, db);
    t.teardown(() => store.close());
    await store.init();
    const job = await store.getJob('old-job');
    t.equal(job?.kind, 'csv', 'an old job is a CSV job');
    t.strictSame(job?.options.thumbnails, [], 'with no thumbnails');
    t.match(await store.listImages('old-job'), [
      {
        originalName: null,
        outputFile: 'old-job/1-1.jpg',
        thumbnails: {},
        metadata: null,
        processingMs: null,
      },
    ]);
    t.strictSame(
      (await store.listJobs({ kind: 'csv' }, 0, 10)).jobs.map((j) => j.id),
      ['old-job'],
      'listed with the CSV jobs',
    );
    t.equal((await store.listJobs({ kind: 'image' }, 0, 10)).total, 0);
  });
}

t.test('the database comes from the URI path, else the configured name', async (t) => {
  t.equal(databaseFromUri('mongodb://127.0.0.1:27017/catalogue'), 'catalogue');
  t.equal(databaseFromUri('mongodb://u:p@a:1,b:2/shop?replicaSet=rs0'), 'shop');
  t.equal(databaseFromUri('mongodb+srv://cluster0.example.net/prod?retryWrites=true'), 'prod');
  t.equal(databaseFromUri('mongodb://127.0.0.1:27017/'), null);
  t.equal(databaseFromUri('mongodb://127.0.0.1:27017'), null);
  t.equal(databaseFromUri('mongodb://127.0.0.1:27017/?w=majority'), null);
});
