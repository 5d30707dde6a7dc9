import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { OpenAPIV3_1 } from 'openapi-types';
import { SERVICE_NAME, SERVICE_VERSION } from '../../version.js';
import { imagesApiPaths, webApiPaths } from './static.js';

const DESCRIPTION = `Bulk product-image compression. Upload a CSV of products and image URLs
(\`POST /upload\`); the service downloads every image, re-encodes it, and writes a results CSV
with the new URLs. Follow a job with \`GET /status/{request_id}\`, its event stream, or a webhook.

With \`API_TOKEN\` set, every endpoint but \`/health\` (and this documentation) needs
\`Authorization: Bearer <API_TOKEN>\`: use **Authorize** to try requests.`;

/**
 * The OpenAPI document, built from the route schemas (every route registered after this
 * plugin), at /docs/json, and Swagger UI at /docs. Swagger UI's assets ship with the
 * package and are served from here, so the page works offline.
 */
export default fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: SERVICE_NAME, version: SERVICE_VERSION, description: DESCRIPTION },
        tags: [
          { name: 'jobs', description: 'Submit a CSV and follow its job' },
          { name: 'results', description: 'The results CSV and the compressed images' },
          { name: 'images', description: 'Upload one image without a CSV, and follow it' },
          { name: 'service', description: 'Probes, metrics and the index' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              description: 'The API_TOKEN the service was started with (only when one is set)',
            },
          },
        },
        security: [{ bearerAuth: [] }],
        // Written by hand, so openapi-types cannot tell its JSON Schema from its own; the
        // document test validates it with the rest.
        paths: { ...imagesApiPaths, ...webApiPaths } as OpenAPIV3_1.PathsObject,
      },
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: true },
    });
  },
  { name: 'swagger' },
);
