/**
 * The benchmark (`npm run bench`; quick mode: `npm run bench -- --quick` or BENCH_QUICK=1).
 *
 * In one run, for the embedded store and then (when MONGODB_URI is set) for MongoDB:
 *   1. a separate origin process (scripts/bench-origin.ts) serves a deterministic pool of 20
 *      photo-like images (16 JPEG 1600×1200, 4 PNG 800×600 with alpha) under distinct URLs;
 *   2. ceiling: the service's own `transformImage` (JPEG q50) on the same bytes, in a tight
 *      in-process loop at 1, 2, 4 and 8 in flight; the fastest level is then measured
 *      afresh, and again after each end-to-end job;
 *   3. end-to-end: the real service (dist/main.cjs, fresh data dirs; for MongoDB a fresh
 *      database, dropped afterwards), warmed up by a job with every pool image once as the
 *      ceiling is, gets a CSV of 300 products × 3 images; images/s from the 202 to
 *      COMPLETED. Done three times (C E C E C E C): ceiling = the mean, over the jobs, of
 *      the measurements just before and after each; ratio = mean e2e / that ceiling;
 *   4. /status polled during those jobs, one request at a time, one every 50 ms: p50/p99;
 *   5. a fresh service gets a 100,000-row CSV (one 64×64 JPEG URL each): time to the 202,
 *      and the service's peak RSS (VmHWM, plus VmRSS sampled every 200 ms) until the job
 *      completes or the observation window ends, whichever is first (the table says which:
 *      the whole 100,000-image job takes minutes, beyond the 5-minute budget).
 * Each phase also reports where the machine's CPU went (service, its main thread, origin,
 * bench, a local MongoDB server, and other processes: noise when not near 0), and the
 * end-to-end phase the codec's share of the CPU spent per image (codecShare).
 *
 * Output (stdout): one table per store as it finishes, then one JSON line per store, the
 * embedded store's first; the very last line is the last store's JSON. Progress goes to
 * stderr. Settings the service reads (CONCURRENCY, PER_HOST_CONCURRENCY,
 * UV_THREADPOOL_SIZE...) pass through from the environment.
 *
 * Knobs: BENCH_QUICK=1 | --quick; BENCH_STAGES=ceiling,e2e,rows (default all);
 * BENCH_ROWS_WINDOW_S (longest observation of the many-rows job: 30 s, quick 15 s);
 * BENCH_BUDGET_S (the run's time budget, build excluded, that shortens that window:
 * 260 s, quick 50 s); BENCH_POLL_INTERVAL_MS (one /status poll starts every this many ms,
 * or right after the previous answer when that took longer; default 50, 0 = back to back);
 * BENCH_CPU_PROFILE_DIR (CPU-profile every service process there, through
 * scripts/bench-cpu-profile.mjs; summarise with scripts/bench-profile.ts);
 * BENCH_SERVICE_NODE_OPTIONS (NODE_OPTIONS for the service processes only);
 * BENCH_KEEP=1 keeps the services' temp dirs; BENCH_ORIGIN_LATENCY_MS holds each image
 * answer back that long (a remote image server; scripts/bench-origin.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import cores from '../src/cores.cjs';
import { transformImage } from '../src/pipeline/transform.js';
import type { TransformOptions } from '../src/store/job-store.js';
import { freePort, type ServiceProcess, spawnService } from '../test/helpers/service-process.js';

const loadAtStart = os.loadavg()[0]?.toFixed(2) ?? '?';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ------------------------------------------------------------------ settings

const quick = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick');
const SIZES = quick
  ? {
      products: 30,
      perProduct: 3,
      rows: 2000,
      ceilingImages: 40,
      ceilingSampleImages: 40,
      rowsWindowS: 15,
      e2eTimeoutS: 60,
    }
  : {
      products: 300,
      perProduct: 3,
      rows: 100_000,
      /** Per level, to choose the fastest: ~3 s each. */
      ceilingImages: 200,
      /**
       * Per measurement of the chosen level around the jobs: ~10 s each, so that one spans
       * about as much of the machine's drift as half a job does (a 3-s measurement moved by
       * up to 10% from the next one).
       */
      ceilingSampleImages: 600,
      rowsWindowS: 30,
      e2eTimeoutS: 180,
    };
const ROWS_WINDOW_S = positiveNumber('BENCH_ROWS_WINDOW_S', SIZES.rowsWindowS);
/**
 * Seconds the whole run may take (the build before it excluded). When a store is too slow
 * for it (FerretDB can take minutes to accept 100,000 rows, or to finish the end-to-end
 * job), its end-to-end wait, its many-rows upload and its observation window are cut short
 * so that the run still ends in time; the table and the JSON then say what was cut.
 */
const BUDGET_S = positiveNumber('BENCH_BUDGET_S', quick ? 50 : 260);
const MIN_WINDOW_S = 10;
const benchStarted = performance.now();
const secondsLeft = (): number => BUDGET_S - (performance.now() - benchStarted) / 1000;
/**
 * /status is polled on a fixed schedule, not back to back: polled back to back, the
 * poller's load (its own CPU and the service's, on the same two cores as the encoders)
 * grew as the latency it measures shrank. With CONCURRENCY=4, /status p50 fell from
 * ~8.5 ms to ~1 ms, so 10,000 polls were made instead of 2,100 and the job ran at 36
 * instead of 42 img/s. Each poll costs the machine ~2 ms of CPU while the encoders keep
 * both cores busy (service main thread 5.0 / 3.9 / 3.6 ms per image, poller 1.7 / 0.8 /
 * 0.3 ms, polling every 20 / 50 / 200 ms), so 20 polls a second: ~400 latency samples
 * over the job, and twenty times what a client polling every second would ask.
 */
const POLL_INTERVAL_MS = positiveNumber('BENCH_POLL_INTERVAL_MS', 50);
const STAGES = new Set(
  (process.env.BENCH_STAGES ?? 'ceiling,e2e,rows').split(',').map((s) => s.trim()),
);
const CEILING_LEVELS = [1, 2, 4, 8];
/**
 * End-to-end jobs per store, each followed by the ceiling measured again. This machine's
 * speed drifts by 10–20% within tens of seconds (other tenants of the host), so a single
 * job against one ceiling before and one after moved the ratio by ±0.07 between runs of
 * the same code. Two jobs, each set against the ceiling measured right around it, still
 * gave 0.76–0.87 in six runs of one build; three, each ~20 s, cut the weight of any one
 * measurement by a third again.
 */
const E2E_JOBS = 3;
const TRANSFORM: TransformOptions = {
  quality: 50,
  format: 'jpeg',
  maxWidth: null,
  maxHeight: null,
  thumbnails: [],
};
/** MAX_IMAGE_PIXELS's default: the same limit the service passes to transformImage. */
const MAX_PIXELS = 100_000_000;

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number ≥ 0`);
  return value;
}

const progress = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};

// ------------------------------------------------------------------ child processes

/** Every process we started, so that a failing run does not leave any behind. */
const children = new Set<ChildProcess>();

function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killChildren();
    process.exit(130);
  });
}

interface PoolEntry {
  index: number;
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  bytes: number;
}

interface OriginProcess {
  url: string;
  pool: PoolEntry[];
  smallBytes: number;
  child: ChildProcess;
}

async function startOrigin(): Promise<OriginProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'scripts/bench-origin.ts')],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.add(child);
  if (!child.stdout) throw new Error('origin has no stdout');
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`origin exited early (${code})`)));
  });
  const info = JSON.parse(first) as { port: number; pool: PoolEntry[]; smallBytes: number };
  return {
    url: `http://127.0.0.1:${info.port}`,
    pool: info.pool,
    smallBytes: info.smallBytes,
    child,
  };
}

async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const inTime = await Promise.race([
    exited.then(() => true),
    sleep(graceMs, undefined, { ref: false }).then(() => false),
  ]);
  if (!inTime) {
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

interface Memory {
  rssMb: number;
  hwmMb: number;
}

/** VmRSS and VmHWM (peak resident set) of a process, from /proc. */
function memoryOf(pid: number): Memory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** USER_HZ: /proc reports CPU time in these ticks (100 on every Linux build that matters). */
const TICKS_PER_S = 100;

/** A process (all its threads), or one thread of a process already counted. */
type CpuTarget = number | { thread: string };

/** CPU seconds a process has used so far, all its threads (libuv and libvips pools too). */
function cpuSecondsOf(target: CpuTarget): number {
  const dir = typeof target === 'number' ? `/proc/${target}` : target.thread;
  try {
    const stat = readFileSync(`${dir}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total CPU seconds of the whole machine so far, all cores. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy =
    (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy: busy / TICKS_PER_S, total: (busy + (idle ?? 0) + (iowait ?? 0)) / TICKS_PER_S };
}

/**
 * Where the machine's CPU went during one phase, in cores (CPU seconds per second): each of
 * our processes, and everything else on the machine, which is noise in the figures when
 * it is not near 0.
 */
interface CpuUse {
  cores: Record<string, number>;
  others: number;
  busyPercent: number;
}

function cpuMeter(pids: Record<string, CpuTarget>): () => CpuUse {
  const started = performance.now();
  const machine = machineCpu();
  const own = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSecondsOf(pid)]));
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const now = machineCpu();
    const cores: Record<string, number> = {};
    let ours = 0;
    for (const [name, pid] of Object.entries(pids)) {
      const used = cpuSecondsOf(pid) - (own[name] ?? 0);
      cores[name] = used / seconds;
      if (Number.isFinite(used) && typeof pid === 'number') ours += used;
    }
    const busy = now.busy - machine.busy;
    return {
      cores,
      others: Math.max(0, busy - ours) / seconds,
      busyPercent: (100 * busy) / (now.total - machine.total),
    };
  };
}

function cpuText(use: CpuUse): string {
  const parts = Object.entries(use.cores).map(([name, cores]) => `${name} ${fmt(cores, 2)}`);
  return `${parts.join(', ')}, other processes ${fmt(use.others, 2)} (machine ${fmt(use.busyPercent, 0)}% busy)`;
}

/**
 * The process listening on a local TCP port (the MongoDB server, when it runs on this
 * machine), from /proc/net/tcp{,6} and the processes' open sockets; null when not found.
 */
function listenerPid(port: number): number | null {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const localPort = parseInt(cols[1]?.split(':')[1] ?? '', 16);
      if (localPort === port && cols[3] === '0A' && cols[9]) inodes.add(`socket:[${cols[9]}]`);
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry);
      }
    } catch {
      // Gone, or not ours to look into.
    }
  }
  return null;
}

// ------------------------------------------------------------------ HTTP

const agent = new Agent({ keepAliveTimeout: 30_000, connections: 4 });

async function getJson<T>(url: string): Promise<{ statusCode: number; body: T }> {
  const res = await request(url, { dispatcher: agent });
  return { statusCode: res.statusCode, body: (await res.body.json()) as T };
}

interface Accepted {
  request_id: string;
  products: number;
  images: number;
  status_url: string;
}

interface StatusBody {
  status: 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'FAILED';
  progress: { images_total: number; images_processed: number; images_failed: number };
}

interface ProductsBody {
  total: number;
  products: Array<{
    images: Array<{
      status: string;
      bytes_in: number | null;
      bytes_out: number | null;
      error: string | null;
    }>;
  }>;
}

async function upload(
  baseUrl: string,
  csv: string,
  timeoutS = 300,
): Promise<{ accepted: Accepted; seconds: number }> {
  const form = new FormData();
  form.append('quality', String(TRANSFORM.quality));
  form.append('format', TRANSFORM.format);
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
  const started = performance.now();
  const res = await fetch(`${baseUrl}/upload`, {
    method: 'POST',
    body: form,
    signal: AbortSignal.timeout(Math.round(timeoutS * 1000)),
  });
  const text = await res.text();
  const seconds = (performance.now() - started) / 1000;
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${text.slice(0, 500)}`);
  return { accepted: JSON.parse(text) as Accepted, seconds };
}

// ------------------------------------------------------------------ stores and services

type StoreKind = 'embedded' | 'mongodb';

/** The URI with its database replaced (or added), options kept. */
function withDatabase(uri: string, db: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!match?.[1]) throw new Error(`MONGODB_URI is not a mongodb:// URI: ${uri}`);
  return `${match[1]}/${db}${match[2] ?? ''}`;
}

interface RunningService extends ServiceProcess {
  pid: number;
  workDir: string;
  mongoUri: string | null;
}

const runId = `${Date.now().toString(36)}_${process.pid}`;

async function startService(store: StoreKind, label: string): Promise<RunningService> {
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), `image-batch-bench-${label}-`));
  const port = await freePort();
  const mongoUri =
    store === 'mongodb'
      ? withDatabase(process.env.MONGODB_URI ?? '', `bench_${runId}_${label}`)
      : null;
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: path.join(workDir, 'data'),
    IMAGES_DIR: path.join(workDir, 'images'),
    RESULTS_DIR: path.join(workDir, 'results'),
    ALLOW_PRIVATE_NETWORKS: 'true',
    LOG_LEVEL: 'warn',
    MONGODB_URI: mongoUri ?? '',
  };
  if (process.env.BENCH_SERVICE_NODE_OPTIONS !== undefined) {
    env.NODE_OPTIONS = process.env.BENCH_SERVICE_NODE_OPTIONS;
  }
  const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
  if (profileDir) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS; this preload does the same job.
    const preload = path.join(root, 'scripts/bench-cpu-profile.mjs');
    env.NODE_OPTIONS =
      `${env.NODE_OPTIONS ?? process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim();
    env.BENCH_CPU_PROFILE_DIR = path.resolve(profileDir);
    env.BENCH_CPU_PROFILE_NAME = `${store}-${label}`;
  }
  const service = await spawnService(env, { entry: 'dist' }).catch(async (err: unknown) => {
    await fs.rm(workDir, { recursive: true, force: true });
    throw err;
  });
  children.add(service.child);
  const pid = service.child.pid;
  if (pid === undefined) throw new Error('service has no pid');
  return { ...service, pid, workDir, mongoUri };
}

/** The local MongoDB server's pid, when MONGODB_URI names one port on this machine. */
function mongoServerPid(uri: string | null): number | null {
  if (!uri) return null;
  const match = /^mongodb:\/\/(?:[^@/]*@)?(127\.0\.0\.1|localhost|\[::1\]):(\d+)(?:[/?]|$)/.exec(
    uri,
  );
  return match?.[2] ? listenerPid(Number(match[2])) : null;
}

/** The processes whose CPU use a phase reports: ours, and the database server if local. */
function phasePids(service: RunningService, origin: OriginProcess): Record<string, CpuTarget> {
  const pids: Record<string, CpuTarget> = {
    service: service.pid,
    // The event loop's own thread; the rest of the service's CPU is libuv's pool (sharp,
    // fs), V8's GC and compiler threads.
    '(service main thread)': { thread: `/proc/${service.pid}/task/${service.pid}` },
    origin: originPid(origin),
    bench: process.pid,
  };
  const mongo = mongoServerPid(service.mongoUri);
  if (mongo !== null) pids['mongo server'] = mongo;
  return pids;
}

async function stopService(service: RunningService, graceMs = 30_000): Promise<void> {
  await stopProcess(service.child, graceMs);
  if (service.mongoUri) {
    const client = new MongoClient(service.mongoUri, { serverSelectionTimeoutMS: 5000 });
    const drop = (async () => {
      await client.connect();
      await client.db().dropDatabase();
    })();
    try {
      // A server still busy with the cut-off job may take long; the next run uses a new name.
      const dropped = await Promise.race([
        drop.then(() => true),
        sleep(20_000, undefined, { ref: false }).then(() => false),
      ]);
      if (!dropped) progress(`gave up waiting to drop ${service.mongoUri}`);
    } catch (err) {
      progress(`could not drop ${service.mongoUri}: ${String(err)}`);
    } finally {
      drop.catch(() => {});
      await client.close(true);
    }
  }
  leftovers.push(service.workDir);
}

/**
 * The services' temp dirs, removed only once every stage is done: deleting thousands of
 * files sets the filesystem working (on this VM's ext4, without a journal, creating a file
 * after many deletions costs up to ~1 ms more for a minute or so), and that should not be
 * billed to the next stage.
 */
const leftovers: string[] = [];

async function removeLeftovers(): Promise<void> {
  if (process.env.BENCH_KEEP === '1') {
    for (const dir of leftovers) progress(`kept ${dir}`);
    return;
  }
  await Promise.all(leftovers.map((dir) => fs.rm(dir, { recursive: true, force: true })));
}

// ------------------------------------------------------------------ 2. ceiling

interface CeilingLevel {
  inFlight: number;
  ips: number;
  cpu: CpuUse;
}

interface CeilingResult {
  levels: CeilingLevel[];
  /** The fastest level: the concurrency the ceiling is measured at. */
  best: CeilingLevel;
  /**
   * That level measured afresh before the first end-to-end job and again after each (empty
   * when none ran): the fastest of four noisy measurements overstates its level, so the
   * ceiling is taken from measurements the choice was not made on.
   */
  samples: CeilingLevel[];
}

/**
 * The ceiling the ratio is taken against (see E2E_JOBS): each job is set against the mean
 * of the measurements just before and after it, and those means are averaged.
 */
function ceilingIps(ceiling: CeilingResult): number {
  const samples = ceiling.samples.map((level) => level.ips);
  if (samples.length < 2) return samples[0] ?? ceiling.best.ips;
  let sum = 0;
  for (let j = 1; j < samples.length; j++)
    sum += ((samples[j - 1] ?? NaN) + (samples[j] ?? NaN)) / 2;
  return sum / (samples.length - 1);
}

/** The service's own transform on the same bytes, back to back at `inFlight` at once. */
async function measureCeilingLevel(
  pool: Buffer[],
  count: number,
  inFlight: number,
  originPid: number,
): Promise<CeilingLevel> {
  // The same Buffer objects over and over: checked to run no faster than fresh copies
  // (libvips' operation cache does not short-cut a decode from a buffer), and a copy would
  // charge the codec with an allocation that belongs to the download.
  const once = (i: number) =>
    transformImage(pool[i % pool.length] ?? Buffer.alloc(0), TRANSFORM, MAX_PIXELS);
  let next = 0;
  const meter = cpuMeter({ bench: process.pid, origin: originPid });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < count; i = next++) await once(i);
    }),
  );
  const ips = count / ((performance.now() - started) / 1000);
  const cpu = meter();
  progress(`ceiling: ${inFlight} in flight → ${ips.toFixed(1)} img/s; cpu ${cpuText(cpu)}`);
  return { inFlight, ips, cpu };
}

async function measureCeiling(
  pool: Buffer[],
  count: number,
  originPid: number,
): Promise<CeilingResult> {
  // Warm-up: every pool image once, so JIT and libvips start-up are not timed.
  for (const image of pool) await transformImage(image, TRANSFORM, MAX_PIXELS);
  const levels: CeilingResult['levels'] = [];
  for (const inFlight of CEILING_LEVELS) {
    levels.push(await measureCeilingLevel(pool, count, inFlight, originPid));
  }
  const best = levels.reduce((a, b) => (b.ips > a.ips ? b : a));
  return { levels, best, samples: [] };
}

// ------------------------------------------------------------------ 3 + 4. end-to-end

interface E2eResult {
  images: number;
  seconds: number;
  ips: number;
  completed: boolean;
  processed: number;
  failed: number;
  firstError: string | null;
  bytesIn: number;
  bytesOut: number;
  /** Every /status poll's latency, ms, sorted. */
  latencies: number[];
  peakRssMb: number;
  pid: number;
  cpu: CpuUse;
}

/**
 * The end-to-end jobs of one store taken together: what the table and the JSON report.
 * Of the fields one job also has, `images` and the bytes are per job (every job gets the
 * same CSV), `ips` and `cpu` are the means, `processed` and `failed` the sums, `completed`
 * holds for every job and `peakRssMb` is the highest.
 */
interface E2eSummary extends Pick<
  E2eResult,
  | 'images'
  | 'ips'
  | 'completed'
  | 'processed'
  | 'failed'
  | 'firstError'
  | 'bytesIn'
  | 'bytesOut'
  | 'peakRssMb'
  | 'cpu'
> {
  jobs: E2eResult[];
  /** Over every job's polls. */
  polls: number;
  p50: number;
  p99: number;
  maxMs: number;
  /** CPU per image, ms, by process: the mean of the jobs'. */
  cpuMsPerImage: Record<string, number>;
}

function summariseEndToEnd(jobs: E2eResult[]): E2eSummary | null {
  const first = jobs[0];
  if (!first) return null;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const latencies = jobs.flatMap((job) => job.latencies).sort((a, b) => a - b);
  const names = Object.keys(first.cpu.cores);
  return {
    jobs,
    images: first.images,
    ips: mean(jobs.map((job) => job.ips)),
    completed: jobs.every((job) => job.completed),
    processed: jobs.reduce((n, job) => n + job.processed, 0),
    failed: jobs.reduce((n, job) => n + job.failed, 0),
    firstError: jobs.find((job) => job.firstError !== null)?.firstError ?? null,
    bytesIn: first.bytesIn,
    bytesOut: first.bytesOut,
    polls: latencies.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    maxMs: latencies[latencies.length - 1] ?? NaN,
    peakRssMb: Math.max(...jobs.map((job) => job.peakRssMb)),
    cpuMsPerImage: Object.fromEntries(
      names.map((name) => [
        name,
        mean(jobs.map((job) => (1000 * (job.cpu.cores[name] ?? NaN)) / job.ips)),
      ]),
    ),
    cpu: {
      cores: Object.fromEntries(
        names.map((name) => [name, mean(jobs.map((job) => job.cpu.cores[name] ?? NaN))]),
      ),
      others: mean(jobs.map((job) => job.cpu.others)),
      busyPercent: mean(jobs.map((job) => job.cpu.busyPercent)),
    },
  };
}

function originPid(origin: OriginProcess): number {
  return origin.child.pid ?? -1;
}

/**
 * `products` products × SIZES.perProduct images, each under a URL of its own numbered from
 * `first` (image n is pool image n % pool size).
 */
function e2eCsv(origin: OriginProcess, products = SIZES.products, first = 0): string {
  const lines = ['S. No.,Product Name,Input Image Urls'];
  for (let p = 0; p < products; p++) {
    const urls: string[] = [];
    for (let j = 0; j < SIZES.perProduct; j++) {
      const n = first + p * SIZES.perProduct + j;
      const entry = origin.pool[n % origin.pool.length];
      urls.push(`${origin.url}/img/${n}.${entry?.format === 'png' ? 'png' : 'jpg'}`);
    }
    lines.push(`${p + 1},Product ${p + 1},"${urls.join(', ')}"`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Every pool image once through the fresh service, untimed, before the measured job: the
 * ceiling is timed after the same warm-up (JIT, libvips' first calls), and a service in
 * production has been running for a while. It also opens the connections to the origin.
 */
async function warmUp(service: RunningService, origin: OriginProcess): Promise<void> {
  const products = Math.ceil(origin.pool.length / SIZES.perProduct);
  const { accepted } = await upload(service.url, e2eCsv(origin, products, 1_000_000));
  const started = performance.now();
  for (;;) {
    const { body } = await getJson<StatusBody>(accepted.status_url);
    if (body.status === 'COMPLETED') return;
    if (body.status === 'FAILED') throw new Error('the warm-up job failed');
    if (performance.now() - started > 60_000) throw new Error('the warm-up job took over 60 s');
    await sleep(POLL_INTERVAL_MS);
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

/** One end-to-end job on a fresh service; `jobsLeft` (this one included) share the budget. */
async function measureEndToEnd(
  store: StoreKind,
  origin: OriginProcess,
  jobsLeft: number,
): Promise<E2eResult> {
  const service = await startService(store, 'e2e');
  // A service still busy with an unfinished job is not waited for long at shutdown.
  let graceMs = 5_000;
  try {
    progress(`e2e: service pid ${service.pid} on ${service.url}`);
    await warmUp(service, origin);
    const { accepted } = await upload(service.url, e2eCsv(origin));
    // Leave the many-rows stage its share of the budget.
    const reserve = STAGES.has('rows') ? (quick ? 15 : 60) : 10;
    const timeoutS = Math.min(
      SIZES.e2eTimeoutS,
      Math.max(20, (secondsLeft() - reserve) / jobsLeft),
    );
    const meter = cpuMeter(phasePids(service, origin));
    const started = performance.now();
    const latencies: number[] = [];
    let last: StatusBody | null = null;
    let ended = started;
    let completed = false;
    for (;;) {
      const t = performance.now();
      const { statusCode, body } = await getJson<StatusBody>(accepted.status_url);
      ended = performance.now();
      latencies.push(ended - t);
      if (statusCode !== 200) throw new Error(`GET /status answered ${statusCode}`);
      last = body;
      if (body.status === 'COMPLETED' || body.status === 'FAILED') {
        completed = body.status === 'COMPLETED';
        graceMs = 30_000;
        break;
      }
      if (ended - started > timeoutS * 1000) {
        progress(`e2e: no COMPLETED within ${timeoutS.toFixed(0)} s; measuring what got done`);
        break;
      }
      const wait = t + POLL_INTERVAL_MS - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const cpu = meter();
    const seconds = (ended - started) / 1000;
    const done = (last?.progress.images_processed ?? 0) + (last?.progress.images_failed ?? 0);
    const memory = memoryOf(service.pid);

    let bytesIn = 0;
    let bytesOut = 0;
    let firstError: string | null = null;
    for (let offset = 0; offset < accepted.products; offset += 500) {
      const { body } = await getJson<ProductsBody>(
        `${service.url}/status/${accepted.request_id}/products?offset=${offset}&limit=500`,
      );
      for (const product of body.products) {
        for (const image of product.images) {
          bytesIn += image.bytes_in ?? 0;
          bytesOut += image.bytes_out ?? 0;
          firstError ??= image.error;
        }
      }
    }
    latencies.sort((a, b) => a - b);
    return {
      images: accepted.images,
      seconds,
      ips: done / seconds,
      completed,
      processed: last?.progress.images_processed ?? 0,
      failed: last?.progress.images_failed ?? 0,
      firstError,
      bytesIn,
      bytesOut,
      latencies,
      peakRssMb: memory?.hwmMb ?? NaN,
      pid: service.pid,
      cpu,
    };
  } finally {
    await stopService(service, graceMs);
  }
}

// ------------------------------------------------------------------ 5. many rows

interface RowsResult {
  rows: number;
  /** NaN when the upload was not accepted; `uploadError` then says why. */
  acceptSeconds: number;
  uploadError: string | null;
  peakRssMb: number;
  rssAtAcceptMb: number;
  rssAtEndMb: number;
  /** VmRSS every 5 s of the window, with the images done by then: does memory track rows? */
  rssTrace: Array<{ s: number; rssMb: number; done: number }>;
  completed: boolean;
  observedSeconds: number;
  imagesDone: number;
  imagesTotal: number;
  pid: number;
  /** Null when the upload was not accepted (no window was observed). */
  cpu: CpuUse | null;
  /** GET /health every 20 ms while the CSV uploads: how long the event loop stalls. */
  health: { polls: number; p50: number; p99: number; max: number };
}

function rowsCsv(origin: OriginProcess): string {
  const lines = ['S. No.,Product Name,Input Image Urls'];
  for (let i = 1; i <= SIZES.rows; i++)
    lines.push(`${i},Product ${i},${origin.url}/small/${i}.jpg`);
  return `${lines.join('\n')}\n`;
}

async function measureRows(store: StoreKind, origin: OriginProcess): Promise<RowsResult> {
  const csv = rowsCsv(origin);
  const service = await startService(store, 'rows');
  let peakRss = 0;
  const sample = () => {
    const memory = memoryOf(service.pid);
    if (memory) peakRss = Math.max(peakRss, memory.rssMb, memory.hwmMb);
    return memory;
  };
  const sampler = setInterval(sample, 200);
  try {
    progress(
      `rows: service pid ${service.pid}; uploading ${SIZES.rows} rows (${(csv.length / 1e6).toFixed(1)} MB)`,
    );
    let uploading = true;
    const healthLatencies: number[] = [];
    // Every 20 ms rather than back to back, so as not to slow the upload being timed; a
    // stall of the event loop still shows as one long answer (to within 20 ms).
    const healthPoller = (async () => {
      while (uploading) {
        const t = performance.now();
        const res = await request(`${service.url}/health`, { dispatcher: agent });
        await res.body.dump();
        healthLatencies.push(performance.now() - t);
        await sleep(20);
      }
    })();
    // What is left of the budget, less a minimal window, the shutdown grace and a margin.
    const uploadLimitS = Math.max(20, secondsLeft() - MIN_WINDOW_S - 15);
    const uploadStarted = performance.now();
    const uploaded = await upload(service.url, csv, uploadLimitS)
      .catch((err: unknown) => {
        const cause = err instanceof Error && err.name === 'TimeoutError';
        return cause ? `no 202 within ${uploadLimitS.toFixed(0)} s (budget)` : String(err);
      })
      .finally(() => {
        uploading = false;
      });
    await healthPoller;
    healthLatencies.sort((a, b) => a - b);
    const health = {
      polls: healthLatencies.length,
      p50: percentile(healthLatencies, 0.5),
      p99: percentile(healthLatencies, 0.99),
      max: healthLatencies[healthLatencies.length - 1] ?? NaN,
    };
    if (typeof uploaded === 'string') {
      progress(`rows: upload not accepted: ${uploaded}`);
      const end = sample();
      return {
        rows: SIZES.rows,
        acceptSeconds: NaN,
        uploadError: uploaded,
        peakRssMb: peakRss,
        rssAtAcceptMb: NaN,
        rssAtEndMb: end?.rssMb ?? NaN,
        rssTrace: [],
        completed: false,
        observedSeconds: (performance.now() - uploadStarted) / 1000,
        imagesDone: 0,
        imagesTotal: SIZES.rows,
        pid: service.pid,
        cpu: null,
        health,
      };
    }
    const { accepted, seconds } = uploaded;
    const rssAtAccept = sample()?.rssMb ?? NaN;
    const left = secondsLeft() - 15;
    const window = Math.max(MIN_WINDOW_S, Math.min(ROWS_WINDOW_S, left));
    if (window < ROWS_WINDOW_S) {
      progress(
        `rows: window cut from ${ROWS_WINDOW_S} s to ${window.toFixed(0)} s (BENCH_BUDGET_S)`,
      );
    }
    progress(`rows: 202 after ${seconds.toFixed(2)} s; watching for up to ${window.toFixed(0)} s`);
    const meter = cpuMeter(phasePids(service, origin));
    const started = performance.now();
    let status: StatusBody | null = null;
    const rssTrace: RowsResult['rssTrace'] = [];
    while (performance.now() - started < window * 1000) {
      status = (await getJson<StatusBody>(accepted.status_url)).body;
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed >= 5 * (rssTrace.length + 1)) {
        const p = status.progress;
        rssTrace.push({
          s: elapsed,
          rssMb: sample()?.rssMb ?? NaN,
          done: p.images_processed + p.images_failed,
        });
      }
      if (status.status === 'COMPLETED' || status.status === 'FAILED') break;
      await sleep(500);
    }
    const observed = (performance.now() - started) / 1000;
    const cpu = meter();
    const end = sample();
    return {
      rows: accepted.products,
      acceptSeconds: seconds,
      peakRssMb: peakRss,
      rssAtAcceptMb: rssAtAccept,
      rssAtEndMb: end?.rssMb ?? NaN,
      rssTrace,
      completed: status?.status === 'COMPLETED',
      observedSeconds: observed,
      imagesDone: (status?.progress.images_processed ?? 0) + (status?.progress.images_failed ?? 0),
      imagesTotal: accepted.images,
      pid: service.pid,
      cpu,
      health,
      uploadError: null,
    };
  } finally {
    clearInterval(sampler);
    // The job is cut off anyway; a store still busy with it need not be waited for long.
    await stopService(service, 10_000);
  }
}

// ------------------------------------------------------------------ report

interface StoreReport {
  store: StoreKind;
  ceiling: CeilingResult | null;
  e2e: E2eSummary | null;
  rows: RowsResult | null;
}

const round = (value: number, digits: number): number | null =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : null;
const fmt = (value: number, digits = 1): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const envOr = (name: string, fallback: string): string =>
  process.env[name] ? `${process.env[name]}` : `${fallback} (default)`;

/** What the service's malloc was given: npm start's settings unless the environment has its own. */
function tunablesLine(): string {
  const given = process.env.GLIBC_TUNABLES;
  if (given === undefined) return 'as npm start (default)';
  return given === '' ? 'none' : given;
}

function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const ram = (os.totalmem() / 2 ** 30).toFixed(1);
  const load = os.loadavg().map((l) => l.toFixed(2));
  return `${os.availableParallelism()} cores (${cpu}), ${ram} GiB RAM, ${os.platform()} ${os.release()}, Node ${process.version}, sharp ${sharp.versions.sharp ?? '?'} / libvips ${sharp.versions.vips}; load average ${load.join(' ')} (at start ${loadAtStart})`;
}

function table(report: StoreReport, origin: OriginProcess): string {
  const { ceiling, e2e, rows } = report;
  const jpegs = origin.pool.filter((p) => p.format === 'jpeg');
  const pngs = origin.pool.filter((p) => p.format === 'png');
  const avg = (entries: PoolEntry[]) =>
    entries.length === 0 ? 0 : entries.reduce((s, e) => s + e.bytes, 0) / entries.length / 1e3;
  const target = report.store === 'embedded' ? 0.85 : 0.8;
  const ratio = ceiling && e2e ? e2e.ips / ceilingIps(ceiling) : NaN;
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const rowsLines: string[] = [];
  if (rows) {
    const n = rows.rows.toLocaleString('en');
    const scope = rows.uploadError
      ? `the upload only (${rows.uploadError})`
      : rows.completed
        ? `whole job, ${fmt(rows.observedSeconds)} s after the 202`
        : `fixed ${fmt(rows.observedSeconds, 0)} s window after the 202 (job not finished: ${rows.imagesDone.toLocaleString('en')} of ${rows.imagesTotal.toLocaleString('en')} images, ${fmt(rows.imagesDone / rows.observedSeconds, 0)} img/s)`;
    rowsLines.push(
      row(
        `${n} rows: time to 202`,
        rows.uploadError ? `n/a: ${rows.uploadError}` : `${fmt(rows.acceptSeconds, 2)} s`,
        report.store === 'embedded' ? `< 5 s: ${mark(rows.acceptSeconds < 5)}` : '',
      ),
      row(
        `${n} rows: peak RSS`,
        `${fmt(rows.peakRssMb, 0)} MB`,
        `< 300 MB: ${mark(rows.peakRssMb < 300)}`,
      ),
      row(
        '  /health during the upload',
        `p50 ${fmt(rows.health.p50, 1)} / p99 ${fmt(rows.health.p99, 1)} / max ${fmt(rows.health.max, 0)} ms (${rows.health.polls} polls)`,
        '',
      ),
      row(
        '  RSS at 202 → at end',
        `${fmt(rows.rssAtAcceptMb, 0)} → ${fmt(rows.rssAtEndMb, 0)} MB`,
        '',
      ),
      row('  measured over', scope, ''),
    );
    if (rows.rssTrace.length > 0) {
      const trace = rows.rssTrace
        .map((t) => `${fmt(t.rssMb, 0)} (${(t.done / 1000).toFixed(1)}k)`)
        .join(', ');
      rowsLines.push(row('  RSS every 5 s (images done)', `${trace} MB`, ''));
    }
    if (rows.cpu) rowsLines.push(row('  CPU in that window (cores)', cpuText(rows.cpu), ''));
  }
  const lines = [
    '',
    `== image-batch-service benchmark · store: ${report.store} · ${quick ? 'QUICK mode (small sizes)' : 'full mode'} ==`,
    `machine   ${machineLine()}`,
    `service   CONCURRENCY=${envOr('CONCURRENCY', `two per core (${cores.defaultConcurrency()})`)}, DOWNLOAD_CONCURRENCY=${envOr('DOWNLOAD_CONCURRENCY', '4 × CONCURRENCY')}, PER_HOST_CONCURRENCY=${envOr('PER_HOST_CONCURRENCY', 'as DOWNLOAD_CONCURRENCY')}, UV_THREADPOOL_SIZE=${envOr('UV_THREADPOOL_SIZE', 'CONCURRENCY + 4')}, GLIBC_TUNABLES ${tunablesLine()}, sharp.concurrency()=${sharp.concurrency()} (in the bench process)`,
    `images    ${jpegs.length} JPEG ${jpegs[0]?.width ?? '?'}×${jpegs[0]?.height ?? '?'} (~${fmt(avg(jpegs), 0)} kB) + ${pngs.length} PNG RGBA ${pngs[0]?.width ?? '?'}×${pngs[0]?.height ?? '?'} (~${fmt(avg(pngs), 0)} kB), re-encoded to JPEG q${TRANSFORM.quality}`,
    '',
    row('metric', 'value', 'target'),
    row('-'.repeat(34), '-'.repeat(40), '-'.repeat(24)),
  ];
  if (ceiling) {
    for (const level of ceiling.levels) {
      lines.push(
        row(
          `ceiling, ${level.inFlight} in flight`,
          `${fmt(level.ips)} img/s (${fmt(level.cpu.cores.bench ?? NaN, 2)} cores; others ${fmt(level.cpu.others, 2)})`,
          '',
        ),
      );
    }
    lines.push(
      row(
        'ceiling (best)',
        `${fmt(ceiling.best.ips)} img/s at ${ceiling.best.inFlight} in flight`,
        '',
      ),
      row('  CPU per image, codec alone', `${fmt(ceilingCpuMs(ceiling), 1)} ms`, ''),
    );
    const before = ceiling.samples[0];
    if (before) lines.push(row('ceiling again, before job 1', `${fmt(before.ips)} img/s`, ''));
  }
  e2e?.jobs.forEach((job, i) => {
    lines.push(
      row(
        `end-to-end job ${i + 1} (${job.images} images)`,
        `${fmt(job.ips)} img/s (${fmt(job.seconds, 2)} s, 202 → ${job.completed ? 'COMPLETED' : 'timeout'})`,
        '',
      ),
    );
    const after = ceiling?.samples[i + 1];
    if (after) lines.push(row(`ceiling again, after job ${i + 1}`, `${fmt(after.ips)} img/s`, ''));
  });
  if (ceiling && ceiling.samples.length > 1) {
    lines.push(row('ceiling (around each job, mean)', `${fmt(ceilingIps(ceiling))} img/s`, ''));
  }
  if (e2e) {
    lines.push(
      row(`end-to-end (mean of ${e2e.jobs.length} jobs)`, `${fmt(e2e.ips)} img/s`, ''),
      row(
        'ratio e2e / ceiling',
        fmt(ratio, 3),
        Number.isFinite(ratio) ? `≥ ${target}: ${mark(ratio >= target)}` : '',
      ),
      row(
        '  images processed / failed',
        `${e2e.processed} / ${e2e.failed}${e2e.firstError ? ` (${e2e.firstError})` : ''}`,
        '',
      ),
      row(
        '/status p50 / p99 / max, all jobs',
        `${fmt(e2e.p50, 2)} / ${fmt(e2e.p99, 2)} / ${fmt(e2e.maxMs, 1)} ms (${e2e.polls} polls, every ${POLL_INTERVAL_MS} ms)`,
        `p99 < 50 ms: ${mark(e2e.p99 < 50)}`,
      ),
      row(
        'bytes in → out, per job',
        `${mb(e2e.bytesIn)} → ${mb(e2e.bytesOut)} (${fmt((100 * e2e.bytesOut) / e2e.bytesIn)}%)`,
        '',
      ),
      row('  service peak RSS during e2e', `${fmt(e2e.peakRssMb, 0)} MB`, ''),
      row('  CPU during e2e (cores)', cpuText(e2e.cpu), ''),
      row(
        '  CPU per image, end-to-end',
        Object.entries(e2e.cpuMsPerImage)
          .map(([name, ms]) => `${name} ${fmt(ms, 1)}`)
          .join(', ') + ' ms',
        '',
      ),
    );
    if (ceiling) {
      const share = codecShare(ceiling, e2e);
      lines.push(
        row(
          '  codec CPU / CPU per image',
          `${fmt(share.service, 3)} of the service's, ${fmt(share.machine, 3)} of all above`,
          '',
        ),
      );
    }
  }
  lines.push(...rowsLines, '');
  return lines.join('\n');
}

function row(a: string, b: string, c: string): string {
  return `${a.padEnd(34)}  ${b.padEnd(40)}  ${c}`.trimEnd();
}

/**
 * CPU time the codec alone spends per image (at the best concurrency; the mean of the fresh
 * measurements when there are some): with the service's CPU per image, a comparison that
 * holds even when other processes share the machine.
 */
function ceilingCpuMs(ceiling: CeilingResult): number {
  const measured = ceiling.samples.length > 0 ? ceiling.samples : [ceiling.best];
  const ms = measured.map((level) => (1000 * (level.cpu.cores.bench ?? NaN)) / level.ips);
  return ms.reduce((a, b) => a + b, 0) / ms.length;
}

/**
 * The codec's CPU per image over the service's, and over everything the benchmark's
 * processes spend per image end to end (service, origin, poller, a local MongoDB). With
 * every core busy, the second is what the ratio comes to; the first leaves out the
 * processes that stand in for remote image servers and clients.
 */
function codecShare(ceiling: CeilingResult, e2e: E2eSummary): { service: number; machine: number } {
  const codec = ceilingCpuMs(ceiling);
  const { '(service main thread)': _counted, ...processes } = e2e.cpuMsPerImage;
  const all = Object.values(processes).reduce((a, b) => a + b, 0);
  return { service: codec / (e2e.cpuMsPerImage.service ?? NaN), machine: codec / all };
}

function json(report: StoreReport): string {
  const { ceiling, e2e, rows } = report;
  return JSON.stringify({
    store: report.store,
    ceiling_ips: round(ceiling ? ceilingIps(ceiling) : NaN, 1),
    e2e_ips: round(e2e?.ips ?? NaN, 1),
    ratio: round(ceiling && e2e ? e2e.ips / ceilingIps(ceiling) : NaN, 3),
    status_p99_ms: round(e2e?.p99 ?? NaN, 2),
    rows100k_accept_s: round(rows?.acceptSeconds ?? NaN, 2),
    peak_rss_mb: round(rows?.peakRssMb ?? NaN, 0),
    bytes_in: e2e?.bytesIn ?? null,
    bytes_out: e2e?.bytesOut ?? null,
    // Beyond the required keys: what the figures above were measured on.
    mode: quick ? 'quick' : 'full',
    status_p50_ms: round(e2e?.p50 ?? NaN, 2),
    ceiling_in_flight: ceiling?.best.inFlight ?? null,
    ceiling_samples_ips: ceiling
      ? (ceiling.samples.length > 0 ? ceiling.samples : [ceiling.best]).map((level) =>
          round(level.ips, 1),
        )
      : null,
    e2e_jobs_ips: e2e?.jobs.map((job) => round(job.ips, 1)) ?? null,
    e2e_images: e2e?.images ?? null,
    e2e_completed: e2e?.completed ?? null,
    rows: rows?.rows ?? null,
    rows_accepted: rows ? rows.uploadError === null : null,
    rows_job_completed: rows?.completed ?? null,
    rows_observed_s: round(rows?.observedSeconds ?? NaN, 1),
    ceiling_cpu_ms_per_img: round(ceiling ? ceilingCpuMs(ceiling) : NaN, 1),
    e2e_service_cpu_ms_per_img: round(e2e?.cpuMsPerImage.service ?? NaN, 1),
    service_cpu_ratio: round(ceiling && e2e ? codecShare(ceiling, e2e).service : NaN, 3),
    e2e_other_processes_cores: round(e2e?.cpu.others ?? NaN, 2),
  });
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  progress(`${quick ? 'quick' : 'full'} mode; starting the image origin`);
  const origin = await startOrigin();
  progress(`origin ${origin.url} (pid ${origin.child.pid})`);
  const pool = await Promise.all(
    origin.pool.map(async (entry) => {
      const res = await request(`${origin.url}/pool/${entry.index}`, { dispatcher: agent });
      return Buffer.from(await res.body.arrayBuffer());
    }),
  );

  const stores: StoreKind[] = ['embedded'];
  if (process.env.MONGODB_URI) stores.push('mongodb');
  else progress('MONGODB_URI not set: embedded store only');

  const reports: StoreReport[] = [];
  for (const store of stores) {
    progress(`---- ${store} store ----`);
    const report: StoreReport = { store, ceiling: null, e2e: null, rows: null };
    if (STAGES.has('ceiling'))
      report.ceiling = await measureCeiling(pool, SIZES.ceilingImages, originPid(origin));
    const { ceiling } = report;
    const sampleCeiling = async () => {
      if (!ceiling) return;
      ceiling.samples.push(
        await measureCeilingLevel(
          pool,
          SIZES.ceilingSampleImages,
          ceiling.best.inFlight,
          originPid(origin),
        ),
      );
    };
    if (STAGES.has('e2e')) {
      await sampleCeiling();
      const jobs: E2eResult[] = [];
      for (let job = 1; job <= E2E_JOBS; job++) {
        progress(`e2e job ${job}: ${SIZES.products} products × ${SIZES.perProduct} images`);
        const result = await measureEndToEnd(store, origin, E2E_JOBS - job + 1);
        jobs.push(result);
        progress(
          `e2e job ${job}: ${fmt(result.ips)} img/s, /status p99 ${fmt(percentile(result.latencies, 0.99), 2)} ms`,
        );
        await sampleCeiling();
      }
      report.e2e = summariseEndToEnd(jobs);
    }
    if (STAGES.has('rows')) report.rows = await measureRows(store, origin);
    reports.push(report);
    process.stdout.write(table(report, origin));
  }
  await stopProcess(origin.child, 5000);
  await agent.close();
  await removeLeftovers();
  progress(`done in ${fmt((performance.now() - benchStarted) / 1000)} s`);
  process.stdout.write(`${reports.map(json).join('\n')}\n`);
}

main().catch(async (err: unknown) => {
  progress(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  killChildren();
  await removeLeftovers().catch(() => {});
  process.exit(1);
});
