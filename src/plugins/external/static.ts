import fs from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { RequestIdParams, Unauthorized } from '../../schemas/common.js';

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

const binary = { schema: { type: 'string', format: 'binary' } };
const json = (schema: object) => ({ 'application/json': { schema } });

/**
 * The API description of the images served above. The static route is one wildcard
 * (`/processed_images/*`), which OpenAPI cannot express, so its path is described here.
 */
export const imagesApiPaths = {
  '/processed_images/{request_id}/{file}': {
    get: {
      summary: 'A compressed image, or one of its thumbnails',
      description:
        'Named after the first row and position that used the URL (`1-2.jpg`: row 1, second ' +
        'URL), so reprocessing overwrites rather than duplicates; a thumbnail adds its size ' +
        '(`1-2.small.jpg`, `1-2.300x200.jpg`), and a direct upload is `image.jpg` with ' +
        '`image.small.jpg` and `image.medium.jpg`. Cached for an hour.',
      tags: ['results'],
      parameters: [
        {
          in: 'path',
          name: 'request_id',
          required: true,
          schema: RequestIdParams.properties.request_id,
        },
        {
          in: 'path',
          name: 'file',
          required: true,
          description:
            '`<row>-<position>.<ext>` or `image.<ext>`, with `.<size>` before `.<ext>` for a ' +
            'thumbnail, as in the output and thumbnail URLs',
          schema: {
            type: 'string',
            pattern:
              '^([0-9]+-[0-9]+|image)(\\.(small|medium|[0-9]+x[0-9]+))?\\.(jpg|webp|avif|png)$',
          },
          example: '1-1.jpg',
        },
      ],
      responses: {
        200: {
          description: 'The image, in the format the job asked for',
          content: {
            'image/jpeg': binary,
            'image/webp': binary,
            'image/avif': binary,
            'image/png': binary,
          },
        },
        401: { description: Unauthorized.description, content: json(Unauthorized) },
        404: {
          description: 'No such image (not processed, failed, or not in this job)',
          content: json({
            type: 'object',
            required: ['error'],
            properties: { error: { type: 'string' } },
            examples: [
              {
                error:
                  'No route for GET /processed_images/0b7c2a7e-5f7e-4b1c-9a57-0d8c1f3e2a11/9-9.jpg',
              },
            ],
          }),
        },
      },
    },
  },
};

/** The API description of the web page's assets, one wildcard route like the images. */
export const webApiPaths = {
  '/app/{file}': {
    get: {
      summary: "The web page's script and stylesheet",
      description:
        'Served without the token: they hold no data. Revalidated by ETag, since their names ' +
        'stay the same from one build to the next.',
      tags: ['service'],
      security: [],
      parameters: [
        {
          in: 'path',
          name: 'file',
          required: true,
          schema: { type: 'string', enum: ['main.js', 'app.css'] },
          example: 'main.js',
        },
      ],
      responses: {
        200: {
          description: 'The file',
          content: {
            'application/javascript': {
              schema: { type: 'string', examples: ['const e=document.getElementById…'] },
            },
            'text/css': { schema: { type: 'string', examples: [':root{--bg:#f4f5f7}'] } },
          },
        },
        404: {
          description: 'No such file',
          content: json({
            type: 'object',
            required: ['error'],
            properties: { error: { type: 'string' } },
            examples: [{ error: 'No route for GET /app/nope.js' }],
          }),
        },
      },
    },
  },
};
