import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Unauthorized } from '../../schemas/common.js';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Routes anyone may call: /health, which load balancers probe without credentials, and the
 * API documentation, which holds no data (and a browser opening /docs cannot send a token).
 */
function isPublic(url: string | undefined): boolean {
  return url === '/health' || url === '/docs' || url?.startsWith('/docs/') === true;
}

/**
 * With API_TOKEN set, every route but the public ones requires
 * `Authorization: Bearer <token>`. Both sides are hashed to the same length first, so the
 * comparison takes the same time however much of the token matches.
 */
export default fp(
  async (app: FastifyInstance, opts: { token: string | null }) => {
    // The API description is the same with or without a token: each route says whether it
    // needs one, and the 401 it then answers.
    app.addHook('onRoute', (route) => {
      const schema = route.schema ?? {};
      route.schema = isPublic(route.url)
        ? { ...schema, security: [] }
        : { ...schema, response: { 401: Unauthorized, ...(schema.response as object) } };
    });
    if (opts.token === null) return;
    const expected = digest(opts.token);
    app.addHook('onRequest', async (request, reply) => {
      if (isPublic(request.routeOptions.url)) return;
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected)) return;
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'Missing or invalid bearer token (Authorization: Bearer <API_TOKEN>)' });
    });
  },
  { name: 'auth' },
);
