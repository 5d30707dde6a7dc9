import { createReadStream, type ReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  isUploadable,
  type ReceivedImage,
  UPLOADABLE_TYPES,
  type UploadedImage,
} from '../../domain/image-uploads.js';
import { JOB_LOG_FIELD } from '../../domain/job-log.js';
import { parseImageUploadOptions } from '../../domain/upload-options.js';
import { imageUrl, uploadedImageUrl } from '../../domain/urls.js';
import { CONTENT_TYPES } from '../../pipeline/transform.js';
import { BadQuery, MalformedId, Overloaded } from '../../schemas/common.js';
import {
  BadThumbnailRequest,
  ImageIdParams,
  ImageList,
  ImageNotFound,
  ImagesQuery,
  ImageTooLarge,
  ImageUploadForm,
  ImageUploadQuery,
  ImageUploadRejected,
  ImageView,
  ThumbnailNotFound,
  ThumbnailParams,
  UnsupportedImage,
  UploadGone,
} from '../../schemas/images.js';
import {
  type Form,
  MalformedUpload,
  NOT_MULTIPART,
  noFile,
  readForm,
  requestOrigin,
} from '../form.js';
import { metadataView, thumbnailUrls } from '../status/view.js';

const Thumbnail = Type.Unsafe<ReadStream>({ type: 'string', format: 'binary' });

const NO_FILE = 'No image: send it as the "file" field of a multipart/form-data request';
const NOT_FOUND = { status: 'not_found' as const, error: 'Image not found' };
const THUMBNAIL_SIZES = ['small', 'medium'];
const ACCEPTED = 'Send a JPEG, PNG, WebP, AVIF, GIF or TIFF image.';
const TYPE_NAMES: Record<string, string> = { svg: 'SVG', pdf: 'PDF', heif: 'HEIF/HEIC' };

function imageView({ job, image }: UploadedImage) {
  const thumbnails = thumbnailUrls(job, image);
  const processed = image.status === 'PROCESSED';
  return {
    id: job.id,
    status: processed
      ? ('processed' as const)
      : image.status === 'FAILED'
        ? ('failed' as const)
        : ('processing' as const),
    original_name: image.originalName,
    created_at: job.createdAt.toISOString(),
    metadata: metadataView(image),
    output_url: processed && image.outputFile ? imageUrl(job.baseUrl, image.outputFile) : null,
    thumbnails: { small: thumbnails.small ?? null, medium: thumbnails.medium ?? null },
    error: image.error,
    status_url: uploadedImageUrl(job.baseUrl, job.id),
  };
}

/** Why an upload's content is refused, naming what it looked like. */
function unsupported(type: ReceivedImage['type']): string {
  if (type === null) return `Unsupported file: its content is not an image. ${ACCEPTED}`;
  return `Unsupported image type: ${TYPE_NAMES[type] ?? type}. ${ACCEPTED}`;
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/images',
    {
      schema: {
        summary: 'Upload one image, without a CSV',
        description:
          `One image (${UPLOADABLE_TYPES.join(', ')}, recognised by its content) becomes a ` +
          "job of one image, processed like a CSV job's images, with small and medium " +
          'thumbnails. It has no results CSV and no webhook: poll GET /images/{id}, or send ' +
          '?wait=true.',
        tags: ['images'],
        consumes: ['multipart/form-data'],
        querystring: ImageUploadQuery,
        response: {
          200: Type.Object(ImageView.properties, {
            description: 'With ?wait=true: the image, processed or failed',
            examples: ImageView.examples,
          }),
          202: Type.Object(ImageView.properties, {
            description: 'Recorded and queued (or, with ?wait=true, still processing)',
            examples: [
              {
                ...ImageView.examples[0],
                status: 'processing',
                metadata: null,
                output_url: null,
                thumbnails: { small: null, medium: null },
              },
            ],
          }),
          400: ImageUploadRejected,
          404: UploadGone,
          413: ImageTooLarge,
          415: UnsupportedImage,
          503: Overloaded,
        },
      },
      config: {
        // Read part by part as it streams, like POST /upload's form: documented only.
        swaggerTransform: ({ schema, url }) => ({
          schema: { ...schema, body: ImageUploadForm },
          url,
        }),
      },
    },
    async (request, reply) => {
      const { uploads, config } = app.services;
      if (!request.isMultipart()) return noFile(reply, NO_FILE, NOT_MULTIPART);
      let form: Form<ReceivedImage>;
      try {
        // The file is saved as it streams; nothing is recorded until every field is read.
        form = await readForm(request, reply, {
          file: 'image per upload',
          limits: { fileSize: config.maxImageBytes },
          onFile: (part) => uploads.receive(part.file),
          discard: (received) => uploads.discard(received),
        });
      } catch (err) {
        if (err instanceof MalformedUpload) {
          return reply.code(400).send({ error: err.message, details: [] });
        }
        throw err;
      }
      const received = form.file;
      if (received === null) return noFile(reply, NO_FILE, 'missing');
      if (form.truncated) {
        await uploads.discard(received);
        const error = `Image is larger than ${config.maxImageBytes} bytes (MAX_IMAGE_BYTES)`;
        return reply.code(413).send({ error });
      }
      if (received.bytes === 0) {
        await uploads.discard(received);
        const details = [{ row: null, column: 'file', message: 'is empty' }];
        return reply.code(400).send({ error: 'The image file is empty', details });
      }
      if (!isUploadable(received.type)) {
        await uploads.discard(received);
        return reply.code(415).send({ error: unsupported(received.type) });
      }
      const parsed = parseImageUploadOptions(form.fields);
      if ('errors' in parsed) {
        await uploads.discard(received);
        return reply.code(400).send({ error: 'Invalid upload options', details: parsed.errors });
      }
      const baseUrl = config.publicBaseUrl ?? requestOrigin(request);
      await uploads.accept(received, form.filename, parsed.options, baseUrl);
      // From here on, this request's lines are about the new job.
      request.log = reply.log = request.log.child({ [JOB_LOG_FIELD]: received.id });
      const found = request.query.wait
        ? await uploads.waitUntilDone(received.id, config.imageWaitMs)
        : await uploads.get(received.id);
      // Only if the job was deleted in the meantime.
      if (found === null) return reply.code(404).send(NOT_FOUND);
      const view = imageView(found);
      const done = request.query.wait && view.status !== 'processing';
      return reply.code(done ? 200 : 202).send(view);
    },
  );

  app.get(
    '/images',
    {
      schema: {
        summary: 'Directly uploaded images, newest first',
        description: 'Each as GET /images/{id} shows it, paged. CSV jobs are not listed.',
        tags: ['images'],
        querystring: ImagesQuery,
        response: { 200: ImageList, 400: BadQuery },
      },
    },
    async (request) => {
      const { offset, limit } = request.query;
      const { total, items } = await app.services.uploads.list(offset, limit);
      return { offset, limit, total, images: items.map(imageView) };
    },
  );

  app.get(
    '/images/:id',
    {
      schema: {
        summary: 'A directly uploaded image',
        description: 'Its state, metadata, and the URLs of its output and thumbnails.',
        tags: ['images'],
        params: ImageIdParams,
        response: { 200: ImageView, 400: MalformedId, 404: ImageNotFound },
      },
    },
    async (request, reply) => {
      const found = await app.services.uploads.get(request.params.id);
      if (found === null) return reply.code(404).send(NOT_FOUND);
      return imageView(found);
    },
  );

  app.get(
    '/images/:id/thumbnails/:size',
    {
      schema: {
        summary: 'A thumbnail of a directly uploaded image',
        description:
          'The bytes of its small (fit inside 128×128) or medium (512×512) thumbnail, in the ' +
          'format the upload asked for.',
        tags: ['images'],
        params: ThumbnailParams,
        response: {
          200: {
            description: 'The thumbnail, in the upload’s output format',
            content: {
              [CONTENT_TYPES.jpeg]: { schema: Thumbnail },
              [CONTENT_TYPES.webp]: { schema: Thumbnail },
              [CONTENT_TYPES.avif]: { schema: Thumbnail },
              [CONTENT_TYPES.png]: { schema: Thumbnail },
            },
          },
          400: BadThumbnailRequest,
          404: ThumbnailNotFound,
        },
      },
    },
    async (request, reply) => {
      const { id, size } = request.params;
      if (!THUMBNAIL_SIZES.includes(size)) {
        return reply.code(400).send({
          error: `Unknown thumbnail size ${JSON.stringify(size)}: ${THUMBNAIL_SIZES.join(' or ')}`,
        });
      }
      const found = await app.services.uploads.get(id);
      if (found === null) return reply.code(404).send(NOT_FOUND);
      const { job, image } = found;
      const relative = image.status === 'PROCESSED' ? image.thumbnails[size] : undefined;
      const file = relative && path.join(app.services.config.imagesDir, relative);
      if (!file || !(await fs.stat(file).catch(() => null))?.isFile()) {
        const state =
          image.status === 'FAILED'
            ? 'the image failed'
            : image.status === 'PROCESSED'
              ? 'its file is no longer stored'
              : 'the image is still processing';
        return reply
          .code(404)
          .send({ status: 'not_found' as const, error: `No ${size} thumbnail: ${state}` });
      }
      return reply.type(CONTENT_TYPES[job.options.format]).send(createReadStream(file));
    },
  );
};

export default routes;
