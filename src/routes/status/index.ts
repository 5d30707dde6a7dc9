import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { downloadUrl, imageUrl } from '../../domain/urls.js';
import { ErrorResponse, RequestIdParams } from '../../schemas/common.js';
import { JobStatusResponse, ProductsQuery, ProductsResponse } from '../../schemas/jobs.js';
import type { ImageRecord, JobRecord } from '../../store/job-store.js';

const NOT_FOUND = { error: 'Request not found' };

/** An image's `metadata` as the API shows it; null until it is processed. */
export function metadataView(image: ImageRecord) {
  const { metadata } = image;
  if (image.status !== 'PROCESSED' || metadata === null) return null;
  return {
    width: metadata.width,
    height: metadata.height,
    format: metadata.format,
    input: { ...metadata.input },
    orientation: metadata.orientation,
    rotated: metadata.rotated,
    bytes_in: image.bytesIn,
    bytes_out: image.bytesOut,
    processing_ms: image.processingMs,
  };
}

/** The URL of each thumbnail the job asked for, by name; null until the image has it. */
export function thumbnailUrls(job: JobRecord, image: ImageRecord | undefined) {
  const urls: Record<string, string | null> = {};
  for (const { name } of job.options.thumbnails) {
    const file = image?.status === 'PROCESSED' ? image.thumbnails[name] : undefined;
    urls[name] = file === undefined ? null : imageUrl(job.baseUrl, file);
  }
  return urls;
}

export function statusView(job: JobRecord) {
  const done = job.imagesProcessed + job.imagesFailed;
  return {
    request_id: job.id,
    kind: job.kind,
    status: job.status === 'RECEIVING' ? ('PENDING' as const) : job.status,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
    completed_at: job.completedAt?.toISOString() ?? null,
    progress: {
      products_total: job.productsTotal,
      products_done: job.productsDone,
      images_total: job.imagesTotal,
      images_processed: job.imagesProcessed,
      images_failed: job.imagesFailed,
      percent: job.imagesTotal === 0 ? 100 : Math.floor((done / job.imagesTotal) * 1000) / 10,
    },
    download_url: job.status === 'COMPLETED' ? downloadUrl(job.baseUrl, job.id) : null,
    webhook: job.webhook && {
      url: job.webhook.url,
      status: job.webhook.status,
      attempts: job.webhook.attempts,
      last_error: job.webhook.lastError,
      next_attempt_at: job.webhook.nextAttemptAt?.toISOString() ?? null,
      attempts_log: job.webhook.log.map((entry) => ({
        attempt: entry.attempt,
        at: entry.at.toISOString(),
        http_status: entry.httpStatus,
        error: entry.error,
        duration_ms: entry.durationMs,
      })),
    },
  };
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
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
