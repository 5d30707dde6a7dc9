import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

const RETRY_AFTER_SECONDS = 10;

/**
 * When the event loop lags or memory climbs past its bound, new uploads are turned away
 * (CSV and direct image uploads alike) with 503 and Retry-After, so the process sheds new
 * work instead of falling over; status polls, downloads and the images in flight carry on.
 */
export default fp(
  async (app: FastifyInstance, opts: { maxEventLoopDelayMs: number; maxRssBytes: number }) => {
    await app.register(underPressure, {
      maxEventLoopDelay: opts.maxEventLoopDelayMs,
      maxRssBytes: opts.maxRssBytes,
      pressureHandler: (request, reply, type, value) => {
        const url = request.routeOptions.url;
        if (url !== '/upload' && !(url === '/images' && request.method === 'POST')) return;
        request.log.warn({ type, value }, 'upload refused: service under pressure');
        reply
          .code(503)
          .header('retry-after', String(RETRY_AFTER_SECONDS))
          .send({ error: `Service is overloaded (${type}); retry in ${RETRY_AFTER_SECONDS} s` });
      },
    });
  },
  { name: 'under-pressure' },
);
