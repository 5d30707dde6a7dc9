import t from 'tap';
import { addGate } from '../helpers/gate.js';
import { startOrigin } from '../helpers/origin.js';
import {
  getJson,
  getProducts,
  productCsv,
  startService,
  submit,
  uploadImage,
  waitForImage,
  waitForStatus,
} from '../helpers/service.js';

interface Figures {
  images_processed: number;
  images_failed: number;
  processing_ms_total: number;
  processing_ms_average: number | null;
  bytes_in: number;
  bytes_out: number;
  bytes_saved: number;
}

interface StatsBody {
  started_at: string;
  since_start: Figures;
  all_time: Figures;
  jobs: {
    PENDING: number;
    PROCESSING: number;
    COMPLETED: number;
    FAILED: number;
    total: number;
    image_uploads: number;
  };
}

const NOTHING: Figures = {
  images_processed: 0,
  images_failed: 0,
  processing_ms_total: 0,
  processing_ms_average: null,
  bytes_in: 0,
  bytes_out: 0,
  bytes_saved: 0,
};

const origin = await startOrigin();
t.teardown(() => origin.close());

async function stats(url: string): Promise<StatsBody> {
  const res = await getJson(url, '/stats');
  if (res.status !== 200) throw new Error(`/stats answered ${res.status}`);
  return res.body as StatsBody;
}

t.test('a fresh service has processed nothing', async (t) => {
  const before = Date.now();
  const service = await startService();
  t.teardown(() => service.close());
  const body = await stats(service.url);
  t.strictSame(body, {
    started_at: body.started_at,
    since_start: NOTHING,
    all_time: NOTHING,
    jobs: { PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0, total: 0, image_uploads: 0 },
  });
  const started = Date.parse(body.started_at);
  t.ok(started >= before && started <= Date.now(), 'started_at is this start');
});

t.test('outcomes, times and bytes since start and of all time', async (t) => {
  let service = await startService();
  t.teardown(() => service.close());
  const job = await submit(
    service.url,
    productCsv([
      [`${origin.url}/img/photo1.jpg`, `${origin.url}/img/alpha.png`],
      [`${origin.url}/status/404`],
    ]),
  );
  await waitForStatus(service.url, job.request_id);

  // What the job's own records say, to hold the totals against.
  const images = (await getProducts(service.url, job.request_id)).products.flatMap((p) => p.images);
  const processed = images.filter((i) => i.status === 'PROCESSED');
  t.equal(processed.length, 2, 'fixture: two processed');
  const bytesIn = processed.reduce((sum, i) => sum + (i.bytes_in ?? 0), 0);
  const bytesOut = processed.reduce((sum, i) => sum + (i.bytes_out ?? 0), 0);
  const recorded = await service.services.store.listImages(job.request_id);
  for (const image of recorded) {
    t.ok(
      Number.isInteger(image.processingMs) && (image.processingMs ?? -1) >= 0,
      `image ${image.seq} has a processing time (${image.processingMs} ms)`,
    );
  }
  const totalMs = recorded.reduce((sum, i) => sum + (i.processingMs ?? 0), 0);
  const expected: Figures = {
    images_processed: 2,
    images_failed: 1,
    processing_ms_total: totalMs,
    processing_ms_average: Math.round((totalMs / 3) * 10) / 10,
    bytes_in: bytesIn,
    bytes_out: bytesOut,
    bytes_saved: bytesIn - bytesOut,
  };

  const first = await stats(service.url);
  t.strictSame(first.since_start, expected, 'since start: this job');
  t.strictSame(first.all_time, expected, 'all time: the same, on a fresh store');
  t.strictSame(first.jobs, {
    PENDING: 0,
    PROCESSING: 0,
    COMPLETED: 1,
    FAILED: 0,
    total: 1,
    image_uploads: 0,
  });

  service = await service.restart();
  const gate = addGate(origin, '/stats-held.jpg', origin.fixtures['/img/photo2.jpg']);
  const held = await submit(service.url, productCsv([[`${origin.url}/stats-held.jpg`]]));
  await gate.requested;
  await waitForStatus(service.url, held.request_id, 'PROCESSING');
  const restarted = await stats(service.url);
  t.strictSame(restarted.since_start, NOTHING, 'a new process starts counting afresh');
  t.strictSame(restarted.all_time, expected, 'the store keeps the totals');
  t.ok(Date.parse(restarted.started_at) > Date.parse(first.started_at), 'a later start');
  t.strictSame(restarted.jobs, {
    PENDING: 0,
    PROCESSING: 1,
    COMPLETED: 1,
    FAILED: 0,
    total: 2,
    image_uploads: 0,
  });

  gate.open();
  await waitForStatus(service.url, held.request_id);
  const [heldImage] = await service.services.store.listImages(held.request_id);
  const heldMs = heldImage?.processingMs ?? 0;
  const heldView = (await getProducts(service.url, held.request_id)).products[0]?.images[0];
  const last = await stats(service.url);
  t.match(last.since_start, {
    images_processed: 1,
    images_failed: 0,
    processing_ms_total: heldMs,
    bytes_in: heldView?.bytes_in,
    bytes_out: heldView?.bytes_out,
  });
  t.match(last.all_time, {
    images_processed: 3,
    images_failed: 1,
    processing_ms_total: totalMs + heldMs,
    bytes_in: bytesIn + (heldView?.bytes_in ?? 0),
  });
  t.strictSame(last.jobs, {
    PENDING: 0,
    PROCESSING: 0,
    COMPLETED: 2,
    FAILED: 0,
    total: 2,
    image_uploads: 0,
  });
});

t.test('a direct upload is a job of one image, counted with the rest', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  const job = await submit(service.url, productCsv([[`${origin.url}/img/photo1.jpg`]]));
  await waitForStatus(service.url, job.request_id);
  const accepted = await uploadImage(service.url, origin.fixtures['/img/photo2.jpg'] as Buffer);
  t.equal(accepted.status, 202);
  const image = await waitForImage(service.url, (accepted.body as { id: string }).id);
  t.equal(image.status, 'processed');
  const [recorded] = await service.services.store.listImages(image.id);
  const csvImage = (await getProducts(service.url, job.request_id)).products[0]?.images[0];
  const body = await stats(service.url);
  t.strictSame(body.jobs, {
    PENDING: 0,
    PROCESSING: 0,
    COMPLETED: 2,
    FAILED: 0,
    total: 2,
    image_uploads: 1,
  });
  t.match(body.since_start, {
    images_processed: 2,
    images_failed: 0,
    bytes_in: (csvImage?.bytes_in ?? 0) + (image.metadata?.bytes_in ?? 0),
    bytes_out: (csvImage?.bytes_out ?? 0) + (image.metadata?.bytes_out ?? 0),
  });
  t.equal(recorded?.processingMs, image.metadata?.processing_ms, 'one processing time, shown');
});
