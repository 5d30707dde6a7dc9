import fs from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export default fp(
  async (app: FastifyInstance, opts: { imagesDir: string; webDir: string }) => {
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

    // The web page's scripts and styles hold no data, so they need no token. Their names
    // do not change between builds: browsers revalidate (ETag) instead of caching blindly.
    await app.register(async (web) => {
      web.addHook('onRoute', (route) => {
        route.config = { ...route.config, public: true };
      });
      await web.register(fastifyStatic, {
        root: opts.webDir,
        prefix: '/app/',
        decorateReply: false,
        index: false,
        list: false,
        dotfiles: 'deny',
        cacheControl: true,
        maxAge: 0,
      });
    });
  },
  { name: 'static' },
);
