import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  const Ready = Type.Object({
    status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
    store: Type.String(),
    error: Type.Optional(Type.String()),
  });
  app.get('/ready', { schema: { response: { 200: Ready, 503: Ready } } }, async (_req, reply) => {
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
  });
};

export default routes;
