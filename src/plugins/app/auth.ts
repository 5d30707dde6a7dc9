import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Unauthorized } from '../../schemas/common.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the token: always (true), or for the requests the function accepts. */
    public?: boolean | ((request: FastifyRequest) => boolean);
  }
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * The API documentation holds no data, and a browser opening /docs cannot send a token.
 * (Its routes come from @fastify/swagger-ui, so they are known by their URL.)
 */
const isDocs = (url: string | undefined): boolean =>
  url === '/docs' || url?.startsWith('/docs/') === true;

/**
 * With API_TOKEN set, every route requires `Authorization: Bearer <token>` but the public
 * ones: the API documentation, and the routes whose config says so: /health, which load
 * balancers probe without credentials, and the web page with its assets, which hold no
 * data (GET / only for the browsers it answers with the page; its JSON needs the token).
 * Both sides are hashed to the same length first, so the comparison takes the same time
 * however much of the token matches.
 */
export default fp(
  async (app: FastifyInstance, opts: { token: string | null }) => {
    // The API description is the same with or without a token: each route says whether it
    // needs one, and the 401 it then answers.
    app.addHook('onRoute', (route) => {
      const schema = route.schema ?? {};
      route.schema =
        isDocs(route.url) || route.config?.public === true
          ? { ...schema, security: [] }
          : { ...schema, response: { 401: Unauthorized, ...(schema.response as object) } };
    });
    if (opts.token === null) return;
    const expected = digest(opts.token);
    app.addHook('onRequest', async (request, reply) => {
      const open = request.routeOptions.config.public;
      if (open === true || (typeof open === 'function' && open(request))) return;
      if (isDocs(request.routeOptions.url)) return;
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
