/**
 * `image-batch submit`, the built binary in a process of its own, against the real service
 * over HTTP and a real image origin, both on 127.0.0.1.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import {
  CLI,
  cli,
  ensureBuilt,
  gate,
  requestId,
  start,
  tempDir,
  writeCsv,
} from '../helpers/cli.js';
import { startOrigin } from '../helpers/origin.js';
import {
  fetchBytes,
  getJson,
  parseCsv,
  splitOutputs,
  startService,
  type StatusBody,
} from '../helpers/service.js';

/** A progress line for output that is not a terminal, as `renderLine` writes it. */
const PROGRESS_LINE =
  /^(PENDING|PROCESSING|COMPLETED|FAILED) \d+\/\d+ images \(\d+\.\d%\)(, \d+ failed)?(, [\d.]+ img\/s)?(, ETA [\dhms ]+)?$/;
/** `script` (util-linux) runs the binary under a pseudo-terminal, as a person would. */
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((candidate) => existsSync(candidate));

t.before(ensureBuilt);

t.test('submit --wait saves a results CSV that lines up with the input', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const service = await startService();
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const input = [
    'S. No.,Product Name,Input Image Urls,Brand',
    `1,Linen shirt,"${origin.url}/img/photo1.jpg, ${origin.url}/img/big.jpg",Acme`,
    `2,Canvas bag,${origin.url}/img/alpha.png,"Acme, Inc."`,
    `3,Sun hat,${origin.url}/img/photo1.jpg,Zed`,
  ];
  const file = await writeCsv(dir, 'products.csv', input);

  const run = await cli(
    ['submit', file, '--wait', '--quality', '40', '--format', 'webp', '--max-width', '300'],
    { IMAGE_BATCH_SERVER: service.url },
  );
  t.equal(run.code, 0, `exit 0 when every image is processed: ${run.stderr}`);
  const id = requestId(run.stdout);
  t.match(run.stdout, 'Submitted');
  t.match(run.stdout, '3 products, 3 images', 'a repeated URL is one image');
  t.match(run.stdout, /^COMPLETED in \d+s: 3 images, 3 processed, 0 failed$/m);
  t.match(run.stdout, /^Size: [\d.]+ [kM]B → [\d.]+ kB \([\d.]+ [kM]B saved, [\d.]+%\)$/m);
  const out = path.join(dir, 'products.results.csv');
  t.match(run.stdout, `Results CSV: ${out}`, 'beside the input by default');
  t.equal(((await getJson(service.url, `/status/${id}`)).body as StatusBody).status, 'COMPLETED');

  const [inputRows, results] = await Promise.all([
    parseCsv(input.join('\n')),
    fs.readFile(out, 'utf8').then(parseCsv),
  ]);
  t.strictSame(results[0], [...(inputRows[0] ?? []), 'Output Image Urls', 'Errors']);
  t.equal(results.length, inputRows.length, 'one results row per input row');
  for (let i = 1; i < inputRows.length; i++) {
    const source = inputRows[i] ?? [];
    const row = results[i] ?? [];
    t.strictSame(row.slice(0, source.length), source, `row ${i} keeps its cells in order`);
    const inputs = (source[2] ?? '').split(',');
    const outputs = splitOutputs(row[source.length] ?? '');
    t.equal(outputs.length, inputs.length, `row ${i}: one output per input URL`);
    t.equal(row[source.length + 1], '', `row ${i}: no errors`);
    for (const url of outputs) {
      const { res, body } = await fetchBytes(url);
      t.equal(res.status, 200, `${url} is served`);
      const meta = await sharp(body).metadata();
      t.equal(meta.format, 'webp', 'in the format asked for');
      t.ok((meta.width ?? Infinity) <= 300, 'within --max-width');
    }
  }
  t.equal(results[1]?.[4]?.split(', ')[0], results[3]?.[4], 'the repeated URL, one output');
});

t.test('without a terminal, progress is one line per change, ending with the result', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const held = gate(origin, '/held.jpg');
  // The held image must not time out while the test waits for the line that shows it pending.
  const service = await startService({ DOWNLOAD_TIMEOUT_MS: '120000' });
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'p.csv', [
    'Serial Number,Product Name,Input Image Urls',
    `1,Ready,${origin.url}/img/photo1.jpg`,
    `2,Held,${origin.url}/held.jpg`,
  ]);

  const run = start(process.execPath, [CLI, 'submit', file, '--wait', '--server', service.url]);
  t.teardown(() => run.child.kill('SIGKILL'));
  await run.waitFor('stderr', /^PROCESSING 1\/2 images \(50\.0%\)/m);
  held.release();
  const { code, stderr } = await run.exited;
  t.equal(code, 0);
  const lines = stderr.trimEnd().split('\n');
  for (const line of lines) t.match(line, PROGRESS_LINE, `a progress line: ${line}`);
  t.equal(lines.at(-1), 'COMPLETED 2/2 images (100.0%)', 'the final state is always shown');
  const counts = lines.map((line) => line.replace(/,.*$/, ''));
  t.strictSame(counts, [...new Set(counts)], 'a line only when something changed');
  t.notOk(stderr.includes('\r'), 'no carriage returns in a log');
});

/** ANSI erase to end of line, escaped for a RegExp. */
const ERASE_LINE = String.raw`\x1b\[K`;

t.test(
  'on a terminal the bar is redrawn in place',
  { skip: SCRIPT === undefined && 'script(1) is not installed' },
  async (t) => {
    const script = SCRIPT ?? 'script';
    const origin = await startOrigin();
    t.teardown(() => origin.close());
    const held = gate(origin, '/held.jpg');
    const service = await startService({ DOWNLOAD_TIMEOUT_MS: '120000' });
    t.teardown(() => service.close());
    const dir = await tempDir(t);
    const file = await writeCsv(dir, 'p.csv', [
      'Serial Number,Product Name,Input Image Urls',
      `1,Ready,"${origin.url}/img/photo1.jpg, ${origin.url}/img/photo2.jpg"`,
      `2,Held,${origin.url}/held.jpg`,
    ]);

    const command = [process.execPath, CLI, 'submit', file, '--wait', '--server', service.url]
      .map((word) => `'${word.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const run = start(script, ['-qfec', command, '/dev/null']);
    t.teardown(() => run.child.kill('SIGKILL'));
    await run.waitFor('stdout', /\rPROCESSING [█░]+ +66\.6% {2}2\/3 images/);
    held.release();
    const { code, stdout } = await run.exited;
    t.equal(code, 0, 'script passes the exit code on');
    const redraws = stdout
      .split('\r')
      .filter((part) => /^(PENDING|PROCESSING|COMPLETED) /.test(part));
    t.ok(redraws.length >= 2, `the bar was drawn ${redraws.length} times on one line`);
    t.ok(
      redraws.every((part) => part.split('\n')[0]?.includes('\x1b[K')),
      'each draw erases what a longer one left behind',
    );
    t.match(
      stdout,
      new RegExp(String.raw`\rCOMPLETED {2}█+ 100\.0% {2}3/3 images${ERASE_LINE}\r\n`),
      'a full bar, then a new line',
    );
    t.match(stdout, /COMPLETED in \d+s: 3 images, 3 processed, 0 failed/);
  },
);

t.test('some images failed: exit 3, the failures listed, results where --out says', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const service = await startService();
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'in.csv', [
    'Serial Number,Product Name,Input Image Urls',
    `1,Good,${origin.url}/img/photo1.jpg`,
    `2,Gone,"${origin.url}/img/photo2.jpg, ${origin.url}/status/404"`,
  ]);
  const out = path.join(dir, 'elsewhere', 'out.csv');
  await fs.mkdir(path.dirname(out));

  const run = await cli(['submit', file, '--wait', '--out', out, '--server', service.url]);
  t.equal(run.code, 3);
  t.match(run.stdout, /^COMPLETED in \d+s: 3 images, 2 processed, 1 failed$/m);
  t.match(run.stdout, `Failed images (1):\n  row 2: ${origin.url}/status/404: HTTP 404`);
  t.match(run.stdout, `Results CSV: ${out}`);
  const rows = await fs.readFile(out, 'utf8').then(parseCsv);
  t.equal(rows.length, 3);
  t.match(rows[2]?.[3], /^http:\/\/127\.0\.0\.1:\d+\/processed_images\/.+, $/, 'empty slot');
  t.match(rows[2]?.[4], `${origin.url}/status/404: HTTP 404 from image server`);
  t.notOk(existsSync(path.join(dir, 'in.results.csv')), 'nothing at the default path');
});

t.test('a rejected CSV or option is listed by row and column, exit 2', async (t) => {
  const service = await startService();
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'bad.csv', [
    'Serial Number,Product Name,Input Image Urls',
    '1,Fine,http://127.0.0.1:9/a.jpg',
    '2,Odd,ftp://example.com/b.jpg',
    '3,Empty,',
  ]);

  const run = await cli(['submit', file, '--wait', '--server', service.url]);
  t.equal(run.code, 2);
  t.equal(run.stdout, '', 'no request id: no job was created');
  t.equal(
    run.stderr,
    `image-batch: the service rejected ${file}: CSV rejected: 2 problems found\n` +
      '  row 2, column "Input Image Urls": only http and https URLs can be fetched, not ftp:\n' +
      '  row 3, column "Input Image Urls": no image URL\n',
  );
  t.notOk(existsSync(path.join(dir, 'bad.results.csv')));

  const good = await writeCsv(dir, 'good.csv', [
    'Serial Number,Product Name,Input Image Urls',
    '1,Fine,http://127.0.0.1:9/a.jpg',
  ]);
  const option = await cli(['submit', good, '--quality', '0', '--server', service.url]);
  t.equal(option.code, 2);
  t.match(option.stderr, '  --quality: must be a whole number from 1 to 100 (got "0")');

  // Under MAX_ROWS (1,000 in the tests), over MAX_CSV_BYTES (256 KiB).
  const rows = Array.from(
    { length: 400 },
    (_, i) => `${i + 1},Item ${i + 1} ${'x'.repeat(800)},http://127.0.0.1:9/${i}.jpg`,
  );
  const big = await writeCsv(dir, 'big.csv', [
    'Serial Number,Product Name,Input Image Urls',
    ...rows,
  ]);
  const tooLarge = await cli(['submit', big, '--server', service.url]);
  t.equal(tooLarge.code, 2, 'a CSV over MAX_CSV_BYTES (413) is rejected input too');
  t.match(tooLarge.stderr, /rejected .*big\.csv: CSV is larger than \d+ bytes \(MAX_CSV_BYTES\)/);
});

t.test('Ctrl-C while waiting leaves the job running and says how to follow it', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const held = gate(origin, '/held.jpg');
  const service = await startService({ DOWNLOAD_TIMEOUT_MS: '120000' });
  t.teardown(() => service.close());
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'p.csv', [
    'Serial Number,Product Name,Input Image Urls',
    `1,Held,${origin.url}/held.jpg`,
  ]);

  const run = start(process.execPath, [CLI, 'submit', file, '--wait', '--server', service.url]);
  t.teardown(() => run.child.kill('SIGKILL'));
  await run.waitFor('stderr', /^(PENDING|PROCESSING) 0\/1 images/m);
  run.child.kill('SIGINT');
  const { code, stdout, stderr } = await run.exited;
  t.equal(code, 130);
  const id = requestId(stdout);
  t.match(stderr, `Stopped waiting; the job goes on. Follow it with: image-batch status ${id}`);
  held.release();
  const status = (await getJson(service.url, `/status/${id}`)).body as StatusBody;
  t.not(status.status, 'FAILED', 'the job itself was not touched');
});
