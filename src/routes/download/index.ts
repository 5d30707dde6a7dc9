import { createReadStream, type ReadStream } from 'node:fs';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { MalformedId, NotFound, NotReady, RequestIdParams } from '../../schemas/common.js';
import { RESULTS_CSV_EXAMPLE } from '../../schemas/jobs.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/download/:request_id',
    {
      schema: {
        summary: 'The results CSV of a COMPLETED job',
        description:
          'The input columns, in their order, then `Output Image Urls` (position for position ' +
          'with the input URLs, empty where an image failed) and `Errors`.',
        tags: ['results'],
        params: RequestIdParams,
        response: {
          200: {
            description: 'The results CSV, as an attachment',
            content: {
              'text/csv': {
                schema: Type.Unsafe<ReadStream>({
                  type: 'string',
                  examples: [RESULTS_CSV_EXAMPLE],
                }),
              },
            },
          },
          400: MalformedId,
          404: NotFound,
          409: NotReady,
        },
      },
    },
    async (request, reply) => {
      const { jobs } = app.services;
      const job = await jobs.getJob(request.params.request_id);
      if (!job) return reply.code(404).send({ error: 'Request not found' });
      if (job.kind === 'image') {
        return reply.code(404).send({
          error: `Request ${job.id} is a direct image upload, which has no results CSV: see GET /images/${job.id}`,
        });
      }
      if (job.status !== 'COMPLETED') {
        return reply
          .code(409)
          .send({ error: `Results are not ready: the job is ${job.status}`, status: job.status });
      }
      const file = await jobs.resultsPath(job);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="results-${job.id}.csv"`)
        .send(createReadStream(file));
    },
  );
};

export default routes;
