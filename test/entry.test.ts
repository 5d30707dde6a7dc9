import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort, spawnService, startTunables } from './helpers/service-process.js';

/**
 * libuv starts all its threadpool threads at once, on first use, so the size the built
 * entry point chose shows up as the difference in thread count between two otherwise
 * identical processes once each has done some threadpool work.
 */
const threads = (pid: number): number => fs.readdirSync(`/proc/${pid}/task`).length;

t.test(
  'the built entry sizes the threadpool from CONCURRENCY unless UV_THREADPOOL_SIZE is set',
  { skip: fs.existsSync('/proc/self/task') ? false : 'needs /proc (Linux)' },
  async (t) => {
    t.ok(fs.existsSync('dist/main.cjs'), 'dist/main.cjs exists (npm ci and npm run build make it)');
    const counts: number[] = [];
    // Empty counts as unset, so a value in the test's own environment cannot leak in.
    for (const size of ['4', '']) {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-entry-'));
      t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
      const { child, url } = await spawnService(
        {
          UV_THREADPOOL_SIZE: size,
          PORT: String(await freePort()),
          CONCURRENCY: '12',
          DATA_DIR: path.join(root, 'data'),
          IMAGES_DIR: path.join(root, 'images'),
          RESULTS_DIR: path.join(root, 'results'),
          MONGODB_URI: '',
          LOG_LEVEL: 'silent',
        },
        { entry: 'dist' },
      );
      t.teardown(() => void child.kill('SIGKILL'));
      // A static file lookup is threadpool work (fs.stat): the pool exists after it.
      await fetch(`${url}/processed_images/none.jpg`);
      counts.push(threads(child.pid ?? 0));
      child.kill('SIGKILL');
    }
    const [explicit = 0, derived = 0] = counts;
    t.equal(derived - explicit, 12, 'CONCURRENCY 12 → 16 threads instead of the 4 asked for');
  },
);

t.test(
  'npm start gives node its malloc settings unless GLIBC_TUNABLES is set already',
  async (t) => {
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as {
      scripts: { start: string };
    };
    // npm runs a script with sh -c; a stand-in for node on the PATH reports what it was given.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-start-'));
    t.teardown(() => fs.rmSync(bin, { recursive: true, force: true }));
    fs.writeFileSync(path.join(bin, 'node'), '#!/bin/sh\nprintf "%s|%s" "$GLIBC_TUNABLES" "$*"\n', {
      mode: 0o755,
    });
    const run = (tunables?: string): string => {
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
      delete env.GLIBC_TUNABLES;
      if (tunables !== undefined) env.GLIBC_TUNABLES = tunables;
      return execFileSync('sh', ['-c', pkg.scripts.start], { env, encoding: 'utf8' });
    };
    t.equal(run(), `${startTunables()}|dist/main.cjs`, 'unset: the settings npm start names');
    t.match(
      startTunables(),
      /^glibc\.malloc\.mmap_threshold=\d+:glibc\.malloc\.trim_threshold=\d+$/,
    );
    t.equal(run('glibc.malloc.arena_max=2'), 'glibc.malloc.arena_max=2|dist/main.cjs', 'set: kept');
    t.equal(run(''), '|dist/main.cjs', 'set to nothing: no settings');
  },
);
