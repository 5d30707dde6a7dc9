import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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
 * `npm start` runs it: `dist/server.js`, or `src/server.ts` through tsx (no build needed).
 * Resolves once /health answers; `env.PORT` must be set.
 */
export async function spawnService(
  env: Record<string, string>,
  opts: { entry?: 'src' | 'dist'; showOutput?: boolean } = {},
): Promise<ServiceProcess> {
  const args =
    opts.entry === 'dist'
      ? [path.join(root, 'dist/server.js')]
      : ['--import', 'tsx', path.join(root, 'src/server.ts')];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
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
