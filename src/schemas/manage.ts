import { Type } from '@sinclair/typebox';
import { BadQuery, MalformedId } from './common.js';
import { JobStatus, JobStatusResponse } from './jobs.js';

export const DeleteRequestQuery = Type.Object({
  force: Type.Boolean({
    default: false,
    description:
      'Also delete a PENDING or PROCESSING job, cancelling it first: its images in flight ' +
      'are abandoned and no webhook is sent',
    examples: [true],
  }),
});

export const RequestDeleted = Type.Null({
  description: 'Deleted: the job, its products and images, its output images and its results CSV',
});

export const DeleteRejected = Type.Union([MalformedId, BadQuery], {
  description: 'A malformed request id, or a force other than true or false',
  examples: [
    ...MalformedId.examples,
    { error: 'Invalid querystring: querystring/force must be boolean' },
  ],
});

/** A job in a status the operation does not apply to (HTTP 409). */
function jobConflict(description: string, example: { error: string; status: string }) {
  return Type.Object(
    {
      error: Type.String({ description: 'What went wrong, for a person to read' }),
      status: JobStatus,
    },
    { description, examples: [example] },
  );
}

export const DeleteConflict = jobConflict('The job is still running, and force was not given', {
  error: 'The job is PROCESSING: delete it once it has finished, or with ?force=true to cancel it',
  status: 'PROCESSING',
});

export const RetryConflict = jobConflict('The job is not COMPLETED, or has no failed images', {
  error: 'The job has no failed images to retry',
  status: 'COMPLETED',
});

export const RetryAccepted = Type.Object(JobStatusResponse.properties, {
  description:
    'The job, re-opened: PROCESSING until the failed images are done again, as GET /status/{request_id} shows it',
  examples: JobStatusResponse.examples,
});
