import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createServices } from './services.js';

const SHUTDOWN_DEADLINE_MS = 25_000;

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty });
  const services = await createServices(config, log);
  const app = await buildApp(services, log);
  await services.start();
  await app.listen({ port: config.port, host: config.host });
  log.info(
    {
      store: services.store.kind,
      concurrency: config.concurrency,
      downloadConcurrency: config.downloadConcurrency,
      uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    },
    'service ready',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    try {
      await app.close();
      await services.stop(SHUTDOWN_DEADLINE_MS);
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
