import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SERVICE_NAME, SERVICE_VERSION } from '../../version.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        response: {
          200: Type.Object({
            name: Type.String(),
            version: Type.String(),
            links: Type.Record(Type.String(), Type.String()),
          }),
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
        upload_image: 'POST /images',
        images: 'GET /images',
        image: 'GET /images/{id}',
        thumbnail: 'GET /images/{id}/thumbnails/{size}',
        health: 'GET /health',
        ready: 'GET /ready',
      },
    }),
  );
};

export default routes;
