/**
 * How many cores this process can use, which sizes the encode pool (CONCURRENCY) and the
 * threadpool by default. CommonJS, so that threadpool.cts can use it before any ES module
 * loads.
 *
 * `os.availableParallelism()` counts the CPUs the process may run on, but on Node 20
 * (libuv 1.46) not a container's CPU quota: under `docker run --cpus=2` on a 64-core host
 * it says 64, and the pool would run 128 encodes at once, each holding a decoded image,
 * on two cores' worth of time. So the quota is read from the cgroup as well, and the
 * smaller of the two is used.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The most encodes the default sizing gives, however many cores there are. */
const MAX_DEFAULT_CONCURRENCY = 256;

/** CONCURRENCY's default: two encodes per core (see config.ts for why two). */
function concurrencyFor(cores: number): number {
  return Math.min(MAX_DEFAULT_CONCURRENCY, Math.max(1, Math.round(2 * cores)));
}

const defaultConcurrency = (): number => concurrencyFor(availableCores());

/** The CPUs this process may run on, or its CPU quota in cores if that is fewer. */
function availableCores(root = '/'): number {
  const cpus = os.availableParallelism();
  const quota = cgroupCpuQuota(root);
  return quota === null ? cpus : Math.min(cpus, quota);
}

/**
 * The CPU quota, in cores (possibly fractional: `--cpus=1.5` is 1.5), of the cgroup this
 * process is in, or of the nearest ancestor that sets one (the tightest wins); null when
 * none is set or cgroups cannot be read. cgroup v2 (`cpu.max`) and v1
 * (`cpu.cfs_quota_us` / `cpu.cfs_period_us`), mounted where every distribution and
 * container runtime mounts them, under /sys/fs/cgroup. `root` is for tests.
 */
function cgroupCpuQuota(root = '/'): number | null {
  const membership = readText(path.join(root, 'proc/self/cgroup'));
  if (membership === null) return null;
  const mount = path.join(root, 'sys/fs/cgroup');
  let tightest: number | null = null;
  for (const line of membership.split('\n')) {
    // hierarchy-id:controllers:path; the path itself may contain colons.
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const group = line.slice(second + 1);
    let quota: number | null = null;
    if (line.slice(0, first) === '0' && controllers === '') {
      quota = nearestQuota(mount, group, readV2Quota);
    } else if (controllers.split(',').includes('cpu')) {
      // Mounted under its controllers' names ("cpu,cpuacct"), usually with a "cpu" link.
      quota =
        nearestQuota(path.join(mount, controllers), group, readV1Quota) ??
        nearestQuota(path.join(mount, 'cpu'), group, readV1Quota);
    }
    if (quota !== null && (tightest === null || quota < tightest)) tightest = quota;
  }
  return tightest;
}

/**
 * The tightest quota from the process's own group up to the hierarchy's root. Inside a
 * container the group's path may name a directory that is not there, or lie outside the
 * mount ("/../.."), since the container sees its own group mounted as the root: then the
 * root's files are the group's.
 */
function nearestQuota(
  hierarchy: string,
  group: string,
  read: (dir: string) => number | null,
): number | null {
  let tightest: number | null = null;
  let dir = path.resolve(hierarchy, `.${group}`);
  if (!dir.startsWith(hierarchy + path.sep)) dir = hierarchy;
  for (;;) {
    const quota = read(dir);
    if (quota !== null && (tightest === null || quota < tightest)) tightest = quota;
    if (dir === hierarchy) return tightest;
    dir = path.dirname(dir);
  }
}

/** cgroup v2: `cpu.max` is "max 100000" (no quota) or "<quota> <period>", in µs. */
function readV2Quota(dir: string): number | null {
  const [quota, period] = (readText(path.join(dir, 'cpu.max')) ?? '').trim().split(/\s+/);
  return cores(Number(quota), Number(period));
}

/** cgroup v1: `cpu.cfs_quota_us` is -1 when there is no quota. */
function readV1Quota(dir: string): number | null {
  const quota = readText(path.join(dir, 'cpu.cfs_quota_us'));
  const period = readText(path.join(dir, 'cpu.cfs_period_us'));
  return quota === null || period === null ? null : cores(Number(quota), Number(period));
}

function cores(quota: number, period: number): number | null {
  return Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0
    ? quota / period
    : null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

// One object, so that ES modules (config.ts) and the bundler-resolved web build can take
// it as a default import the same way.
export = { availableCores, cgroupCpuQuota, concurrencyFor, defaultConcurrency };
