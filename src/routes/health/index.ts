import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        summary: 'Liveness: the process is up',
        description: 'Needs no token, even with API_TOKEN set, for load-balancer probes.',
        tags: ['service'],
        response: {
          200: Type.Object(
            { status: Type.Literal('ok') },
            { description: 'The process is up', examples: [{ status: 'ok' }] },
          ),
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  const readyFields = {
    status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
    store: Type.String({ description: '`embedded` (SQLite) or `mongodb`' }),
    error: Type.Optional(Type.String({ description: 'Why the store did not answer' })),
  };
  const Ready = Type.Object(readyFields, {
    description: 'The store answers: the service can take work',
    examples: [{ status: 'ready', store: 'embedded' }],
  });
  const Unavailable = Type.Object(readyFields, {
    description: 'The store does not answer',
    examples: [
      {
        status: 'unavailable',
        store: 'mongodb',
        error: 'Server selection timed out after 5000 ms',
      },
    ],
  });
  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: the store answers',
        tags: ['service'],
        response: { 200: Ready, 503: Unavailable },
      },
    },
    async (_req, reply) => {
      const { store } = app.services;
      try {
        await store.ping();
        return { status: 'ready' as const, store: store.kind };
      } catch (err) {
        return reply.code(503).send({
          status: 'unavailable' as const,
          store: store.kind,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    },
  );
};

export default routes;
