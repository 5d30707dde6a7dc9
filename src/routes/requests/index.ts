import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { JobConflict } from '../../domain/job-manager.js';
import { ErrorResponse, RequestIdParams } from '../../schemas/common.js';
import { JobStatusResponse, RequestsQuery, RequestsResponse } from '../../schemas/jobs.js';
import { DeleteRequestQuery, JobConflictResponse, RequestDeleted } from '../../schemas/manage.js';
import { statusView } from '../status/view.js';

const NOT_FOUND = { error: 'Request not found' };

/** Answers 409 for a job in the wrong status; anything else goes to the error handler. */
function conflict(reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof JobConflict)) throw err;
  return reply.code(409).send({ error: err.message, status: err.status });
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/requests',
    {
      schema: {
        querystring: RequestsQuery,
        response: { 200: RequestsResponse, 400: ErrorResponse },
      },
    },
    async (request) => {
      const { status, offset, limit } = request.query;
      const page = await app.services.jobs.listJobs(status ?? null, offset, limit);
      return { total: page.total, offset, limit, requests: page.jobs.map(statusView) };
    },
  );

  app.delete(
    '/requests/:request_id',
    {
      schema: {
        params: RequestIdParams,
        querystring: DeleteRequestQuery,
        response: {
          204: RequestDeleted,
          400: ErrorResponse,
          404: ErrorResponse,
          409: JobConflictResponse,
        },
      },
    },
    async (request, reply) => {
      try {
        const deleted = await app.services.manager.delete(
          request.params.request_id,
          request.query.force,
        );
        if (!deleted) return reply.code(404).send(NOT_FOUND);
        return reply.code(204).send(null);
      } catch (err) {
        return conflict(reply, err);
      }
    },
  );

  app.post(
    '/requests/:request_id/retry-failed',
    {
      schema: {
        params: RequestIdParams,
        response: {
          202: JobStatusResponse,
          400: ErrorResponse,
          404: ErrorResponse,
          409: JobConflictResponse,
        },
      },
    },
    async (request, reply) => {
      try {
        const job = await app.services.manager.retryFailed(request.params.request_id);
        if (!job) return reply.code(404).send(NOT_FOUND);
        return reply.code(202).send(statusView(job));
      } catch (err) {
        return conflict(reply, err);
      }
    },
  );
};

export default routes;
