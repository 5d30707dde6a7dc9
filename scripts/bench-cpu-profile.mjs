/**
 * Preload that CPU-profiles the process it is loaded into, for `BENCH_CPU_PROFILE_DIR`
 * (see scripts/bench.ts). Node 20 refuses `--cpu-prof` in NODE_OPTIONS, so the benchmark
 * starts the service with `NODE_OPTIONS=--import <this file>` instead. The profile is
 * written when the process exits normally (the service does on SIGTERM), as
 * `$BENCH_CPU_PROFILE_DIR/$BENCH_CPU_PROFILE_NAME-<pid>.cpuprofile`; read it with
 * scripts/bench-profile.ts or Chrome DevTools.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // A connected in-process session answers synchronously, so this completes before exit.
    session.post('Profiler.stop', (err, result) => {
      if (err) {
        process.stderr.write(`cpu profile not written: ${err.message}\n`);
        return;
      }
      mkdirSync(dir, { recursive: true });
      const name = `${process.env.BENCH_CPU_PROFILE_NAME ?? 'service'}-${process.pid}.cpuprofile`;
      writeFileSync(path.join(dir, name), JSON.stringify(result.profile));
    });
  });
}
