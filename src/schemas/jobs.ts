import { Type } from '@sinclair/typebox';
import { ImageMetadata } from './images.js';

const JobStatus = Type.Union([
  Type.Literal('PENDING'),
  Type.Literal('PROCESSING'),
  Type.Literal('COMPLETED'),
  Type.Literal('FAILED'),
]);
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const UploadAccepted = Type.Object({
  request_id: Type.String(),
  status: Type.Literal('PENDING'),
  products: Type.Integer({ description: 'CSV rows recorded' }),
  images: Type.Integer({
    description: 'Distinct image URLs to fetch (a repeated URL counts once)',
  }),
  status_url: Type.String(),
  download_url: Type.String(),
});

export const JobStatusResponse = Type.Object({
  request_id: Type.String(),
  kind: Type.Union([Type.Literal('csv'), Type.Literal('image')], {
    description: '`csv` for a POST /upload job, `image` for a POST /images upload',
  }),
  status: JobStatus,
  created_at: Timestamp,
  updated_at: Timestamp,
  completed_at: NullableTimestamp,
  progress: Type.Object({
    products_total: Type.Integer(),
    products_done: Type.Integer(),
    images_total: Type.Integer(),
    images_processed: Type.Integer(),
    images_failed: Type.Integer(),
    percent: Type.Number({ minimum: 0, maximum: 100 }),
  }),
  download_url: Type.Union([Type.String(), Type.Null()]),
  webhook: Type.Union([
    Type.Null(),
    Type.Object({
      url: Type.String(),
      status: Type.Union([
        Type.Literal('PENDING'),
        Type.Literal('DELIVERED'),
        Type.Literal('FAILED'),
      ]),
      attempts: Type.Integer(),
      last_error: Type.Union([Type.String(), Type.Null()]),
      next_attempt_at: Type.Union([Timestamp, Type.Null()], {
        description: 'When the next attempt is due; null when none is scheduled',
      }),
      attempts_log: Type.Array(
        Type.Object({
          attempt: Type.Integer({ minimum: 1 }),
          at: Timestamp,
          http_status: Type.Union([Type.Integer(), Type.Null()], {
            description: "The receiver's answer; null when none came",
          }),
          error: Type.Union([Type.String(), Type.Null()]),
          duration_ms: Type.Integer({ minimum: 0 }),
        }),
        { description: 'The latest attempts, oldest first (at most WEBHOOK_MAX_ATTEMPTS)' },
      ),
    }),
  ]),
});

export const ProductsQuery = Type.Object({
  offset: Type.Integer({ minimum: 0, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
});

const ImageStatus = Type.Union([
  Type.Literal('PENDING'),
  Type.Literal('PROCESSING'),
  Type.Literal('PROCESSED'),
  Type.Literal('FAILED'),
]);

export const ProductsResponse = Type.Object({
  request_id: Type.String(),
  offset: Type.Integer(),
  limit: Type.Integer(),
  total: Type.Integer(),
  products: Type.Array(
    Type.Object({
      row: Type.Integer(),
      serial: Type.String(),
      name: Type.String(),
      input_urls: Type.Array(Type.String()),
      output_urls: Type.Array(Type.Union([Type.String(), Type.Null()])),
      images: Type.Array(
        Type.Object({
          url: Type.String(),
          status: ImageStatus,
          output_url: Type.Union([Type.String(), Type.Null()]),
          bytes_in: Type.Union([Type.Integer(), Type.Null()]),
          bytes_out: Type.Union([Type.Integer(), Type.Null()]),
          error: Type.Union([Type.String(), Type.Null()]),
          metadata: Type.Union([ImageMetadata, Type.Null()]),
          thumbnails: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), {
            description:
              'URL of each thumbnail the upload asked for (`thumbnails=`), by size; null until processed',
            examples: [{ small: 'http://127.0.0.1:8000/processed_images/0b7c…/1-1.small.jpg' }],
          }),
        }),
      ),
    }),
  ),
});
