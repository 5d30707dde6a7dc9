import { Type } from '@sinclair/typebox';

const ImageFigures = Type.Object({
  images_processed: Type.Integer({ minimum: 0, examples: [1180] }),
  images_failed: Type.Integer({ minimum: 0, examples: [20] }),
  processing_ms_total: Type.Integer({
    minimum: 0,
    description:
      'Wall time of download, check, encode and store, summed over processed and failed images',
    examples: [151200],
  }),
  processing_ms_average: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
    description: 'processing_ms_total per finished image, to 0.1 ms; null before the first one',
    examples: [126],
  }),
  bytes_in: Type.Integer({
    minimum: 0,
    description: 'Bytes downloaded, over processed images',
    examples: [956700000],
  }),
  bytes_out: Type.Integer({
    minimum: 0,
    description: 'Bytes written, over processed images',
    examples: [65400000],
  }),
  bytes_saved: Type.Integer({
    description: 'bytes_in minus bytes_out (negative when the outputs are larger)',
    examples: [891300000],
  }),
});

export const StatsResponse = Type.Object(
  {
    started_at: Type.String({
      format: 'date-time',
      description: 'When this process started: the start of since_start',
    }),
    since_start: Type.Object(ImageFigures.properties, {
      description:
        'Image outcomes this process recorded since it started (each process counts its own)',
    }),
    all_time: Type.Object(ImageFigures.properties, {
      description:
        'Image outcomes the store has recorded, kept as running totals; an image retried ' +
        'counts once per run, and deleting a job does not take its images back out',
    }),
    jobs: Type.Object(
      {
        PENDING: Type.Integer({ minimum: 0 }),
        PROCESSING: Type.Integer({ minimum: 0 }),
        COMPLETED: Type.Integer({ minimum: 0 }),
        FAILED: Type.Integer({ minimum: 0 }),
        total: Type.Integer({ minimum: 0 }),
        image_uploads: Type.Integer({
          minimum: 0,
          description: 'How many of the jobs are direct image uploads (POST /images)',
        }),
      },
      {
        description: 'Jobs in the store right now, by status; CSV jobs and direct uploads alike',
        examples: [
          { PENDING: 1, PROCESSING: 2, COMPLETED: 40, FAILED: 0, total: 43, image_uploads: 5 },
        ],
      },
    ),
  },
  {
    description: 'Processing statistics',
    examples: [
      {
        started_at: '2026-11-21T09:00:00.000Z',
        since_start: {
          images_processed: 1180,
          images_failed: 20,
          processing_ms_total: 151200,
          processing_ms_average: 126,
          bytes_in: 956700000,
          bytes_out: 65400000,
          bytes_saved: 891300000,
        },
        all_time: {
          images_processed: 5020,
          images_failed: 61,
          processing_ms_total: 688230,
          processing_ms_average: 135.5,
          bytes_in: 4102000000,
          bytes_out: 281000000,
          bytes_saved: 3821000000,
        },
        jobs: { PENDING: 1, PROCESSING: 2, COMPLETED: 40, FAILED: 0, total: 43, image_uploads: 5 },
      },
    ],
  },
);
