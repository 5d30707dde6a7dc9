/**
 * Summarises a V8 CPU profile (`node --cpu-prof`), e.g. of the service during the benchmark:
 *
 *   BENCH_STAGES=e2e BENCH_SERVICE_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench
 *   npx tsx scripts/bench-profile.ts /tmp/prof/CPU.*.cpuprofile [top=25]
 *
 * Prints the main thread's time split (idle, GC, JS and native), self time by package, the
 * top functions by self time, and the service's own functions (dist/) by inclusive time.
 * Only the main thread is sampled: work on libuv's pool (sharp, fs) shows up as idle here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const SPECIAL = new Set(['(idle)', '(garbage collector)', '(program)', '(root)']);

function packageOf(frame: CallFrame): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const { url } = frame;
  if (url === '') return '(native / V8 builtins)';
  if (url.startsWith('node:')) return 'node: internals';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return `service ${url.slice(dist + 1)}`;
  return url;
}

function label(frame: CallFrame): string {
  if (SPECIAL.has(frame.functionName) || frame.url === '') {
    return frame.functionName || '(anonymous)';
  }
  const file = frame.url.replace(/^file:\/\//, '');
  const modules = file.lastIndexOf('/node_modules/');
  const short =
    modules >= 0
      ? file.slice(modules + '/node_modules/'.length)
      : path.relative(process.cwd(), file);
  return `${frame.functionName || '(anonymous)'}  ${short}:${frame.lineNumber + 1}`;
}

function table(title: string, entries: Array<[string, number]>, total: number, top: number): void {
  console.log(`\n${title}`);
  for (const [name, us] of entries.sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const ms = (us / 1000).toFixed(0).padStart(8);
    const pct = ((100 * us) / total).toFixed(1).padStart(5);
    console.log(`${ms} ms ${pct}%  ${name}`);
  }
}

function main(): void {
  const file = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (!file) {
    console.error('usage: tsx scripts/bench-profile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<number, number>();
  // Each sample stands for the interval up to the next one.
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i + 1] ?? 0;
    self.set(id, (self.get(id) ?? 0) + us);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);

  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const pkg = packageOf(node.callFrame);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const name = label(node.callFrame);
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    // Inclusive time of the service's own functions, each counted once per stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame?.url.includes('/dist/') || frame.url.includes('/node_modules/')) continue;
      const own = label(frame);
      if (seen.has(own)) continue;
      seen.add(own);
      inclusive.set(own, (inclusive.get(own) ?? 0) + us);
    }
  }

  const wall = (profile.endTime - profile.startTime) / 1000;
  const idle = byPackage.get('(idle)') ?? 0;
  console.log(`${file}\nprofiled ${(wall / 1000).toFixed(1)} s of the main thread`);
  console.log(
    `main thread busy ${(((total - idle) / total) * 100).toFixed(1)}% (idle ${((idle / total) * 100).toFixed(1)}%)`,
  );
  table('self time by package', [...byPackage], total, top);
  table('top functions by self time', [...byFunction], total, top);
  table('service functions (dist/) by inclusive time', [...inclusive], total, top);
}

main();
