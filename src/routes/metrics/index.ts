import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const EXAMPLE = [
  '# HELP image_batch_images_processed_total Images downloaded, re-encoded and stored',
  '# TYPE image_batch_images_processed_total counter',
  'image_batch_images_processed_total 1290',
  '# HELP image_batch_images_failed_total Images that failed, by reason',
  '# TYPE image_batch_images_failed_total counter',
  'image_batch_images_failed_total{reason="http_error"} 12',
  'image_batch_images_failed_total{reason="timeout"} 3',
  '',
].join('\n');

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Metrics for Prometheus',
        description:
          'Images processed and failed (by reason), bytes in and out, download and encode ' +
          'durations, the pool, jobs by status, webhook calls by outcome, event streams, and ' +
          "the process's own (memory, CPU, event loop). With API_TOKEN set, give Prometheus " +
          'the token (`authorization: {credentials: …}` in the scrape config).',
        tags: ['service'],
        response: {
          200: {
            description: 'The Prometheus text exposition format',
            content: {
              'text/plain; version=0.0.4': { schema: Type.String({ examples: [EXAMPLE] }) },
            },
          },
        },
      },
    },
    async (_request, reply) => {
      const { metrics } = app.services;
      return reply.type(metrics.contentType).send(await metrics.render());
    },
  );
};

export default routes;
