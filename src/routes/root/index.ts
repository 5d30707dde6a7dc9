import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SERVICE_NAME, SERVICE_VERSION } from '../../version.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        summary: 'The service: name, version and endpoints',
        tags: ['service'],
        response: {
          200: Type.Object(
            {
              name: Type.String(),
              version: Type.String(),
              links: Type.Record(Type.String(), Type.String()),
            },
            {
              description: 'What this service is',
              examples: [
                {
                  name: SERVICE_NAME,
                  version: SERVICE_VERSION,
                  links: { upload: 'POST /upload', status: 'GET /status/{request_id}' },
                },
              ],
            },
          ),
        },
      },
    },
    async () => ({
      name: SERVICE_NAME,
      version: SERVICE_VERSION,
      links: {
        upload: 'POST /upload',
        status: 'GET /status/{request_id}',
        products: 'GET /status/{request_id}/products',
        download: 'GET /download/{request_id}',
        health: 'GET /health',
        ready: 'GET /ready',
      },
    }),
  );
};

export default routes;
