/**
 * `image-batch status`, `serve`, tokens and a missing service: the built binary in a process
 * of its own, against the real service over HTTP on 127.0.0.1.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import { CLI, cli, ensureBuilt, requestId, start, tempDir, writeCsv } from '../helpers/cli.js';
import { startOrigin } from '../helpers/origin.js';
import { getJson, startService } from '../helpers/service.js';
import { freePort } from '../helpers/service-process.js';

const TOKEN = 'cli-test-token-0123456789';

t.before(ensureBuilt);

t.test('status: people, --json, and unknown or malformed ids', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const service = await startService();
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'p.csv', [
    'Serial Number,Product Name,Input Image Urls',
    `1,One,${origin.url}/img/photo1.jpg`,
  ]);
  const port = new URL(service.url).port;
  const submitted = await cli(['submit', file, '--wait'], { PORT: port });
  t.equal(submitted.code, 0, 'no --server: http://127.0.0.1:$PORT');
  const id = requestId(submitted.stdout);

  const human = await cli(['status', id, '--server', service.url]);
  t.equal(human.code, 0);
  t.match(human.stdout, new RegExp(`^Request +${id}$`, 'm'));
  t.match(human.stdout, /^Status +COMPLETED$/m);
  t.match(human.stdout, /^Images +1 processed, 0 failed, of 1 \(100\.0%\)$/m);
  t.match(human.stdout, new RegExp(`^Results +${service.url}/download/${id}$`, 'm'));

  const json = await cli(['status', id, '--json', '--server', service.url]);
  t.equal(json.code, 0);
  t.strictSame(JSON.parse(json.stdout), (await getJson(service.url, `/status/${id}`)).body);

  const unknown = randomUUID();
  const missing = await cli(['status', unknown, '--server', service.url]);
  t.equal(missing.code, 1);
  t.equal(missing.stderr, `image-batch: no request ${unknown} at ${service.url}\n`);

  const malformed = await cli(['status', 'not-an-id', '--server', service.url]);
  t.equal(malformed.code, 2);
  t.match(malformed.stderr, '"not-an-id" is not a request id');
});

t.test('a service that is not there: exit 1 and what to do', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'p.csv', [
    'Serial Number,Product Name,Input Image Urls',
    '1,One,http://127.0.0.1:9/a.jpg',
  ]);
  const down = `http://127.0.0.1:${await freePort()}`;
  for (const args of [
    ['submit', file, '--wait', '--server', down],
    ['status', randomUUID(), '--server', down],
  ]) {
    const run = await cli(args);
    t.equal(run.code, 1, args.join(' '));
    t.match(run.stderr, `image-batch: cannot reach the service at ${down} (`);
    t.match(run.stderr, 'ECONNREFUSED');
    t.match(run.stderr, "Start it with 'image-batch serve'");
  }
});

t.test('with API_TOKEN the token comes from --token or the environment', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const service = await startService({ API_TOKEN: TOKEN });
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'p.csv', [
    'Serial Number,Product Name,Input Image Urls',
    `1,One,${origin.url}/img/photo1.jpg`,
  ]);

  const refused = await cli(['submit', file, '--wait', '--server', service.url]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, 'the service refused the request (401): Missing or invalid bearer token');
  t.match(refused.stderr, '--token, or the API_TOKEN variable');
  t.equal(origin.hits('/img/photo1.jpg'), 0, 'nothing was fetched');

  const wrong = await cli([
    'status',
    randomUUID(),
    '--server',
    service.url,
    '--token',
    'x'.repeat(20),
  ]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, '(401)');

  const flagged = await cli(['submit', file, '--wait', '--server', service.url, '--token', TOKEN]);
  t.equal(flagged.code, 0, `--token: ${flagged.stderr}`);
  t.match(flagged.stdout, '1 processed, 0 failed');
  const fromEnv = await cli(['status', requestId(flagged.stdout), '--server', service.url], {
    API_TOKEN: TOKEN,
  });
  t.equal(fromEnv.code, 0, `API_TOKEN: ${fromEnv.stderr}`);
  t.match(fromEnv.stdout, /^Status +COMPLETED$/m);
});

t.test('serve starts the service, answers /health, and exits 0 on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  const port = await freePort();
  const run = start(process.execPath, [CLI, 'serve', '--port', String(port)], {
    DATA_DIR: path.join(dir, 'data'),
    IMAGES_DIR: path.join(dir, 'images'),
    RESULTS_DIR: path.join(dir, 'results'),
    LOG_LEVEL: 'info',
    MONGODB_URI: '',
  });
  t.teardown(() => run.child.kill('SIGKILL'));
  await run.waitFor('stdout', /"msg":"service ready"/);
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  t.equal(health.status, 200);
  t.strictSame(await health.json(), { status: 'ok' });
  const index = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { name: string };
  t.equal(index.name, 'image-batch-service', 'the real service');
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  t.equal(code, 0);
  t.match(run.output().stdout, /"signal":"SIGTERM".*"msg":"shutting down"/);
});
