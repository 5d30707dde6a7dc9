import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import cores from '../src/cores.cjs';
import { tempDir } from './helpers/cli.js';
import type { TapTest } from './helpers/service.js';

// A CommonJS module: its exports arrive as one object.
const { availableCores, cgroupCpuQuota, concurrencyFor } = cores;

/** A file tree standing in for / : `files` maps paths under it to their contents. */
async function fakeRoot(t: TapTest, files: Record<string, string>): Promise<string> {
  const root = await tempDir(t);
  for (const [file, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await fs.writeFile(path.join(root, file), text);
  }
  return root;
}

t.test('cgroup v2: the quota of the group or of its tightest ancestor', async (t) => {
  const own = await fakeRoot(t, {
    'proc/self/cgroup': '0::/system.slice/app.service\n',
    'sys/fs/cgroup/cpu.max': 'max 100000\n',
    'sys/fs/cgroup/system.slice/cpu.max': 'max 100000\n',
    'sys/fs/cgroup/system.slice/app.service/cpu.max': '150000 100000\n',
  });
  t.equal(cgroupCpuQuota(own), 1.5, 'its own group: --cpus=1.5');

  const parent = await fakeRoot(t, {
    'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    'sys/fs/cgroup/kubepods/pod1/cpu.max': '200000 100000\n',
    'sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': '400000 100000\n',
  });
  t.equal(cgroupCpuQuota(parent), 2, "the pod's limit is tighter than the container's");

  const none = await fakeRoot(t, {
    'proc/self/cgroup': '0::/user.slice\n',
    'sys/fs/cgroup/user.slice/cpu.max': 'max 100000\n',
  });
  t.equal(cgroupCpuQuota(none), null, '"max": no quota');
});

t.test("inside a container: the group's path is not under the mount", async (t) => {
  // With a cgroup namespace the path may point outside it; without one it may name a
  // directory the container cannot see. Either way the mount's root is the group.
  for (const group of ['/../../docker-abc.scope', '/docker/abc']) {
    const root = await fakeRoot(t, {
      'proc/self/cgroup': `0::${group}\n`,
      'sys/fs/cgroup/cpu.max': '50000 100000\n',
    });
    t.equal(cgroupCpuQuota(root), 0.5, group);
  }
});

t.test('cgroup v1: cfs quota and period of the cpu controller', async (t) => {
  const limited = await fakeRoot(t, {
    'proc/self/cgroup': '5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '300000\n',
    'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
  });
  t.equal(cgroupCpuQuota(limited), 3);

  const viaLink = await fakeRoot(t, {
    'proc/self/cgroup': '4:cpuacct,cpu:/\n',
    'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '25000\n',
    'sys/fs/cgroup/cpu/cpu.cfs_period_us': '50000\n',
  });
  t.equal(cgroupCpuQuota(viaLink), 0.5, 'found under "cpu" when named otherwise');

  const unlimited = await fakeRoot(t, {
    'proc/self/cgroup': '1:cpu:/\n',
    'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
    'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
  });
  t.equal(cgroupCpuQuota(unlimited), null, '-1: no quota');
});

t.test('no cgroups to read: no quota, and the CPUs count', async (t) => {
  const bare = await fakeRoot(t, {});
  t.equal(cgroupCpuQuota(bare), null);
  t.equal(availableCores(bare), os.availableParallelism());
});

t.test('a quota is used only when it is below the CPUs the process may run on', async (t) => {
  const cpus = os.availableParallelism();
  const quota = (cores: number) =>
    fakeRoot(t, {
      'proc/self/cgroup': '0::/\n',
      'sys/fs/cgroup/cpu.max': `${Math.round(cores * 100_000)} 100000\n`,
    });
  t.equal(availableCores(await quota(0.5)), 0.5);
  t.equal(availableCores(await quota(cpus + 8)), cpus);
});

t.test('two encodes per core by default, at least 1 and at most 256', async (t) => {
  t.equal(concurrencyFor(0.25), 1);
  t.equal(concurrencyFor(0.5), 1);
  t.equal(concurrencyFor(1.5), 3);
  t.equal(concurrencyFor(2), 4);
  t.equal(concurrencyFor(64), 128);
  t.equal(concurrencyFor(512), 256);
});
