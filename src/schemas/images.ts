import { type TSchema, Type } from '@sinclair/typebox';
import { errorResponse, MalformedId, ProblemDetail, TransformFields, UUID } from './common.js';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const OutputFormat = Type.Union(
  [Type.Literal('jpeg'), Type.Literal('webp'), Type.Literal('avif'), Type.Literal('png')],
  { description: 'Format of the stored output' },
);
const InputFormat = Type.Union(
  [
    Type.Literal('jpeg'),
    Type.Literal('png'),
    Type.Literal('gif'),
    Type.Literal('webp'),
    Type.Literal('tiff'),
    Type.Literal('avif'),
    Type.Literal('heif'),
  ],
  { description: 'Format of the input, named from its content' },
);

export const ImageMetadata = Type.Object(
  {
    width: Type.Integer({ description: 'Width of the stored output, in pixels' }),
    height: Type.Integer({ description: 'Height of the stored output, in pixels' }),
    format: OutputFormat,
    input: Type.Object(
      {
        width: Type.Integer({ description: 'Width as stored in the file, before orientation' }),
        height: Type.Integer({ description: 'Height as stored in the file, before orientation' }),
        format: InputFormat,
      },
      { description: 'The image as it was fetched or uploaded' },
    ),
    orientation: Nullable(
      Type.Integer({
        minimum: 1,
        maximum: 8,
        description: "The input's EXIF orientation; null when it had none",
      }),
    ),
    rotated: Type.Boolean({
      description:
        'Whether the pixels were turned or mirrored upright to apply the EXIF orientation (2–8)',
    }),
    bytes_in: Nullable(Type.Integer({ description: 'Size of the input, in bytes' })),
    bytes_out: Nullable(Type.Integer({ description: 'Size of the main output, in bytes' })),
    processing_ms: Nullable(
      Type.Integer({
        description:
          'Time taken to fetch (download or read), check, decode, encode and store the image and its thumbnails, in ms',
      }),
    ),
  },
  {
    description: 'What processing found and made; null until the image is processed',
    examples: [
      {
        width: 600,
        height: 800,
        format: 'jpeg',
        input: { width: 1600, height: 1200, format: 'jpeg' },
        orientation: 6,
        rotated: true,
        bytes_in: 482113,
        bytes_out: 41870,
        processing_ms: 52,
      },
    ],
  },
);

export const ImageStatus = Type.Union(
  [Type.Literal('processing'), Type.Literal('processed'), Type.Literal('failed')],
  { description: '`processing` until the image is stored (or has failed)' },
);

const EXAMPLE_IMAGE_ID = '6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f';
const BASE = 'http://127.0.0.1:8000';

export const ImageIdParams = Type.Object({
  id: Type.String({
    pattern: `^${UUID}$`,
    description: 'The id returned by POST /images (a lowercase UUID)',
    examples: [EXAMPLE_IMAGE_ID],
  }),
});

export const ThumbnailParams = Type.Object({
  ...ImageIdParams.properties,
  size: Type.String({
    description: '`small` (128×128) or `medium` (512×512)',
    examples: ['small'],
  }),
});

export const ImageUploadQuery = Type.Object({
  wait: Type.Boolean({
    default: false,
    description:
      'Hold the request until the image is processed or failed (at most IMAGE_WAIT_MS, 10 s by default) and answer 200 with the result; 202 as without it when that runs out',
  }),
});

/**
 * The form of POST /images. Like the CSV upload's, it is read part by part as it streams
 * in, so this schema only documents it; src/domain/upload-options.ts checks the fields.
 */
export const ImageUploadForm = Type.Object({
  file: Type.String({
    format: 'binary',
    contentMediaType: 'application/octet-stream',
    description:
      'The image: JPEG, PNG, WebP, AVIF, GIF or TIFF, recognised by its content (not its ' +
      'name or part type), at most MAX_IMAGE_BYTES',
  }),
  ...TransformFields,
});

export const ImageView = Type.Object(
  {
    id: Type.String({ description: 'The upload id (a UUID)' }),
    status: ImageStatus,
    original_name: Nullable(Type.String({ description: 'File name the client sent, if any' })),
    created_at: Type.String({ format: 'date-time' }),
    metadata: Type.Union([ImageMetadata, Type.Null()]),
    output_url: Nullable(Type.String({ description: 'The processed image, once processed' })),
    thumbnails: Type.Object(
      {
        small: Nullable(Type.String({ description: 'Fit inside 128×128, once processed' })),
        medium: Nullable(Type.String({ description: 'Fit inside 512×512, once processed' })),
      },
      { description: 'Thumbnail URLs; also served by GET /images/{id}/thumbnails/{size}' },
    ),
    error: Nullable(Type.String({ description: 'Why processing failed' })),
    status_url: Type.String({ description: 'GET this for the current state' }),
  },
  {
    description: 'A directly uploaded image',
    examples: [
      {
        id: EXAMPLE_IMAGE_ID,
        status: 'processed',
        original_name: 'shirt-front.jpg',
        created_at: '2026-11-21T09:06:01.605Z',
        metadata: {
          width: 1200,
          height: 1600,
          format: 'jpeg',
          input: { width: 1600, height: 1200, format: 'jpeg' },
          orientation: 6,
          rotated: true,
          bytes_in: 482113,
          bytes_out: 98304,
          processing_ms: 61,
        },
        output_url: `${BASE}/processed_images/${EXAMPLE_IMAGE_ID}/image.jpg`,
        thumbnails: {
          small: `${BASE}/processed_images/${EXAMPLE_IMAGE_ID}/image.small.jpg`,
          medium: `${BASE}/processed_images/${EXAMPLE_IMAGE_ID}/image.medium.jpg`,
        },
        error: null,
        status_url: `${BASE}/images/${EXAMPLE_IMAGE_ID}`,
      },
    ],
  },
);

export const ImagesQuery = Type.Object({
  offset: Type.Integer({ minimum: 0, default: 0, description: 'Uploads to skip' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Uploads to return' }),
});

export const ImageList = Type.Object(
  {
    offset: Type.Integer(),
    limit: Type.Integer(),
    total: Type.Integer({ description: 'Direct uploads in all' }),
    images: Type.Array(ImageView, { description: 'Newest first' }),
  },
  {
    description: 'Directly uploaded images, newest first',
    examples: [{ offset: 0, limit: 20, total: 1, images: ImageView.examples }],
  },
);

export const ImageNotFound = Type.Object(
  { status: Type.Literal('not_found'), error: Type.String() },
  {
    description: 'No direct upload has this id (a CSV job’s id included)',
    examples: [{ status: 'not_found', error: 'Image not found' }],
  },
);

export const ThumbnailNotFound = Type.Object(ImageNotFound.properties, {
  description:
    'No direct upload has this id, or it has no such thumbnail yet: still processing, or failed',
  examples: [
    { status: 'not_found', error: 'Image not found' },
    { status: 'not_found', error: 'No small thumbnail: the image is still processing' },
  ],
});

export const UploadGone = Type.Object(ImageNotFound.properties, {
  description: 'The image was deleted (DELETE /requests/{id}) before the answer was sent',
  examples: [{ status: 'not_found', error: 'Image not found' }],
});

export const ImageTooLarge = errorResponse(
  'The image is over MAX_IMAGE_BYTES; nothing was kept',
  'Image is larger than 26214400 bytes (MAX_IMAGE_BYTES)',
);

export const UnsupportedImage = errorResponse(
  'The content is not a JPEG, PNG, WebP, AVIF, GIF or TIFF image (the message says what it ' +
    'looked like); nothing was kept',
  'Unsupported image type: PDF. Send a JPEG, PNG, WebP, AVIF, GIF or TIFF image.',
);

export const BadThumbnailRequest = Type.Object(MalformedId.properties, {
  description: 'A size other than small or medium, or a malformed id',
  examples: [{ error: 'Unknown thumbnail size "large": small or medium' }, ...MalformedId.examples],
});

export const ImageUploadRejected = Type.Object(
  {
    error: Type.String(),
    details: Type.Optional(
      Type.Array(ProblemDetail, { description: 'Each problem with the form, by field' }),
    ),
  },
  {
    description: 'A malformed upload: no file, an empty one, or invalid options or query',
    examples: [
      {
        error: 'Invalid upload options',
        details: [
          {
            row: null,
            column: 'quality',
            message: 'must be a whole number from 1 to 100 (got "0")',
          },
        ],
      },
    ],
  },
);
