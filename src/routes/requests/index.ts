import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { JobConflict } from '../../domain/job-manager.js';
import { BadQuery, MalformedId, NotFound, RequestIdParams } from '../../schemas/common.js';
import { RequestsQuery, RequestsResponse } from '../../schemas/jobs.js';
import {
  DeleteConflict,
  DeleteRejected,
  DeleteRequestQuery,
  RequestDeleted,
  RetryAccepted,
  RetryConflict,
} from '../../schemas/manage.js';
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
        summary: 'Recent jobs, newest first',
        description:
          'Every accepted job, optionally only those in one status or of one kind (CSV jobs ' +
          'or direct image uploads), paged.',
        tags: ['jobs'],
        querystring: RequestsQuery,
        response: { 200: RequestsResponse, 400: BadQuery },
      },
    },
    async (request) => {
      const { status, kind, offset, limit } = request.query;
      const page = await app.services.jobs.listJobs({ status, kind }, offset, limit);
      return { total: page.total, offset, limit, requests: page.jobs.map(statusView) };
    },
  );

  app.delete(
    '/requests/:request_id',
    {
      schema: {
        summary: 'Delete a job and its files',
        description:
          'Removes the job, its products and images, its output images and its results CSV. ' +
          'A PENDING or PROCESSING job is only deleted with force=true, which cancels it ' +
          'first: its images in flight are abandoned, other jobs carry on, and no webhook is ' +
          'sent for it.',
        tags: ['jobs'],
        params: RequestIdParams,
        querystring: DeleteRequestQuery,
        response: {
          204: RequestDeleted,
          400: DeleteRejected,
          404: NotFound,
          409: DeleteConflict,
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
        summary: "Retry a completed job's failed images",
        description:
          'Queues only the FAILED images of a COMPLETED job again. The job is PROCESSING ' +
          'until they are done, then completes again: the results CSV is rewritten and the ' +
          'webhook sent as a new delivery (X-Webhook-Id <request_id>.2, then .3).',
        tags: ['jobs'],
        params: RequestIdParams,
        response: {
          202: RetryAccepted,
          400: MalformedId,
          404: NotFound,
          409: RetryConflict,
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
