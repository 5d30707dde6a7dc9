import { createReadStream, type ReadStream } from 'node:fs';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorResponse, NotReady, RequestIdParams } from '../../schemas/common.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/download/:request_id',
    {
      schema: {
        params: RequestIdParams,
        produces: ['text/csv'],
        response: {
          200: Type.Unsafe<ReadStream>({
            type: 'string',
            format: 'binary',
            description: 'The results CSV',
          }),
          400: ErrorResponse,
          404: ErrorResponse,
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
