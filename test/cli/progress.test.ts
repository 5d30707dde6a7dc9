import fc from 'fast-check';
import t from 'tap';
import type { JobStatus } from '../../src/cli/api.js';
import { defaultResultsPath } from '../../src/cli/commands/submit.js';
import { formatBytes, formatRejection, formatSaving } from '../../src/cli/format.js';
import {
  formatDuration,
  lineDue,
  type ProgressSnapshot,
  RateMeter,
  renderBar,
  renderLine,
  snapshot,
} from '../../src/cli/progress.js';

const running: ProgressSnapshot = {
  status: 'PROCESSING',
  done: 42,
  total: 100,
  failed: 3,
  percent: 42,
  rate: 12.5,
  etaSeconds: 4.64,
};

function status(processed: number, failed: number, total: number): JobStatus {
  const done = processed + failed;
  return {
    request_id: '0b7c2a7e-5f7e-4b1c-9a57-0d8c1f3e2a11',
    kind: 'csv',
    status: done === total ? 'COMPLETED' : 'PROCESSING',
    created_at: '2026-11-21T09:06:00.000Z',
    updated_at: '2026-11-21T09:06:01.000Z',
    completed_at: null,
    progress: {
      products_total: total,
      products_done: done,
      images_total: total,
      images_processed: processed,
      images_failed: failed,
      percent: Math.floor((done / total) * 1000) / 10,
    },
    download_url: null,
    webhook: null,
  };
}

t.test('the rate is images finished per second over the last window', async (t) => {
  const meter = new RateMeter(10_000);
  t.equal(meter.rate(), null, 'no samples, no rate');
  meter.add(0, 0);
  t.equal(meter.rate(), null, 'one sample, no rate');
  meter.add(1000, 5);
  meter.add(2000, 10);
  t.equal(meter.rate(), 5);
  for (let at = 3000; at <= 30_000; at += 1000) meter.add(at, 10 + (at - 2000) / 500);
  t.equal(meter.rate(), 2, 'the early pace has left the window');
  for (let at = 31_000; at <= 45_000; at += 1000) meter.add(at, 66);
  t.equal(meter.rate(), 0, 'a stall shows as zero once it fills the window');
});

t.test('a snapshot takes the counts from the status and the time left from the rate', async (t) => {
  t.match(snapshot(status(30, 10, 100), 20), {
    status: 'PROCESSING',
    done: 40,
    total: 100,
    failed: 10,
    percent: 40,
    rate: 20,
    etaSeconds: 3,
  });
  t.equal(snapshot(status(30, 10, 100), null).etaSeconds, null, 'no rate yet: unknown');
  t.equal(snapshot(status(30, 10, 100), 0).etaSeconds, null, 'stalled: unknown');
  t.equal(snapshot(status(99, 1, 100), null).etaSeconds, 0, 'nothing left: none');
});

t.test('durations read as seconds, minutes or hours', async (t) => {
  t.equal(formatDuration(0), '0s');
  t.equal(formatDuration(4.2), '5s', 'rounded up: never promises less than is left');
  t.equal(formatDuration(59), '59s');
  t.equal(formatDuration(185), '3m 05s');
  t.equal(formatDuration(3599), '59m 59s');
  t.equal(formatDuration(7620), '2h 07m');
});

t.test('the terminal bar', async (t) => {
  t.equal(
    renderBar(running, 120),
    'PROCESSING ████████████████░░░░░░░░░░░░░░░░░░░░░░░░  42.0%  42/100 images  3 failed  12.5 img/s  ETA 5s',
    'status, bar of 40, percent, counts, failures, rate, time left',
  );
  t.equal(
    renderBar(running, 100),
    'PROCESSING ████████████████░░░░░░░░░░░░░░░░░░░░░░░░  42.0%  42/100 images  3 failed  12.5 img/s',
    'details that do not fit go from the end',
  );
  t.equal(
    renderBar(running, 80),
    'PROCESSING ████████░░░░░░░░░░░░░  42.0%  42/100 images  3 failed  12.5 img/s',
    'the bar narrows with the terminal',
  );
  t.equal(
    renderBar(running, 60),
    'PROCESSING 42.0%  42/100 images  3 failed  12.5 img/s',
    'too narrow for a bar of 10: no bar',
  );
  t.equal(renderBar(running, 20), 'PROCESSING 42.0%  4', 'cut as a last resort');
  t.equal(
    renderBar({ ...running, percent: 100, done: 100, status: 'COMPLETED', etaSeconds: 0 }, 200),
    `COMPLETED  ${'█'.repeat(40)} 100.0%  100/100 images  3 failed`,
    'at most 40 cells; a finished job shows no rate or time left',
  );
  t.equal(
    renderBar({ ...running, percent: 0, done: 0, failed: 0, rate: null, etaSeconds: null }, 80),
    `PROCESSING ${'░'.repeat(21)}   0.0%  0/100 images`,
    'before any pace is known, only the counts',
  );
});

t.test('the bar keeps its width while a job moves', async (t) => {
  for (const columns of [72, 80, 100, 160]) {
    const widths = new Set<number>();
    for (let done = 0; done <= 1234; done += 7) {
      const failed = Math.floor(done / 10);
      const line = renderBar(
        snapshot(status(done - failed, failed, 1234), done === 0 ? null : 1 + (done % 97) / 3),
        columns,
      );
      widths.add(line.match(/[█░]+/)?.[0].length ?? 0);
    }
    t.equal(widths.size, 1, `at ${columns} columns: ${[...widths].join(', ')} cells`);
  }
});

t.test('the bar never reaches the last column, so a carriage return redraws it', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.option(fc.double({ min: 0, max: 1e6, noNaN: true })),
        (columns, a, b, rate) => {
          const total = Math.max(a, b, 1);
          const done = Math.min(a, b);
          const line = renderBar(snapshot(status(done, 0, total), rate), columns);
          return line.length <= Math.max(0, columns - 1) && !line.includes('\n');
        },
      ),
    ),
  );
});

t.test('log lines for output that is not a terminal', async (t) => {
  t.equal(renderLine(running), 'PROCESSING 42/100 images (42.0%), 3 failed, 12.5 img/s, ETA 5s');
  t.equal(
    renderLine({ ...running, status: 'COMPLETED', done: 100, percent: 100, etaSeconds: 0 }),
    'COMPLETED 100/100 images (100.0%), 3 failed',
  );
  t.equal(
    renderLine({
      ...running,
      status: 'PENDING',
      done: 0,
      failed: 0,
      percent: 0,
      rate: null,
      etaSeconds: null,
    }),
    'PENDING 0/100 images (0.0%)',
  );
});

t.test(
  'a log line is due on a change, at most once per interval, and always at the end',
  async (t) => {
    const first = { snapshot: running, at: 10_000 };
    const moved = { ...running, done: 43, percent: 43 };
    t.ok(lineDue(null, running, 0, 2000), 'the first state is always shown');
    t.notOk(lineDue(first, { ...running, rate: 99, etaSeconds: 1 }, 60_000, 2000), 'pace alone');
    t.notOk(lineDue(first, moved, 11_999, 2000), 'a change inside the interval waits');
    t.ok(lineDue(first, moved, 12_000, 2000), 'and is shown once the interval has passed');
    t.ok(lineDue(first, { ...running, status: 'FAILED' }, 10_001, 2000), 'the end at once');
    t.ok(lineDue(first, { ...moved, done: 100, status: 'COMPLETED' }, 10_001, 2000));
  },
);

t.test('sizes, savings, rejections and the results file name', async (t) => {
  t.equal(formatBytes(999), '999 B');
  t.equal(formatBytes(12_345), '12.3 kB');
  t.equal(formatBytes(4_500_000), '4.5 MB');
  t.equal(formatSaving(2_000_000, 500_000), '2.0 MB → 500.0 kB (1.5 MB saved, 75.0%)');
  t.equal(formatSaving(1000, 1500), '1.0 kB → 1.5 kB (500 B added, 50.0%)');
  t.equal(formatSaving(0, 0), '0 B → 0 B (0 B saved, 0.0%)');

  t.strictSame(
    formatRejection(
      {
        error: 'CSV rejected',
        details: [
          { row: 2, column: 'Input Image Urls', message: 'no image URL' },
          { row: 0, column: null, message: 'missing columns' },
          { row: null, column: 'max_width', message: 'must be a whole number' },
          { row: null, column: null, message: 'empty file' },
        ],
      },
      (field) => `--${field.replace('_', '-')}`,
    ),
    [
      'row 2, column "Input Image Urls": no image URL',
      'row 0: missing columns',
      '--max-width: must be a whole number',
      'empty file',
    ],
  );

  t.equal(defaultResultsPath('products.csv'), 'products.results.csv');
  t.equal(defaultResultsPath('/data/in/May.CSV'), '/data/in/May.results.csv');
  t.equal(defaultResultsPath('exports/list.txt'), 'exports/list.txt.results.csv');
});
