import { Writable } from 'node:stream';
import t from 'tap';
import { openEvents } from '../helpers/sse.js';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getJson,
  getProducts,
  productCsv,
  sleep,
  type StatusBody,
  startService,
  submit,
  waitForStatus,
} from '../helpers/service.js';
import { startWebhookReceiver } from '../helpers/webhook.js';

interface LogLine {
  level: number;
  msg: string;
  request_id?: string;
  raw: string;
}

t.test('every log line about a job carries its request_id', async (t) => {
  const lines: LogLine[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const raw of chunk.toString().split('\n')) {
        if (raw !== '') lines.push({ ...(JSON.parse(raw) as Omit<LogLine, 'raw'>), raw });
      }
      done();
    },
  });
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const receiver = await startWebhookReceiver();
  t.teardown(() => receiver.close());
  const service = await startService({}, { logTo: capture });
  t.teardown(() => service.close());
  const { url } = service;

  // Two jobs at once, so that lines about one cannot pass for lines about the other.
  const [a, b] = await Promise.all([
    submit(url, productCsv([[`${origin.url}/img/photo1.jpg`], [`${origin.url}/status/404`]]), {
      webhook_url: receiver.url,
    }),
    submit(url, productCsv([[`${origin.url}/img/pic.webp`]])),
  ]);
  const ids = [a.request_id, b.request_id];
  for (const id of ids) await waitForStatus(url, id);
  for (let i = 0; i < 400; i++) {
    const status = (await getJson(url, `/status/${a.request_id}`)).body as StatusBody;
    if (status.webhook?.status === 'DELIVERED') break;
    await sleep(25);
  }
  // Every other way of asking about a job, so that the request lines are covered too.
  for (const id of ids) {
    await getProducts(url, id);
    await downloadCsv(url, id);
    await (await openEvents(`${url}/status/${id}/events`)).rest();
  }
  const [output] = (await getProducts(url, a.request_id)).products[0]?.output_urls ?? [];
  t.equal((await fetchBytes(output ?? '')).res.status, 200, 'an output image was fetched');
  await service.close();

  t.ok(lines.length > 30, `${lines.length} lines were logged`);
  for (const line of lines) {
    const mentioned = ids.filter((id) => line.raw.includes(id));
    if (mentioned.length > 0) {
      t.strictSame(mentioned, [line.request_id], `"${line.msg}" names its job in request_id`);
    }
    if (line.request_id !== undefined) {
      t.ok(ids.includes(line.request_id), `"${line.msg}" names one of the jobs`);
    }
    t.notMatch(line.raw, /"requestId"/, 'one field name for the job, request_id');
  }

  const about = (id: string, msg: string) =>
    lines.filter((l) => l.request_id === id && l.msg === msg).length;
  for (const id of ids) {
    t.equal(about(id, 'job accepted'), 1, 'job accepted');
    t.equal(about(id, 'job completed'), 1, 'job completed');
    // The upload, /status polls, products, download and events requests.
    t.ok(about(id, 'incoming request') >= 4, 'incoming request lines');
    t.ok(about(id, 'request completed') >= 5, 'request completed lines, the upload included');
  }
  t.equal(about(a.request_id, 'image finished'), 2, 'both images of the first job');
  t.equal(about(b.request_id, 'image finished'), 1, 'the image of the second');
  t.equal(about(a.request_id, 'webhook attempt'), 1, 'the webhook call');
  const upload = lines.filter(
    (l) => l.msg === 'request completed' && /"statusCode":202/.test(l.raw),
  );
  t.strictSame(
    upload.map((l) => l.request_id).sort(),
    [...ids].sort(),
    "each upload's answer names the job it created",
  );
});
