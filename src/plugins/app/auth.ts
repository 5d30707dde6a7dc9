import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the token: always (true), or for the requests the function accepts. */
    public?: boolean | ((request: FastifyRequest) => boolean);
  }
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * With API_TOKEN set, every route requires `Authorization: Bearer <token>` but those whose
 * config marks them public: /health (load balancers probe without credentials) and the web
 * page with its assets (they hold no data). Both sides are hashed to the same
 * length first, so the comparison takes the same time however much of the token matches.
 */
export default fp(
  async (app: FastifyInstance, opts: { token: string | null }) => {
    if (opts.token === null) return;
    const expected = digest(opts.token);
    app.addHook('onRequest', async (request, reply) => {
      const open = request.routeOptions.config.public;
      if (open === true || (typeof open === 'function' && open(request))) return;
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
