import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The malloc settings `npm start` gives the service unless GLIBC_TUNABLES is set already. */
export function startTunables(): string {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const match = /^GLIBC_TUNABLES=\$\{GLIBC_TUNABLES-([^}]*)\} /.exec(pkg.scripts.start);
  if (!match?.[1]) throw new Error('npm start does not set GLIBC_TUNABLES');
  return match[1];
}

/** A port nothing listens on right now, for a child process that must be told its port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
}

/**
 * The real entry point in a process of its own, configured by its environment alone, as
 * `npm start` runs it: `dist/main.cjs`, or `src/server.ts` through tsx (no build needed; the
 * threadpool then keeps libuv's default size, see src/main.cts).
 * Resolves once /health answers; `env.PORT` must be set.
 */
export async function spawnService(
  env: Record<string, string>,
  opts: { entry?: 'src' | 'dist'; showOutput?: boolean } = {},
): Promise<ServiceProcess> {
  // Under tap every spawned node gets tap's loader preloaded (it re-adds it to NODE_OPTIONS
  // even when the env clears it), and that loader starts libuv's threadpool before the
  // entry can size it. The built entry is started through a shell that puts back the
  // NODE_OPTIONS asked for (none by default), with npm start's malloc settings.
  const [command, args] =
    opts.entry === 'dist'
      ? [
          '/bin/sh',
          [
            '-c',
            'NODE_OPTIONS="$SERVICE_NODE_OPTIONS" exec "$@"',
            'sh',
            process.execPath,
            path.join(root, 'dist/main.cjs'),
          ],
        ]
      : [process.execPath, ['--import', 'tsx', path.join(root, 'src/server.ts')]];
  const child = spawn(command, args, {
    cwd: root,
    env: {
      ...(opts.entry === 'dist' ? { GLIBC_TUNABLES: startTunables() } : {}),
      ...process.env,
      ...env,
      SERVICE_NODE_OPTIONS: env.NODE_OPTIONS ?? '',
    },
    stdio: opts.showOutput ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = `http://127.0.0.1:${env.PORT}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`service exited early: ${stderr}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return { child, url };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`service did not start within 20 s: ${stderr}`);
}
