import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { JOB_LOG_FIELD } from './domain/job-log.js';
import auth from './plugins/app/auth.js';
import multipart from './plugins/external/multipart.js';
import staticFiles from './plugins/external/static.js';
import swagger from './plugins/external/swagger.js';
import underPressure from './plugins/external/under-pressure.js';
import downloadRoutes from './routes/download/index.js';
import healthRoutes from './routes/health/index.js';
import imageRoutes from './routes/images/index.js';
import metricsRoutes from './routes/metrics/index.js';
import requestsRoutes from './routes/requests/index.js';
import rootRoutes from './routes/root/index.js';
import statsRoutes from './routes/stats/index.js';
import statusRoutes from './routes/status/index.js';
import uploadRoutes from './routes/upload/index.js';
import { UUID } from './schemas/common.js';
import type { Services } from './services.js';
import { WEB_DIR } from './web-page.js';

/** A request id as a segment of a request's path (`/status/<id>/products`, `/download/<id>`…). */
const JOB_IN_PATH = new RegExp(`^[^?]*/(${UUID})(?:[/?]|$)`);

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
    // The log lines of a request about a job name it, like the domain's own lines do.
    childLoggerFactory(logger, bindings, opts, rawReq) {
      const id = JOB_IN_PATH.exec(rawReq.url ?? '')?.[1];
      return logger.child(id === undefined ? bindings : { ...bindings, [JOB_LOG_FIELD]: id }, opts);
    },
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
  // Before every route, so that each one is in the OpenAPI document.
  await app.register(swagger);
  await app.register(auth, { token: config.apiToken });
  await app.register(underPressure, {
    maxEventLoopDelayMs: config.overloadEventLoopDelayMs,
    maxRssBytes: config.overloadRssBytes,
  });
  await app.register(multipart, { maxCsvBytes: config.maxCsvBytes });
  await app.register(staticFiles, { imagesDir: config.imagesDir, webDir: WEB_DIR });

  await app.register(rootRoutes);
  await app.register(healthRoutes);
  await app.register(uploadRoutes);
  await app.register(statusRoutes);
  await app.register(requestsRoutes);
  await app.register(downloadRoutes);
  await app.register(imageRoutes);
  await app.register(metricsRoutes);
  await app.register(statsRoutes);
  return app;
}
