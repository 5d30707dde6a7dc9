import { Type } from '@sinclair/typebox';

export const ErrorResponse = Type.Object(
  { error: Type.String() },
  { $id: 'ErrorResponse', description: 'A request that could not be served' },
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

export const RejectedUpload = Type.Object({
  error: Type.String(),
  details: Type.Array(ProblemDetail),
});

export const RequestIdParams = Type.Object({
  request_id: Type.String({
    pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    description: 'The id returned by POST /upload (a lowercase UUID)',
  }),
});

export const NotReady = Type.Object({ error: Type.String(), status: Type.String() });
