import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Origin } from './origin.js';
import { sleep, type TapTest } from './service.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The package's bin, as `npm run build` leaves it. */
export const CLI = path.join(root, 'dist/bin.cjs');

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const { mtimeMs } = await fs.stat(path.join(entry.parentPath, entry.name));
    newest = Math.max(newest, mtimeMs);
  }
  return newest;
}

const BUILD_LOCK = path.join(root, '.tap', 'build.lock');
/** A lock older than this was left by a run that died mid-build. */
const STALE_LOCK_MS = 5 * 60_000;

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** The built CLI is newer than every source, and no build is under way. */
async function builtFresh(): Promise<boolean> {
  if (await exists(BUILD_LOCK)) return false;
  const built = await fs.stat(CLI).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  return built > (await newestMtime(path.join(root, 'src')));
}

/**
 * Runs `npm run build` unless dist/ is already newer than src/ (as after `npm ci`). Test
 * files that run at once build it once between them: one holds a lock directory while it
 * builds, the others wait for it, so none runs a binary that tsc is halfway through writing.
 */
export async function ensureBuilt(): Promise<void> {
  if (await builtFresh()) return;
  await fs.mkdir(path.dirname(BUILD_LOCK), { recursive: true });
  for (;;) {
    try {
      await fs.mkdir(BUILD_LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const lock = await fs.stat(BUILD_LOCK).catch(() => null);
    if (lock !== null && Date.now() - lock.mtimeMs > STALE_LOCK_MS) {
      await fs.rm(BUILD_LOCK, { recursive: true, force: true });
    }
    await sleep(200);
    if (await builtFresh()) return;
  }
  try {
    await promisify(execFile)('npm', ['run', 'build'], { cwd: root });
  } finally {
    await fs.rm(BUILD_LOCK, { recursive: true, force: true });
  }
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The developer's own IMAGE_BATCH_SERVER, API_TOKEN, PORT and HOST stay out of the tests. */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const name of ['IMAGE_BATCH_SERVER', 'API_TOKEN', 'PORT', 'HOST']) delete base[name];
  return { ...base, ...env };
}

/** Runs `node dist/bin.cjs ...args` to its end; stdin, stdout and stderr are not a terminal. */
export function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: cliEnv(env), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        if (err !== null && code === null) reject(err);
        else resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface Running {
  child: ChildProcess;
  /** Everything written so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves once `stream` has matched `pattern`; rejects if the process ends first. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<void>;
  exited: Promise<Run>;
}

/** Starts `command` and watches its output as it comes. */
export function start(command: string, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(command, args, { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = { stdout: '', stderr: '' };
  const waiters: Array<{ stream: 'stdout' | 'stderr'; pattern: RegExp; resolve: () => void }> = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(seen[waiter.stream])) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream].on('data', (chunk: Buffer) => {
      seen[stream] += chunk.toString();
      check();
    });
  }
  const exited = new Promise<Run>((resolve) => {
    child.on('close', (code) => resolve({ code, ...seen }));
  });
  return {
    child,
    output: () => ({ ...seen }),
    waitFor: (stream, pattern) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ stream, pattern, resolve });
        check();
        void exited.then(() =>
          reject(new Error(`exited before ${stream} matched ${pattern}: ${JSON.stringify(seen)}`)),
        );
      }),
    exited,
  };
}

/** An origin route that holds every request until `release()`: a job that stays mid-way. */
export function gate(origin: Origin, pathname: string): { release(): void } {
  const body = origin.fixtures['/img/photo3.jpg'];
  const waiting: ServerResponse[] = [];
  let open = false;
  const send = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(body.length) });
    res.end(body);
  };
  origin.add(pathname, (_req, res) => {
    if (open) send(res);
    else waiting.push(res);
  });
  return {
    release() {
      open = true;
      for (const res of waiting.splice(0)) send(res);
    },
  };
}

/** A temp dir removed at the end of the test. */
export async function tempDir(t: TapTest): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ibs-cli-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function writeCsv(dir: string, name: string, lines: string[]): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/** The id from submit's `Request id: …` line. */
export function requestId(stdout: string): string {
  const match = /^Request id: (\S+)$/m.exec(stdout);
  if (match?.[1] === undefined) throw new Error(`no request id in: ${stdout}`);
  return match[1];
}
