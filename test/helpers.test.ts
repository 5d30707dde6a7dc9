import sharp from 'sharp';
import t from 'tap';
import { makeExifRotatedJpeg, makeJpeg, makePng, makeWebp } from './helpers/images.js';
import { type FixturePath, fixtureInfo, HTML_PAGE, startOrigin } from './helpers/origin.js';
import { startWebhookReceiver } from './helpers/webhook.js';

async function fetchBytes(url: string): Promise<{ res: Response; body: Buffer }> {
  const res = await fetch(url);
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

t.test('image generators', async (t) => {
  const big = await makeJpeg(1600, 1200, 5);
  t.ok(big.length > 200_000, `big JPEG does not compress trivially (${big.length} bytes)`);

  t.ok((await makeJpeg(64, 48, 9)).equals(await makeJpeg(64, 48, 9)), 'same seed, same bytes');
  t.notOk((await makeJpeg(64, 48, 9)).equals(await makeJpeg(64, 48, 10)), 'seed changes bytes');

  const png = await sharp(await makePng(40, 30)).metadata();
  t.match(png, { format: 'png', width: 40, height: 30, hasAlpha: true, channels: 4 });
  const opaque = await sharp(await makePng(40, 30, 1, false)).metadata();
  t.match(opaque, { format: 'png', hasAlpha: false, channels: 3 });
  const alphaStats = await sharp(await makePng(40, 30)).stats();
  const alphaChannel = alphaStats.channels[3];
  t.ok(alphaChannel && alphaChannel.min < alphaChannel.max, 'alpha channel varies');

  t.match(await sharp(await makeWebp(40, 30)).metadata(), {
    format: 'webp',
    width: 40,
    height: 30,
  });

  const rotated = await sharp(await makeExifRotatedJpeg(30, 20)).metadata();
  t.match(rotated, { format: 'jpeg', width: 30, height: 20, orientation: 6 });
  t.match(rotated.autoOrient, { width: 20, height: 30 }, 'auto-orientation swaps dimensions');
});

t.test('origin', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  t.match(origin.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  t.test('pre-registered images decode to the expected size and format', async (t) => {
    for (const [path, info] of Object.entries(fixtureInfo)) {
      const { res, body } = await fetchBytes(`${origin.url}${path}`);
      t.equal(res.status, 200, `${path} status`);
      t.equal(res.headers.get('content-type'), info.contentType, `${path} content-type`);
      t.ok(body.equals(origin.fixtures[path as FixturePath]), `${path} serves the fixture bytes`);
      const meta = await sharp(body).metadata();
      t.match(
        meta,
        { format: info.format, width: info.width, height: info.height },
        `${path} decodes`,
      );
      if (info.orientation !== undefined) {
        t.equal(meta.orientation, info.orientation, `${path} EXIF orientation`);
      }
    }
    const alpha = await sharp(origin.fixtures['/img/alpha.png']).metadata();
    t.equal(alpha.hasAlpha, true, 'PNG fixture has alpha');
    t.ok(
      origin.fixtures['/img/big.jpg'].length > origin.fixtures['/img/photo1.jpg'].length,
      'big.jpg is larger than photo1.jpg',
    );
  });

  t.test('error statuses and unknown paths', async (t) => {
    t.equal((await fetchBytes(`${origin.url}/status/404`)).res.status, 404);
    t.equal((await fetchBytes(`${origin.url}/status/500`)).res.status, 500);
    t.equal((await fetchBytes(`${origin.url}/nope`)).res.status, 404);
  });

  t.test('/html is a web page mislabelled as a JPEG', async (t) => {
    const { res, body } = await fetchBytes(`${origin.url}/html`);
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'image/jpeg');
    t.equal(body.toString('utf8'), HTML_PAGE);
    await t.rejects(sharp(body).metadata(), 'sharp cannot decode it');
  });

  t.test('/truncated.jpg is half a JPEG', async (t) => {
    const { res, body } = await fetchBytes(`${origin.url}/truncated.jpg`);
    t.equal(res.headers.get('content-type'), 'image/jpeg');
    t.equal(body.length, Math.floor(origin.fixtures['/img/photo1.jpg'].length / 2));
    await t.rejects(sharp(body).toBuffer(), 'full decode fails');
  });

  t.test('/slow never completes its body', async (t) => {
    const error = await t.rejects(async () => {
      const res = await fetch(`${origin.url}/slow`, { signal: AbortSignal.timeout(300) });
      await res.arrayBuffer();
    });
    t.ok(error instanceof Error && /Abort|Timeout/.test(error.name), 'aborted by the timeout');
  });

  t.test('hits and add', async (t) => {
    const before = origin.hits('/img/photo2.jpg');
    await fetchBytes(`${origin.url}/img/photo2.jpg`);
    await fetchBytes(`${origin.url}/img/photo2.jpg?v=2`);
    t.equal(origin.hits('/img/photo2.jpg'), before + 2, 'counted by pathname');
    t.equal(origin.hits('/never'), 0);

    origin.add('/custom', {
      body: Buffer.from('hello'),
      contentType: 'text/plain',
      status: 201,
      headers: { 'X-Test': 'yes' },
    });
    const custom = await fetchBytes(`${origin.url}/custom`);
    t.equal(custom.res.status, 201);
    t.equal(custom.res.headers.get('x-test'), 'yes');
    t.equal(custom.body.toString(), 'hello');

    origin.add('/handler', (req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`method=${req.method}`);
    });
    t.equal((await fetchBytes(`${origin.url}/handler`)).body.toString(), 'method=GET');

    origin.add('/throws', () => {
      throw new Error('boom');
    });
    t.equal((await fetchBytes(`${origin.url}/throws`)).res.status, 500);
  });
});

t.test('origin close() does not hang on a stalled request', async (t) => {
  const origin = await startOrigin();
  const pending = fetch(`${origin.url}/slow`).then((res) => res.arrayBuffer());
  pending.catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 50));
  await origin.close();
  await t.rejects(pending, 'in-flight body is cut off');
  await origin.close();
  t.pass('close is idempotent');
});

t.test('webhook receiver', async (t) => {
  const hook = await startWebhookReceiver();
  t.teardown(() => hook.close());

  const res = await fetch(hook.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Signature': 'abc' },
    body: JSON.stringify({ requestId: 'r1', status: 'completed' }),
  });
  t.equal(res.status, 200);
  await res.arrayBuffer();

  const deliveries = await hook.waitFor(1, 1000);
  t.equal(deliveries.length, 1);
  t.same(hook.received[0]?.body, { requestId: 'r1', status: 'completed' });
  t.equal(hook.received[0]?.headers['x-signature'], 'abc');
  t.equal(hook.received[0]?.method, 'POST');

  const later = hook.waitFor(2, 2000);
  await fetch(hook.url, { method: 'POST', body: 'not json' }).then((r) => r.arrayBuffer());
  t.equal((await later).length, 2, 'waitFor resolves when the count is reached');
  t.equal(hook.received[1]?.body, 'not json', 'non-JSON bodies are kept as strings');

  await t.rejects(hook.waitFor(5, 100), /expected at least 5 deliveries within 100 ms, got 2/);

  hook.setStatus(503);
  const failing = await fetch(hook.url, { method: 'POST', body: '{}' });
  t.equal(failing.status, 503);
  await failing.arrayBuffer();
});

t.test('webhook receiver with a configured status', async (t) => {
  const hook = await startWebhookReceiver({ status: 500 });
  t.teardown(() => hook.close());
  const res = await fetch(hook.url, { method: 'POST', body: '{"a":1}' });
  t.equal(res.status, 500);
  await res.arrayBuffer();
  t.same(
    (await hook.waitFor(1)).map((d) => d.body),
    [{ a: 1 }],
  );
});
