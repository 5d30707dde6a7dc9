import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SERVICE_NAME, SERVICE_VERSION } from '../../version.js';
import { WEB_DIR } from '../../web-page.js';
import { prefersHtml } from './accept.js';

const Index = Type.Object(
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
);

const NOT_BUILT =
  '<!doctype html><html lang="en"><meta charset="utf-8"><title>Web page not built</title>' +
  '<p>The web page has not been built. Run <code>npm run build</code> and restart.</p></html>\n';

/**
 * The page holds no data (it fetches everything with the user's token), so it is served
 * without one. Everything it loads is same-origin except the "before" thumbnails, which
 * are the products' own image URLs.
 */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; img-src 'self' http: https: blob:; connect-src 'self' http: https:; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const page = await readFile(path.join(WEB_DIR, 'index.html'), 'utf8').catch(() => {
    app.log.warn({ dir: WEB_DIR }, 'web page not built; GET / will say so to browsers');
    return null;
  });

  app.get(
    '/',
    {
      config: { public: (request) => prefersHtml(request.headers.accept) },
      schema: {
        summary: 'The web page for browsers; the service name, version and links for others',
        description:
          'Answers the web page when the Accept header ranks text/html above ' +
          'application/json (browsers), and needs no token then: the page holds no data. ' +
          'Everyone else (curl, scripts, `*/*`) gets the JSON index, behind the token.',
        tags: ['service'],
        response: {
          200: {
            description: 'The JSON index, or the web page',
            content: {
              'application/json': { schema: Index },
              'text/html': {
                schema: Type.String({
                  description: 'The web page',
                  examples: ['<!doctype html><html lang="en">…</html>'],
                }),
              },
            },
          },
          503: {
            description: 'The web page has not been built (`npm run build`); browsers only',
            content: { 'text/html': { schema: Type.String({ examples: [NOT_BUILT] }) } },
          },
        },
      },
    },
    async (request, reply) => {
      reply.header('vary', 'accept');
      if (prefersHtml(request.headers.accept)) {
        return reply
          .code(page === null ? 503 : 200)
          .headers(PAGE_HEADERS)
          .send(page ?? NOT_BUILT);
      }
      return reply.type('application/json; charset=utf-8').send({
        name: SERVICE_NAME,
        version: SERVICE_VERSION,
        links: {
          page: 'GET / with Accept: text/html',
          upload: 'POST /upload',
          status: 'GET /status/{request_id}',
          products: 'GET /status/{request_id}/products',
          events: 'GET /status/{request_id}/events',
          download: 'GET /download/{request_id}',
          upload_image: 'POST /images',
          images: 'GET /images',
          image: 'GET /images/{id}',
          thumbnail: 'GET /images/{id}/thumbnails/{size}',
          requests: 'GET /requests',
          docs: 'GET /docs',
          health: 'GET /health',
          ready: 'GET /ready',
        },
      });
    },
  );
};

export default routes;
