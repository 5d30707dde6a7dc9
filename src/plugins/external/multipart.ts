import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export default fp(
  async (app: FastifyInstance, opts: { maxCsvBytes: number }) => {
    await app.register(multipart, {
      // The CSV is parsed as it streams in, so its size limit is enforced as bytes arrive.
      limits: { fileSize: opts.maxCsvBytes, files: 1, fields: 20, fieldSize: 8192, parts: 25 },
    });
  },
  { name: 'multipart' },
);
