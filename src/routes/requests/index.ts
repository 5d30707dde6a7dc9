import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BadQuery } from '../../schemas/common.js';
import { RequestsQuery, RequestsResponse } from '../../schemas/jobs.js';
import { statusView } from '../status/view.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/requests',
    {
      schema: {
        summary: 'Recent jobs, newest first',
        description: 'Every accepted job, optionally only those in one status, paged.',
        tags: ['jobs'],
        querystring: RequestsQuery,
        response: { 200: RequestsResponse, 400: BadQuery },
      },
    },
    async (request) => {
      const { status, offset, limit } = request.query;
      const page = await app.services.jobs.listJobs(status ?? null, offset, limit);
      return { total: page.total, offset, limit, requests: page.jobs.map(statusView) };
    },
  );
};

export default routes;
