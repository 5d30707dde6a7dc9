import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { imageUrl } from '../../domain/urls.js';
import { ErrorResponse, RequestIdParams } from '../../schemas/common.js';
import { JobStatusResponse, ProductsQuery, ProductsResponse } from '../../schemas/jobs.js';
import { EventStream } from './event-stream.js';
import { statusView } from './view.js';

const NOT_FOUND = { error: 'Request not found' };

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
        params: RequestIdParams,
        response: { 200: JobStatusResponse, 400: ErrorResponse, 404: ErrorResponse },
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
        params: RequestIdParams,
        response: { 400: ErrorResponse, 404: ErrorResponse },
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
        params: RequestIdParams,
        querystring: ProductsQuery,
        response: { 200: ProductsResponse, 400: ErrorResponse, 404: ErrorResponse },
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
