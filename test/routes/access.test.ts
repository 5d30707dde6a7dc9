import { randomUUID } from 'node:crypto';
import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import { makePng } from '../helpers/images.js';
import { getJson, sleep, startService, uploadImage, waitForStatus } from '../helpers/service.js';

const TOKEN = 'test-token-0123456789abcdef';
const HEADER = 'Serial Number,Product Name,Input Image Urls';

t.test('with API_TOKEN, every route but /health and /docs needs the bearer token', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const service = await startService({ API_TOKEN: TOKEN });
  t.teardown(() => service.close());
  const get = (path: string, token?: string) =>
    fetch(`${service.url}${path}`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  t.equal((await get('/health')).status, 200, '/health stays open for probes');
  t.equal((await get('/docs/json')).status, 200, 'so does the API documentation');
  for (const path of [
    '/',
    '/ready',
    '/metrics',
    '/requests',
    `/status/${randomUUID()}`,
    `/status/${randomUUID()}/events`,
    `/download/${randomUUID()}`,
  ]) {
    const anonymous = await get(path);
    t.equal(anonymous.status, 401, `${path} without a token`);
    t.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
    t.match(await anonymous.json(), { error: /bearer token/i });
    t.equal((await get(path, 'wrong-token-0123456789abcdef')).status, 401, `${path}, wrong`);
    t.equal((await get(path, TOKEN.slice(0, -1))).status, 401, `${path}, a prefix of it`);
  }
  t.equal((await get('/ready', TOKEN)).status, 200);
  t.equal((await get(`/status/${randomUUID()}`, TOKEN)).status, 404, 'authorised, then routed');

  const form = new FormData();
  form.append(
    'file',
    new Blob([`${HEADER}\n1,a,${origin.url}/img/photo1.jpg\n`], { type: 'text/csv' }),
    'p.csv',
  );
  const refused = await fetch(`${service.url}/upload`, { method: 'POST', body: form });
  t.equal(refused.status, 401, 'uploads need the token');
  await sleep(100);
  t.equal(origin.hits('/img/photo1.jpg'), 0, 'a refused upload fetches nothing');

  const accepted = await fetch(`${service.url}/upload`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(accepted.status, 202);
  const { request_id: id } = (await accepted.json()) as { request_id: string };
  const status = await fetch(`${service.url}/status/${id}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(status.status, 200);
  await t.rejects(waitForStatus(service.url, id, 'COMPLETED', 300), 'polling without it fails');
});

t.test(
  'under memory pressure new uploads get 503 with Retry-After; the rest still works',
  async (t) => {
    // 1 MB of resident memory is always exceeded, so the service is under pressure at once.
    const service = await startService({ OVERLOAD_RSS_MB: '1' });
    t.teardown(() => service.close());
    // The first memory sample is taken shortly after start.
    for (let i = 0; i < 100 && !service.app.isUnderPressure(); i++) await sleep(50);
    const form = new FormData();
    form.append('file', new Blob([`${HEADER}\n1,a,http://127.0.0.1:9/x.jpg\n`]), 'p.csv');
    const upload = await fetch(`${service.url}/upload`, { method: 'POST', body: form });
    t.equal(upload.status, 503);
    t.equal(upload.headers.get('retry-after'), '10');
    t.match(await upload.json(), { error: /overloaded/ });
    const image = await uploadImage(service.url, await makePng(8, 8));
    t.equal(image.status, 503, 'a direct image upload too');
    t.equal(image.headers.get('retry-after'), '10');
    t.equal((await getJson(service.url, '/images')).status, 200, 'listing uploads is not');
    t.equal((await fetch(`${service.url}/health`)).status, 200);
    t.equal(
      (await fetch(`${service.url}/status/${randomUUID()}`)).status,
      404,
      'status still served',
    );
    t.same(await service.services.store.listUnfinishedJobs(), [], 'nothing was queued');
  },
);

t.test('without the pressure, the same upload is accepted', async (t) => {
  const service = await startService({ OVERLOAD_RSS_MB: '0' });
  t.teardown(() => service.close());
  const form = new FormData();
  form.append('file', new Blob([`${HEADER}\n1,a,http://127.0.0.1:9/x.jpg\n`]), 'p.csv');
  const upload = await fetch(`${service.url}/upload`, { method: 'POST', body: form });
  t.equal(upload.status, 202);
});
