import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import sharp from 'sharp';
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getJson,
  type StatusBody,
  sleep,
  submit,
  waitForStatus,
  type TapTest,
} from '../helpers/service.js';
import { freePort, spawnService } from '../helpers/service-process.js';
import { startWebhookReceiver } from '../helpers/webhook.js';

/**
 * Data dirs, a database and the environment for the service processes of one test, run
 * from env alone as `npm start` would be; processes, dirs and database go at teardown.
 */
async function serviceProcesses(t: TapTest, name: string, extra: Record<string, string>) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `ibs-${name}-`));
  const mongodbUri = process.env.MONGODB_URI;
  const dbName = `ibs_${name}_${randomUUID().replace(/-/g, '')}`;
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const child of children) child.kill('SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
    if (mongodbUri) {
      const client = new MongoClient(mongodbUri);
      await client
        .db(dbName)
        .dropDatabase()
        .catch(() => {});
      await client.close();
    }
  });
  const env: Record<string, string> = {
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    DATA_DIR: path.join(dir, 'data'),
    IMAGES_DIR: path.join(dir, 'images'),
    RESULTS_DIR: path.join(dir, 'results'),
    ALLOW_PRIVATE_NETWORKS: 'true',
    LOG_LEVEL: 'warn',
    // A loaded test machine lags; this is not the overload test.
    OVERLOAD_EVENT_LOOP_DELAY_MS: '0',
    ...(mongodbUri ? { MONGODB_URI: mongodbUri, MONGODB_DB: dbName } : { MONGODB_URI: '' }),
    ...extra,
  };
  return {
    dir,
    url: `http://127.0.0.1:${env.PORT}`,
    async start(): Promise<ChildProcess> {
      const { child } = await spawnService(env);
      children.push(child);
      return child;
    },
  };
}

t.test(
  'after SIGKILL mid-job, the next start finishes the job with every image once',
  async (t) => {
    const origin = await startOrigin();
    const receiver = await startWebhookReceiver();
    const services = await serviceProcesses(t, 'crash', { CONCURRENCY: '3', LEASE_MS: '1000' });
    const { dir, url } = services;
    t.teardown(async () => {
      await origin.close();
      await receiver.close();
    });

    // Half the images answer at once; the others hang until the first process is dead, so
    // the kill lands with images in flight and others not yet started.
    const jpeg = origin.fixtures['/img/photo1.jpg'];
    let released = false;
    const held: Array<() => void> = [];
    for (let i = 1; i <= 12; i++) {
      origin.add(`/crash/${i}.jpg`, (_req, res) => {
        const answer = () => {
          res.writeHead(200, { 'content-type': 'image/jpeg' });
          res.end(jpeg);
        };
        if (i <= 6 || released) answer();
        else held.push(answer);
      });
    }

    const first = await services.start();
    const rows = Array.from({ length: 6 }, (_, r) => {
      const a = `${origin.url}/crash/${r * 2 + 1}.jpg`;
      const b = `${origin.url}/crash/${r * 2 + 2}.jpg`;
      return `${r + 1},Product ${r + 1},"${a}, ${b}",extra-${r + 1}`;
    });
    const csv = ['Serial Number,Product Name,Input Image Urls,Note', ...rows].join('\n');
    const job = await submit(url, csv, { webhook_url: receiver.url });
    t.equal(job.images, 12);

    // Kill only once some images are recorded and others are hanging in flight.
    for (let i = 0; i < 200 && held.length === 0; i++) await sleep(50);
    t.ok(held.length > 0, 'some downloads are in flight at the kill');
    const before = (await getJson(url, `/status/${job.request_id}`)).body as StatusBody;
    t.not(before.status, 'COMPLETED', 'the job is unfinished at the kill');
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));

    released = true;
    for (const answer of held.splice(0)) answer();
    const second = await services.start();
    const done = await waitForStatus(url, job.request_id, 'COMPLETED', 30_000);
    t.equal(done.progress.images_processed, 12);
    t.equal(done.progress.images_failed, 0);
    t.equal(done.progress.products_done, 6);

    const { rows: results } = await downloadCsv(url, job.request_id);
    t.strictSame(results[0], [
      'Serial Number',
      'Product Name',
      'Input Image Urls',
      'Note',
      'Output Image Urls',
      'Errors',
    ]);
    t.equal(results.length, 7, 'one results row per input row');
    const outputs = results.slice(1).flatMap((row, r) => {
      t.equal(row[0], String(r + 1), `row ${r + 1} is in input order`);
      t.equal(row[3], `extra-${r + 1}`, `row ${r + 1} keeps its extra column`);
      t.equal(row[5], '', `row ${r + 1} has no errors`);
      return (row[4] ?? '').split(', ');
    });
    t.equal(outputs.length, 12);
    t.equal(new Set(outputs).size, 12, 'every image appears exactly once');
    for (const output of outputs) {
      const { res, body } = await fetchBytes(output);
      t.equal(res.status, 200, `${output} is served`);
      const meta = await sharp(body).metadata();
      t.equal(meta.format, 'jpeg');
      t.ok(body.length < jpeg.length, 'the output is smaller than the input');
    }
    const files = (await fs.readdir(path.join(dir, 'images', job.request_id))).filter(
      (f) => !f.endsWith('.tmp'),
    );
    t.equal(files.length, 12, 'no image was written under two names');

    await receiver.waitFor(1);
    await sleep(300);
    t.equal(receiver.received.length, 1, 'the webhook is sent once');
    second.kill('SIGTERM');
    const code = await new Promise((resolve) => second.once('exit', resolve));
    t.equal(code, 0, 'SIGTERM stops the service cleanly');
  },
);

t.test('SIGTERM lets the images in flight finish, records them, and exits 0', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const services = await serviceProcesses(t, 'term', {
    CONCURRENCY: '2',
    DOWNLOAD_CONCURRENCY: '2',
  });
  const { url } = services;
  const jpeg = origin.fixtures['/img/photo2.jpg'];
  let started = 0;
  for (let i = 1; i <= 6; i++) {
    origin.add(`/term/${i}.jpg`, (_req, res) => {
      started++;
      setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg), 700);
    });
  }
  const first = await services.start();
  const urls = [1, 2, 3, 4, 5, 6].map((i) => `${origin.url}/term/${i}.jpg`);
  const job = await submit(
    url,
    `Serial Number,Product Name,Input Image Urls\n1,p,"${urls.join(', ')}"\n`,
  );
  for (let i = 0; i < 100 && started < 2; i++) await sleep(20);
  t.equal(started, 2, 'two downloads are in flight at the SIGTERM');
  first.kill('SIGTERM');
  const code = await new Promise((resolve) => first.once('exit', resolve));
  t.equal(code, 0, 'exits 0');
  t.equal(started, 2, 'no new image was started after the signal');

  await services.start();
  const done = await waitForStatus(url, job.request_id, 'COMPLETED', 30_000);
  t.equal(done.progress.images_processed, 6);
  for (let i = 1; i <= 6; i++) {
    t.equal(
      origin.hits(`/term/${i}.jpg`),
      1,
      `image ${i} was fetched once: in flight ones were kept`,
    );
  }
});
