import { Type } from '@sinclair/typebox';
import { OUTPUT_FORMATS } from '../config.js';
import { DEFAULT_QUALITY, MAX_DIMENSION } from '../domain/upload-options.js';

/** The request id every example in the API description uses. */
export const EXAMPLE_ID = '0b7c2a7e-5f7e-4b1c-9a57-0d8c1f3e2a11';

/** A request id: the lowercase UUID POST /upload hands out. */
export const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** An error answer, `{error}`; `description` says when it is given, `example` is one. */
export function errorResponse(description: string, example: string) {
  return Type.Object(
    { error: Type.String({ description: 'What went wrong, for a person to read' }) },
    { description, examples: [{ error: example }] },
  );
}

export const MalformedId = errorResponse(
  'The request id is not a UUID',
  'Malformed request id: expected the UUID returned by POST /upload or POST /images',
);

export const NotFound = errorResponse('No job has this request id', 'Request not found');

export const BadQuery = errorResponse(
  'A query parameter is out of range or of the wrong type',
  'Invalid querystring: querystring/limit must be <= 100',
);

export const Unauthorized = errorResponse(
  'Missing or wrong bearer token (only when the service runs with API_TOKEN)',
  'Missing or invalid bearer token (Authorization: Bearer <API_TOKEN>)',
);

export const ProblemDetail = Type.Object({
  row: Type.Union([Type.Integer(), Type.Null()], {
    description: '1-based data row of the CSV (0 is the header); null for the file or a form field',
  }),
  column: Type.Union([Type.String(), Type.Null()], {
    description: 'CSV column or form field at fault',
  }),
  message: Type.String(),
});

export const RejectedUpload = Type.Object(
  {
    error: Type.String(),
    details: Type.Array(ProblemDetail, { description: 'Every problem found, up to 50' }),
  },
  {
    description:
      'The CSV or a form field was rejected (no file, empty CSV, missing columns, a bad URL, ' +
      'a bad option, malformed multipart); no job was created',
    examples: [
      {
        error: 'CSV rejected: 2 problems found',
        details: [
          {
            row: 2,
            column: 'Input Image Urls',
            message: 'only http and https URLs can be fetched, not ftp:',
          },
          { row: 5, column: 'Input Image Urls', message: 'no image URL' },
        ],
      },
    ],
  },
);

export const RequestIdParams = Type.Object({
  request_id: Type.String({
    pattern: `^${UUID}$`,
    description: 'The id returned by POST /upload (a lowercase UUID)',
    examples: [EXAMPLE_ID],
  }),
});

export const NotReady = Type.Object(
  {
    error: Type.String(),
    status: Type.String({ description: "The job's current status" }),
  },
  {
    description: 'The job is not COMPLETED yet, so there are no results to download',
    examples: [{ error: 'Results are not ready: the job is PROCESSING', status: 'PROCESSING' }],
  },
);

export const Overloaded = Type.Object(
  { error: Type.String() },
  {
    description:
      'The service is under pressure (event-loop delay or memory past its bound) and takes ' +
      'no new uploads for now; status, downloads and running jobs go on',
    examples: [{ error: 'Service is overloaded (rssBytes); retry in 10 s' }],
    headers: { 'retry-after': { type: 'integer', description: 'Seconds to wait' } },
  },
);

/** The option fields of a CSV upload's form that a direct image upload's form takes too. */
export const TransformFields = {
  quality: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 100,
      default: DEFAULT_QUALITY,
      description: 'Encoder quality',
    }),
  ),
  format: Type.Optional(
    Type.Unsafe<string>({
      type: 'string',
      enum: [...OUTPUT_FORMATS, 'jpg'],
      default: 'jpeg',
      description: 'Output format (jpg is jpeg)',
    }),
  ),
  max_width: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_DIMENSION,
      description: 'Fit inside this width, never enlarging',
    }),
  ),
  max_height: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_DIMENSION,
      description: 'Fit inside this height, never enlarging',
    }),
  ),
};
