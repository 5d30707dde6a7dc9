import { readFile } from 'node:fs/promises';
import t from 'tap';
import { getJson, startService, timeout } from '../helpers/service.js';

const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
  name: string;
  version: string;
};

const service = await startService();
t.teardown(() => service.close());
const { url } = service;

t.test('GET /health', async (t) => {
  const res = await getJson(url, '/health');
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /application\/json/);
  t.same(res.body, { status: 'ok' });
});

t.test('GET /ready', async (t) => {
  const res = await getJson(url, '/ready');
  t.equal(res.status, 200);
  t.same(res.body, { status: 'ready', store: service.services.store.kind });
  t.match(service.services.store.kind, /^(embedded|mongodb)$/);
});

t.test('GET / names the service and links its endpoints', async (t) => {
  const res = await getJson(url, '/');
  t.equal(res.status, 200);
  t.match(res.body, {
    name: pkg.name,
    version: pkg.version,
    links: {
      upload: /POST \/upload/,
      status: /GET \/status\//,
      products: /GET \/status\/.*\/products/,
      download: /GET \/download\//,
      upload_image: /POST \/images$/,
      images: /GET \/images$/,
      image: /GET \/images\/\{id\}$/,
      thumbnail: /GET \/images\/\{id\}\/thumbnails\/\{size\}/,
      health: /GET \/health/,
      ready: /GET \/ready/,
    },
  });
});

t.test('unknown routes are 404 JSON', async (t) => {
  for (const [method, path] of [
    ['GET', '/nope'],
    ['GET', '/upload'],
    ['POST', '/status'],
    ['DELETE', '/health'],
  ] as const) {
    const res = await fetch(`${url}${path}`, { method, signal: timeout() });
    t.equal(res.status, 404, `${method} ${path} is 404`);
    t.match(res.headers.get('content-type'), /application\/json/);
    t.match(await res.json(), { error: new RegExp(`${method} ${path}`) });
  }
});

t.test('/ready is 503 when the store does not answer', async (t) => {
  const broken = await startService();
  t.teardown(() => broken.close());
  t.equal((await getJson(broken.url, '/ready')).status, 200, 'ready while the store is up');
  await broken.services.store.close();
  const res = await getJson(broken.url, '/ready');
  t.equal(res.status, 503);
  t.match(res.body, { status: 'unavailable', store: broken.services.store.kind, error: String });
  const health = await getJson(broken.url, '/health');
  t.equal(health.status, 200, '/health only says the process is up');
});
