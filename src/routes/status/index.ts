import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { imageUrl } from '../../domain/urls.js';
import { Type } from '@sinclair/typebox';
import {
  BadQuery,
  EXAMPLE_ID,
  MalformedId,
  NotFound,
  RequestIdParams,
} from '../../schemas/common.js';
import { JobStatusResponse, ProductsQuery, ProductsResponse } from '../../schemas/jobs.js';
import { EventStream } from './event-stream.js';
import { metadataView, statusView, thumbnailUrls } from './view.js';

const NOT_FOUND = { error: 'Request not found' };

const EVENTS_EXAMPLE = [
  'event: progress',
  'id: 1',
  `data: {"request_id":"${EXAMPLE_ID}","status":"PROCESSING","progress":{"images_total":3,"images_processed":2,"percent":66.6,…},…}`,
  '',
  ': keepalive',
  '',
  'event: progress',
  'id: 2',
  `data: {"request_id":"${EXAMPLE_ID}","status":"COMPLETED","progress":{"images_total":3,"images_processed":3,"percent":100,…},…}`,
  '',
  'event: done',
  'id: 3',
  `data: {"request_id":"${EXAMPLE_ID}","status":"COMPLETED",…}`,
  '',
  '',
].join('\n');

const routes: FastifyPluginAsyncTypebox = async (app) => {
  // An event stream only ends when its job does, so a shutdown ends the open ones itself;
  // otherwise the HTTP server would wait for them before closing.
  const streams = new Set<EventStream>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });

  app.get(
    '/status/:request_id',
    {
      schema: {
        summary: "A job's status and progress",
        tags: ['jobs'],
        params: RequestIdParams,
        response: { 200: JobStatusResponse, 400: MalformedId, 404: NotFound },
      },
    },
    async (request, reply) => {
      const job = await app.services.jobs.getJob(request.params.request_id);
      if (!job) return reply.code(404).send(NOT_FOUND);
      return statusView(job);
    },
  );

  app.get(
    '/status/:request_id/events',
    {
      schema: {
        summary: "A job's progress, live (Server-Sent Events)",
        description:
          '`event: progress` with the body of GET /status/{request_id} at once and whenever ' +
          'it changes (at most about 4 times a second); once the job is COMPLETED or FAILED, ' +
          '`event: done` with the final body, and the stream ends. A `: keepalive` comment ' +
          'every 15 s while nothing changes; every event has an `id:`. EventSource works ' +
          'without API_TOKEN; with it, use fetch with the Authorization header and read the ' +
          'body stream.',
        tags: ['jobs'],
        params: RequestIdParams,
        response: {
          200: {
            description: 'The event stream, until the job is done',
            content: {
              'text/event-stream': {
                schema: Type.String({
                  description: 'Events whose data is the GET /status/{request_id} body',
                  examples: [EVENTS_EXAMPLE],
                }),
              },
            },
          },
          400: MalformedId,
          404: NotFound,
        },
      },
    },
    async (request, reply) => {
      const { jobs, watchers } = app.services;
      const job = await jobs.getJob(request.params.request_id);
      if (!job) return reply.code(404).send(NOT_FOUND);
      reply.hijack();
      const stream = new EventStream(reply.raw);
      streams.add(stream);
      const stop = watchers.watch(job, (event) => {
        if (event.type === 'progress') stream.send('progress', statusView(event.job));
        if (event.type === 'keepalive') stream.comment('keepalive');
        if (event.type === 'done') stream.send('done', statusView(event.job));
        if (event.type === 'done' || event.type === 'gone') stream.end();
      });
      reply.raw.once('close', () => {
        stop();
        streams.delete(stream);
      });
    },
  );

  app.get(
    '/status/:request_id/products',
    {
      schema: {
        summary: "A job's products, with each image's outcome",
        tags: ['jobs'],
        params: RequestIdParams,
        querystring: ProductsQuery,
        response: {
          200: ProductsResponse,
          400: Type.Union([MalformedId, BadQuery], {
            description: 'A malformed request id, or offset or limit out of range',
            examples: [...MalformedId.examples, ...BadQuery.examples],
          }),
          404: NotFound,
        },
      },
    },
    async (request, reply) => {
      const { jobs } = app.services;
      const job = await jobs.getJob(request.params.request_id);
      if (!job) return reply.code(404).send(NOT_FOUND);
      const { offset, limit } = request.query;
      const products = await jobs.listProducts(job.id, offset, limit);
      const seqs = [...new Set(products.flatMap((p) => p.imageSeqs))];
      const images = new Map((await jobs.findImages(job.id, seqs)).map((i) => [i.seq, i]));
      return {
        request_id: job.id,
        offset,
        limit,
        total: job.productsTotal,
        products: products.map((product) => {
          const views = product.imageSeqs.map((seq, position) => {
            const image = images.get(seq);
            const output =
              image?.status === 'PROCESSED' && image.outputFile
                ? imageUrl(job.baseUrl, image.outputFile)
                : null;
            return {
              url: product.inputUrls[position] ?? '',
              status: image?.status ?? ('PENDING' as const),
              output_url: output,
              bytes_in: image?.bytesIn ?? null,
              bytes_out: image?.bytesOut ?? null,
              error: image?.error ?? null,
              metadata: image === undefined ? null : metadataView(image),
              thumbnails: thumbnailUrls(job, image),
            };
          });
          return {
            row: product.row,
            serial: product.serial,
            name: product.name,
            input_urls: product.inputUrls,
            output_urls: views.map((v) => v.output_url),
            images: views,
          };
        }),
      };
    },
  );
};

export default routes;
