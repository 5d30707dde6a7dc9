import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import auth from './plugins/app/auth.js';
import multipart from './plugins/external/multipart.js';
import staticFiles from './plugins/external/static.js';
import underPressure from './plugins/external/under-pressure.js';
import downloadRoutes from './routes/download/index.js';
import healthRoutes from './routes/health/index.js';
import imageRoutes from './routes/images/index.js';
import rootRoutes from './routes/root/index.js';
import statusRoutes from './routes/status/index.js';
import uploadRoutes from './routes/upload/index.js';
import type { Services } from './services.js';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}

/** Builds the HTTP layer over already-wired services; it starts no background work itself. */
export async function buildApp(services: Services, log: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('services', services);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const message =
        error.validationContext === 'params'
          ? 'Malformed request id: expected the UUID returned by POST /upload or POST /images'
          : `Invalid ${error.validationContext}: ${error.message}`;
      return reply.code(400).send({ error: message });
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply
      .code(status)
      .send({ error: status >= 500 ? 'Internal server error' : error.message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `No route for ${request.method} ${request.url.split('?')[0]}` }),
  );

  const { config } = services;
  await app.register(auth, { token: config.apiToken });
  await app.register(underPressure, {
    maxEventLoopDelayMs: config.overloadEventLoopDelayMs,
    maxRssBytes: config.overloadRssBytes,
  });
  await app.register(multipart, { maxCsvBytes: config.maxCsvBytes });
  await app.register(staticFiles, { imagesDir: config.imagesDir });

  await app.register(rootRoutes);
  await app.register(healthRoutes);
  await app.register(uploadRoutes);
  await app.register(statusRoutes);
  await app.register(downloadRoutes);
  await app.register(imageRoutes);
  return app;
}
