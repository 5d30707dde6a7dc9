import { Type } from '@sinclair/typebox';
import { JobStatus } from './jobs.js';

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
  description: 'Deleted: the job, its products and images, its output images and results CSV',
});

export const JobConflictResponse = Type.Object(
  {
    error: Type.String({
      examples: [
        'The job is PROCESSING: delete it once it has finished, or with ?force=true to cancel it',
      ],
    }),
    status: JobStatus,
  },
  { description: 'The job is in a status the operation does not apply to' },
);
