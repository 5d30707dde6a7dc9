import { Type } from '@sinclair/typebox';
import { MAX_THUMBNAIL_DIMENSION, MAX_THUMBNAILS } from '../domain/upload-options.js';
import { EXAMPLE_ID, TransformFields } from './common.js';
import { ImageMetadata } from './images.js';

const BASE = 'http://127.0.0.1:8000';

export const JobStatus = Type.Union(
  [
    Type.Literal('PENDING'),
    Type.Literal('PROCESSING'),
    Type.Literal('COMPLETED'),
    Type.Literal('FAILED'),
  ],
  {
    description:
      'PENDING: nothing started; PROCESSING; COMPLETED: every image processed or failed (the ' +
      'counts say how many failed); FAILED: the job could not finish at all',
  },
);
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

/**
 * The upload form. It is read part by part as it streams in, not validated by Fastify, so
 * this schema only documents it; src/domain/upload-options.ts checks the fields.
 */
export const UploadForm = Type.Object({
  file: Type.String({
    format: 'binary',
    contentMediaType: 'text/csv',
    description:
      'The CSV: a header row, then one row per product with a serial number, a product name ' +
      'and one or more image URLs (comma-separated, quoted). Other columns are kept.',
  }),
  ...TransformFields,
  thumbnails: Type.Optional(
    Type.String({
      description:
        `Thumbnails to make of every image: small (128x128), medium (512x512) or boxes like ` +
        `300x200 (sides up to ${MAX_THUMBNAIL_DIMENSION}), comma-separated, at most ` +
        `${MAX_THUMBNAILS}; each gets a column in the results CSV`,
      examples: ['small,medium'],
    }),
  ),
  webhook_url: Type.Optional(
    Type.String({
      format: 'uri',
      maxLength: 2048,
      description: 'Called with a POST when the job completes (also accepted as webhookUrl)',
    }),
  ),
});

export const UploadAccepted = Type.Object(
  {
    request_id: Type.String({ description: 'The job id' }),
    status: Type.Literal('PENDING'),
    products: Type.Integer({ description: 'CSV rows recorded' }),
    images: Type.Integer({
      description: 'Distinct image URLs to fetch (a repeated URL counts once)',
    }),
    status_url: Type.String(),
    download_url: Type.String({ description: 'Where the results CSV will be once COMPLETED' }),
  },
  {
    description: 'The CSV was recorded and the job is queued',
    examples: [
      {
        request_id: EXAMPLE_ID,
        status: 'PENDING',
        products: 2,
        images: 3,
        status_url: `${BASE}/status/${EXAMPLE_ID}`,
        download_url: `${BASE}/download/${EXAMPLE_ID}`,
      },
    ],
  },
);

const EXAMPLE_STATUS = {
  request_id: EXAMPLE_ID,
  kind: 'csv',
  status: 'PROCESSING',
  created_at: '2026-11-21T09:05:58.120Z',
  updated_at: '2026-11-21T09:06:00.874Z',
  completed_at: null,
  progress: {
    products_total: 2,
    products_done: 1,
    images_total: 3,
    images_processed: 2,
    images_failed: 0,
    percent: 66.6,
  },
  download_url: null,
  webhook: {
    url: 'https://hooks.example.com/done',
    status: 'PENDING',
    attempts: 0,
    last_error: null,
    next_attempt_at: null,
    attempts_log: [],
  },
};

export const JobKind = Type.Union([Type.Literal('csv'), Type.Literal('image')], {
  description: '`csv` for a POST /upload job, `image` for a POST /images upload',
});

const jobStatusFields = {
  request_id: Type.String(),
  kind: JobKind,
  status: JobStatus,
  created_at: Timestamp,
  updated_at: Timestamp,
  completed_at: NullableTimestamp,
  progress: Type.Object({
    products_total: Type.Integer(),
    products_done: Type.Integer({ description: 'Products whose every image is done' }),
    images_total: Type.Integer({ description: 'Distinct image URLs' }),
    images_processed: Type.Integer(),
    images_failed: Type.Integer(),
    percent: Type.Number({
      minimum: 0,
      maximum: 100,
      description: 'Images done (processed or failed), rounded down to a tenth',
    }),
  }),
  download_url: Type.Union([Type.String(), Type.Null()], {
    description: 'The results CSV; null until COMPLETED',
  }),
  webhook: Type.Union(
    [
      Type.Null(),
      Type.Object({
        url: Type.String(),
        status: Type.Union(
          [Type.Literal('PENDING'), Type.Literal('DELIVERED'), Type.Literal('FAILED')],
          { description: 'PENDING until delivered (retries included) or out of attempts' },
        ),
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
    ],
    { description: 'The completion call; null when the upload gave no webhook_url' },
  ),
};

export const JobStatusResponse = Type.Object(jobStatusFields, {
  description: "The job's status and progress",
  examples: [EXAMPLE_STATUS],
});

export const RequestsQuery = Type.Object({
  status: Type.Optional(JobStatus),
  kind: Type.Optional(JobKind),
  offset: Type.Integer({ minimum: 0, default: 0, description: 'Jobs to skip' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Jobs to return' }),
});

export const RequestsResponse = Type.Object(
  {
    total: Type.Integer({ description: 'Jobs matching the filter, on every page' }),
    offset: Type.Integer(),
    limit: Type.Integer(),
    requests: Type.Array(Type.Object(jobStatusFields), {
      description: 'Newest first; each as GET /status/{request_id} answers it',
    }),
  },
  {
    description: 'One page of jobs, newest first',
    examples: [{ total: 1, offset: 0, limit: 20, requests: [EXAMPLE_STATUS] }],
  },
);

export const ProductsQuery = Type.Object({
  offset: Type.Integer({ minimum: 0, default: 0, description: 'Products to skip' }),
  limit: Type.Integer({
    minimum: 1,
    maximum: 500,
    default: 100,
    description: 'Products to return',
  }),
});

const ImageStatus = Type.Union([
  Type.Literal('PENDING'),
  Type.Literal('PROCESSING'),
  Type.Literal('PROCESSED'),
  Type.Literal('FAILED'),
]);

export const ProductsResponse = Type.Object(
  {
    request_id: Type.String(),
    offset: Type.Integer(),
    limit: Type.Integer(),
    total: Type.Integer({ description: 'Products in the job' }),
    products: Type.Array(
      Type.Object({
        row: Type.Integer({ description: '1-based data row of the CSV' }),
        serial: Type.String(),
        name: Type.String(),
        input_urls: Type.Array(Type.String()),
        output_urls: Type.Array(Type.Union([Type.String(), Type.Null()]), {
          description: 'Position for position with input_urls; null where not processed',
        }),
        images: Type.Array(
          Type.Object({
            url: Type.String(),
            status: ImageStatus,
            output_url: Type.Union([Type.String(), Type.Null()]),
            bytes_in: Type.Union([Type.Integer(), Type.Null()], {
              description: 'Size downloaded',
            }),
            bytes_out: Type.Union([Type.Integer(), Type.Null()], {
              description: 'Size of the compressed image',
            }),
            error: Type.Union([Type.String(), Type.Null()], {
              description: 'Why the image failed',
            }),
            metadata: Type.Union([ImageMetadata, Type.Null()]),
            thumbnails: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), {
              description:
                'URL of each thumbnail the upload asked for (`thumbnails=`), by size; null until processed',
            }),
          }),
        ),
      }),
      { description: 'In input order' },
    ),
  },
  {
    description: "One page of the job's products, with each image's outcome",
    examples: [
      {
        request_id: EXAMPLE_ID,
        offset: 0,
        limit: 100,
        total: 1,
        products: [
          {
            row: 1,
            serial: '1',
            name: 'Linen shirt',
            input_urls: [
              'https://images.example.com/shirt-front.jpg',
              'https://images.example.com/shirt-back.jpg',
            ],
            output_urls: [`${BASE}/processed_images/${EXAMPLE_ID}/1-1.jpg`, null],
            images: [
              {
                url: 'https://images.example.com/shirt-front.jpg',
                status: 'PROCESSED',
                output_url: `${BASE}/processed_images/${EXAMPLE_ID}/1-1.jpg`,
                bytes_in: 412_331,
                bytes_out: 61_870,
                error: null,
                metadata: {
                  width: 1200,
                  height: 1600,
                  format: 'jpeg',
                  input: { width: 1600, height: 1200, format: 'jpeg' },
                  orientation: 6,
                  rotated: true,
                  bytes_in: 412_331,
                  bytes_out: 61_870,
                  processing_ms: 48,
                },
                thumbnails: { small: `${BASE}/processed_images/${EXAMPLE_ID}/1-1.small.jpg` },
              },
              {
                url: 'https://images.example.com/shirt-back.jpg',
                status: 'FAILED',
                output_url: null,
                bytes_in: null,
                bytes_out: null,
                error: 'HTTP 404 from image server',
                metadata: null,
                thumbnails: { small: null },
              },
            ],
          },
        ],
      },
    ],
  },
);

export const RESULTS_CSV_EXAMPLE = [
  '"S. No.","Product Name","Input Image Urls","Output Image Urls","Errors"',
  `"1","Linen shirt","https://images.example.com/shirt-front.jpg","${BASE}/processed_images/${EXAMPLE_ID}/1-1.jpg",""`,
  '"2","Canvas bag","https://images.example.com/bag.png","","https://images.example.com/bag.png: HTTP 404 from image server"',
  '',
].join('\n');
