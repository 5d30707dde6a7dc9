/**
 * The whole flow on one machine with no internet: a local image origin, the service
 * (started exactly as `npm start` does), a sample CSV submitted over HTTP, progress until
 * it completes, and the results CSV. Run with `npm run demo`.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startOrigin } from '../test/helpers/origin.js';
import { freePort, spawnService } from '../test/helpers/service-process.js';

async function main(): Promise<void> {
  const origin = await startOrigin();
  const port = await freePort();
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'image-batch-demo-'));
  const { child: service, url } = await spawnService(
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: path.join(workDir, 'data'),
      IMAGES_DIR: path.join(workDir, 'processed_images'),
      RESULTS_DIR: path.join(workDir, 'processed_results'),
      // The demo's image origin is on loopback.
      ALLOW_PRIVATE_NETWORKS: 'true',
      LOG_LEVEL: 'warn',
    },
    { entry: 'dist', showOutput: true },
  );
  try {
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
