import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  getJson,
  getProducts,
  type StatusBody,
  sleep,
  startService,
  submit,
  waitForStatus,
} from '../helpers/service.js';

const HEADER = 'Serial Number,Product Name,Input Image Urls';
const origin = await startOrigin();
t.teardown(() => origin.close());
const jpeg = origin.fixtures['/img/photo1.jpg'];

t.test('transient download failures are retried, final ones are not', async (t) => {
  const service = await startService({ DOWNLOAD_RETRIES: '2' });
  t.teardown(() => service.close());
  let flaky = 0;
  origin.add('/retry/flaky.jpg', (_req, res) => {
    flaky++;
    if (flaky === 1) {
      res.writeHead(500).end();
    } else {
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    }
  });
  origin.add('/retry/busy.jpg', { body: Buffer.from('busy'), status: 503 });
  let throttled = 0;
  origin.add('/retry/throttled.jpg', (_req, res) => {
    throttled++;
    if (throttled === 1) res.writeHead(429, { 'retry-after': '0' }).end();
    else res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
  });
  origin.add('/retry/gone.jpg', { body: Buffer.from('gone'), status: 404 });
  const o = origin.url;
  const csv = [
    HEADER,
    `1,flaky,${o}/retry/flaky.jpg`,
    `2,busy,${o}/retry/busy.jpg`,
    `3,throttled,${o}/retry/throttled.jpg`,
    `4,gone,${o}/retry/gone.jpg`,
  ].join('\n');
  const job = await submit(service.url, csv);
  const done = await waitForStatus(service.url, job.request_id);
  t.equal(done.progress.images_processed, 2);
  t.equal(done.progress.images_failed, 2);

  t.equal(origin.hits('/retry/flaky.jpg'), 2, '500 then 200: one retry, then success');
  t.equal(origin.hits('/retry/busy.jpg'), 3, 'an always-503 host gets the first try and 2 retries');
  t.equal(origin.hits('/retry/throttled.jpg'), 2, '429 with Retry-After is retried');
  t.equal(origin.hits('/retry/gone.jpg'), 1, 'a 404 is final at once');

  const { products } = await getProducts(service.url, job.request_id);
  const byName = new Map(products.map((p) => [p.name, p.images[0]]));
  t.match(byName.get('flaky'), { status: 'PROCESSED', error: null });
  t.match(byName.get('busy'), {
    status: 'FAILED',
    error: 'HTTP 503 from image server (after 3 attempts)',
  });
  t.match(byName.get('throttled'), { status: 'PROCESSED' });
  t.match(byName.get('gone'), { status: 'FAILED', error: 'HTTP 404 from image server' });

  const { rows } = await downloadCsv(service.url, job.request_id);
  t.match(rows[2]?.[4], /busy\.jpg: HTTP 503 from image server \(after 3 attempts\)/);
});

t.test('one slow host cannot hold the whole pool', async (t) => {
  const slow = await startOrigin();
  t.teardown(() => slow.close());
  const service = await startService({ CONCURRENCY: '4', PER_HOST_CONCURRENCY: '2' });
  t.teardown(() => service.close());
  let active = 0;
  let peak = 0;
  const held: Array<() => void> = [];
  for (let i = 1; i <= 6; i++) {
    slow.add(`/held/${i}.jpg`, (_req, res) => {
      active++;
      peak = Math.max(peak, active);
      held.push(() => {
        active--;
        res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
      });
    });
  }
  const slowJob = await submit(
    service.url,
    `${HEADER}\n1,slow,"${[1, 2, 3, 4, 5, 6].map((i) => `${slow.url}/held/${i}.jpg`).join(', ')}"\n`,
  );
  for (let i = 0; i < 100 && held.length < 2; i++) await sleep(20);
  const fastJob = await submit(
    service.url,
    `${HEADER}\n1,fast,"${[1, 2, 3].map((i) => `${origin.url}/img/photo${i}.jpg`).join(', ')}"\n`,
  );
  // The other host's job finishes while the slow host still holds every request it got.
  const fast = await waitForStatus(service.url, fastJob.request_id);
  t.equal(fast.progress.images_processed, 3);
  t.equal(peak, 2, 'the slow host never had more than PER_HOST_CONCURRENCY requests');
  const stillSlow = (await getJson(service.url, `/status/${slowJob.request_id}`))
    .body as StatusBody;
  t.equal(stillSlow.status, 'PROCESSING', 'the slow job was still waiting on its host');

  const release = setInterval(() => held.splice(0).forEach((answer) => answer()), 10);
  t.teardown(() => clearInterval(release));
  const done = await waitForStatus(service.url, slowJob.request_id);
  t.equal(done.progress.images_processed, 6);
  t.equal(peak, 2);
});

t.test('a small job submitted behind a large one finishes first', async (t) => {
  const service = await startService({ CONCURRENCY: '2' });
  t.teardown(() => service.close());
  let release = false;
  for (let i = 1; i <= 120; i++) {
    origin.add(`/big/${i}.jpg`, (_req, res) => {
      const answer = () => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
      if (release) answer();
      else setTimeout(answer, 30);
    });
  }
  const bigRows = Array.from({ length: 30 }, (_, r) => {
    const urls = [1, 2, 3, 4].map((k) => `${origin.url}/big/${r * 4 + k}.jpg`);
    return `${r + 1},big ${r + 1},"${urls.join(', ')}"`;
  });
  const big = await submit(service.url, `${HEADER}\n${bigRows.join('\n')}\n`);
  t.equal(big.images, 120);
  await sleep(100);
  const small = await submit(
    service.url,
    `${HEADER}\n1,small,"${origin.url}/img/photo2.jpg, ${origin.url}/img/photo3.jpg"\n`,
  );
  const smallDone = await waitForStatus(service.url, small.request_id);
  t.equal(smallDone.progress.images_processed, 2);
  const bigNow = (await getJson(service.url, `/status/${big.request_id}`)).body as StatusBody;
  t.not(bigNow.status, 'COMPLETED', 'the small job did not wait for the large one');
  t.ok(
    bigNow.progress.images_processed < 120,
    `the large job was still running (${bigNow.progress.images_processed}/120)`,
  );
  release = true;
  await waitForStatus(service.url, big.request_id, 'COMPLETED', 120_000);
});
