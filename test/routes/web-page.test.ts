import { existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startService, timeout } from '../helpers/service.js';
import { WEB_DIR } from '../../src/web-page.js';

const TOKEN = 'test-token-0123456789abcdef';
const CHROME_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,' +
  '*/*;q=0.8,application/signed-exchange;v=b3;q=0.7';

if (!existsSync(path.join(WEB_DIR, 'index.html'))) {
  t.fail(`the web page is not built in ${WEB_DIR}: run npm run build:web (scripts/test.sh does)`);
}

const get = (url: string, headers: Record<string, string> = {}) =>
  fetch(url, { headers, signal: timeout() });

t.test('GET / answers browsers with the page and everyone else with JSON', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());

  for (const accept of [CHROME_ACCEPT, 'text/html', 'application/json;q=0.5, text/html']) {
    const res = await get(`${service.url}/`, { accept });
    t.equal(res.status, 200, accept);
    t.match(res.headers.get('content-type'), /^text\/html; charset=utf-8/, accept);
    t.equal(res.headers.get('vary'), 'accept');
    t.match(res.headers.get('content-security-policy'), /default-src 'self'/);
    const html = await res.text();
    t.match(html, /<title>Image batch service<\/title>/);
    t.match(html, /<script type="module" src="app\/main\.js"><\/script>/);
    t.match(html, /<link rel="stylesheet" href="app\/app\.css"/);
  }

  for (const accept of [
    undefined,
    '*/*',
    'application/json',
    'application/json, text/html',
    'text/html;q=0.5, application/json',
    'text/html;q=0, */*',
  ]) {
    const res = await get(`${service.url}/`, accept === undefined ? {} : { accept });
    t.equal(res.status, 200, String(accept));
    t.match(res.headers.get('content-type'), /^application\/json/, String(accept));
    t.equal(res.headers.get('vary'), 'accept');
    t.match(await res.json(), { name: 'image-batch-service', links: { upload: 'POST /upload' } });
  }
});

t.test('the page assets are served from /app/, and nothing outside it', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());

  const script = await get(`${service.url}/app/main.js`);
  t.equal(script.status, 200);
  t.match(script.headers.get('content-type'), /javascript/);
  t.match(await script.text(), /status\//, 'the bundle calls the status API');
  t.ok(script.headers.get('etag'), 'revalidated by ETag');

  const styles = await get(`${service.url}/app/app.css`);
  t.equal(styles.status, 200);
  t.match(styles.headers.get('content-type'), /text\/css/);

  for (const outside of ['/app/../package.json', '/app/%2e%2e/package.json', '/app/nope.js']) {
    const res = await get(`${service.url}${outside}`);
    t.not(res.status, 200, outside);
    t.notMatch(await res.text(), /"dependencies"/, `${outside} leaks nothing`);
  }
});

t.test('with API_TOKEN, the page and its assets need no token; the data still does', async (t) => {
  const service = await startService({ API_TOKEN: TOKEN });
  t.teardown(() => service.close());

  const page = await get(`${service.url}/`, { accept: CHROME_ACCEPT });
  t.equal(page.status, 200, 'the page');
  t.match(await page.text(), /Image batch service/);
  for (const asset of ['/app/main.js', '/app/app.css']) {
    t.equal((await get(`${service.url}${asset}`)).status, 200, asset);
  }

  const index = await get(`${service.url}/`, { accept: 'application/json' });
  t.equal(index.status, 401, 'the JSON index needs the token');
  const authorised = await get(`${service.url}/`, {
    accept: 'application/json',
    authorization: `Bearer ${TOKEN}`,
  });
  t.equal(authorised.status, 200);
  t.match(await authorised.json(), { name: 'image-batch-service' });

  for (const data of [
    '/processed_images/x/1-1.jpg',
    '/status/00000000-0000-4000-8000-000000000000',
  ]) {
    t.equal((await get(`${service.url}${data}`, { accept: CHROME_ACCEPT })).status, 401, data);
  }
});
