/**
 * The whole flow on one machine with no internet: a local image origin, the service
 * (started exactly as `npm start` does), a sample CSV submitted over HTTP, progress until
 * it completes, and the results CSV. Run with `npm run demo`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOrigin } from '../test/helpers/origin.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`service exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('service did not start within 10 s');
}

async function main(): Promise<void> {
  const origin = await startOrigin();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'image-batch-demo-'));
  const service = spawn(process.execPath, [path.join(root, 'dist/server.js')], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: path.join(workDir, 'data'),
      IMAGES_DIR: path.join(workDir, 'processed_images'),
      RESULTS_DIR: path.join(workDir, 'processed_results'),
      // The demo's image origin is on loopback.
      ALLOW_PRIVATE_NETWORKS: 'true',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitUntilUp(url, service);
    console.log(`image origin  ${origin.url}\nservice       ${url}\n`);

    const csv = [
      'S. No.,Product Name,Input Image Urls,Brand',
      `1,Linen shirt,"${origin.url}/img/photo1.jpg, ${origin.url}/img/photo2.jpg",Acme`,
      `2,Canvas bag,${origin.url}/img/big.jpg,Acme`,
      `3,Sticker,"${origin.url}/img/alpha.png, ${origin.url}/img/pic.webp",Zed`,
      `4,Sun hat,${origin.url}/img/rotated.jpg,Zed`,
      `5,Lost item,${origin.url}/status/404,Zed`,
    ].join('\n');
    console.log(`Submitting this CSV to POST /upload:\n\n${csv}\n`);
    const form = new FormData();
    form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
    form.append('quality', '60');
    const accepted = (await (
      await fetch(`${url}/upload`, { method: 'POST', body: form })
    ).json()) as {
      request_id: string;
      status_url: string;
      download_url: string;
    };
    console.log('202 Accepted:', JSON.stringify(accepted, null, 2), '\n');

    let status: { status: string; progress: Record<string, number> };
    do {
      await new Promise((r) => setTimeout(r, 200));
      status = (await (await fetch(accepted.status_url)).json()) as typeof status;
      const p = status.progress;
      console.log(
        `${status.status.padEnd(10)} ${String(p.percent).padStart(5)}%  images ${p.images_processed} ok, ${p.images_failed} failed of ${p.images_total}`,
      );
    } while (status.status !== 'COMPLETED' && status.status !== 'FAILED');

    const results = await (await fetch(accepted.download_url)).text();
    const saved = path.join(workDir, 'processed_results', `${accepted.request_id}.csv`);
    console.log(`\nResults CSV (GET ${accepted.download_url}):\n\n${results}`);
    console.log(
      `Saved at ${saved}\nImages in ${path.join(workDir, 'processed_images', accepted.request_id)}`,
    );
  } finally {
    service.kill('SIGTERM');
    await origin.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
