import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * With API_TOKEN set, every route but /health (which load balancers probe without
 * credentials) requires `Authorization: Bearer <token>`. Both sides are hashed to the same
 * length first, so the comparison takes the same time however much of the token matches.
 */
export default fp(
  async (app: FastifyInstance, opts: { token: string | null }) => {
    if (opts.token === null) return;
    const expected = digest(opts.token);
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.url === '/health') return;
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
