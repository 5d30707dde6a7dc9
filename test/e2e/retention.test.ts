import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { addGate } from '../helpers/gate.js';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  getJson,
  productCsv,
  sleep,
  startService,
  submit,
  type TestService,
  waitForStatus,
} from '../helpers/service.js';

const DAY_MS = 86_400_000;

const origin = await startOrigin();
t.teardown(() => origin.close());

const exists = (file: string): Promise<boolean> =>
  fs.access(file).then(
    () => true,
    () => false,
  );

/** Whether the job is still there, through the API and on disk. */
async function kept(service: TestService, id: string) {
  return {
    status: (await getJson(service.url, `/status/${id}`)).status,
    imagesDir: await exists(path.join(service.config.imagesDir, id)),
    resultsCsv: await exists(path.join(service.config.resultsDir, `${id}.csv`)),
  };
}

const KEPT = { status: 200, imagesDir: true, resultsCsv: true };
const GONE = { status: 404, imagesDir: false, resultsCsv: false };

/** A job run to completion, with its results CSV on disk; returns its id and completion. */
async function completedJob(service: TestService, fixture: string) {
  const job = await submit(service.url, productCsv([[`${origin.url}${fixture}`]]));
  const done = await waitForStatus(service.url, job.request_id);
  await downloadCsv(service.url, job.request_id);
  return { id: job.request_id, completedAt: new Date(done.completed_at ?? '') };
}

t.test('a sweep deletes only the finished jobs completed before its cutoff', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  const older = await completedJob(service, '/img/photo1.jpg');
  const newer = await completedJob(service, '/img/photo2.jpg');
  t.ok(older.completedAt < newer.completedAt, 'fixture: completed one after the other');
  const gate = addGate(origin, '/retention-held.jpg', origin.fixtures['/img/photo3.jpg']);
  const running = await submit(service.url, productCsv([[`${origin.url}/retention-held.jpg`]]));
  await gate.requested;
  await waitForStatus(service.url, running.request_id, 'PROCESSING');
  const { manager } = service.services;

  t.equal(await manager.sweepExpired(newer.completedAt), 1, 'one job completed before');
  t.strictSame(await kept(service, older.id), GONE, 'the older job and its files are gone');
  t.strictSame(await kept(service, newer.id), KEPT, 'the newer one is kept');
  t.equal(await service.services.store.getJob(older.id), null, 'no record left');

  t.equal(await manager.sweepExpired(new Date(Date.now() + DAY_MS)), 1, 'later: the newer');
  t.strictSame(await kept(service, newer.id), GONE);
  t.equal(
    (await getJson(service.url, `/status/${running.request_id}`)).status,
    200,
    'a running job is never swept',
  );
  gate.open();
  await waitForStatus(service.url, running.request_id);
});

t.test('RETENTION_DAYS: old jobs are swept at start, recent ones kept', async (t) => {
  let service = await startService();
  t.teardown(() => service.close());
  const recent = await completedJob(service, '/img/pic.webp');

  // A job completed 40 days ago, recorded through the store with its files on disk.
  const { store } = service.services;
  const old = randomUUID();
  const longAgo = new Date(Date.now() - 40 * DAY_MS);
  await store.beginJob(old, longAgo);
  await store.acceptJob(
    old,
    {
      options: { quality: 50, format: 'jpeg', maxWidth: null, maxHeight: null, thumbnails: [] },
      baseUrl: service.url,
      columns: ['Serial Number', 'Product Name', 'Input Image Urls'],
      webhookUrl: null,
      productsTotal: 0,
      imagesTotal: 0,
    },
    longAgo,
  );
  await store.completeJob(old, longAgo);
  await fs.mkdir(path.join(service.config.imagesDir, old), { recursive: true });
  await fs.writeFile(path.join(service.config.imagesDir, old, '1-1.jpg'), 'old image');
  await fs.writeFile(path.join(service.config.resultsDir, `${old}.csv`), 'old results');
  t.strictSame(await kept(service, old), KEPT, 'fixture: the old job is there');

  service = await service.restart({ RETENTION_DAYS: '30' });
  // The first sweep runs in the background as the service starts.
  const reopened = service.services.store;
  for (let i = 0; i < 400 && (await reopened.getJob(old)) !== null; i++) await sleep(25);
  t.strictSame(await kept(service, old), GONE, 'the 40-day-old job is gone');
  t.strictSame(await kept(service, recent.id), KEPT, 'the recent one is kept');
});
