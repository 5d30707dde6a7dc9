import fs from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export default fp(
  async (app: FastifyInstance, opts: { imagesDir: string }) => {
    fs.mkdirSync(opts.imagesDir, { recursive: true });
    await app.register(fastifyStatic, {
      root: opts.imagesDir,
      prefix: '/processed_images/',
      decorateReply: false,
      index: false,
      list: false,
      dotfiles: 'deny',
      immutable: false,
      cacheControl: true,
      maxAge: '1h',
    });
  },
  { name: 'static' },
);
