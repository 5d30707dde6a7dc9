import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { JOB_LOG_FIELD } from '../../domain/job-log.js';
import { CsvRejected, type ReceivedCsv } from '../../domain/job-service.js';
import { parseUploadOptions } from '../../domain/upload-options.js';
import { downloadUrl, statusUrl } from '../../domain/urls.js';
import { errorResponse, Overloaded, RejectedUpload } from '../../schemas/common.js';
import { UploadAccepted, UploadForm } from '../../schemas/jobs.js';
import {
  type Form,
  MalformedUpload,
  NOT_MULTIPART,
  noFile,
  readForm,
  requestOrigin,
} from '../form.js';

const CsvTooLarge = errorResponse(
  'The CSV is over MAX_CSV_BYTES or has more than MAX_ROWS rows; no job was created',
  'CSV is larger than 52428800 bytes (MAX_CSV_BYTES)',
);

const NO_FILE = 'No CSV file: send it as the "file" field of a multipart/form-data request';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/upload',
    {
      schema: {
        summary: 'Submit a CSV of products and image URLs',
        description:
          'The CSV is checked and recorded as it streams in; the answer comes once it is ' +
          'all in, with the job id. Images are then fetched and compressed in the background.',
        tags: ['jobs'],
        consumes: ['multipart/form-data'],
        response: { 202: UploadAccepted, 400: RejectedUpload, 413: CsvTooLarge, 503: Overloaded },
      },
      config: {
        // The form is read part by part as it streams (request.parts()), so it is not in
        // the schema Fastify validates; it is added to the API description only.
        swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: UploadForm }, url }),
      },
    },
    async (request, reply) => {
      const { jobs, config } = app.services;
      if (!request.isMultipart()) return noFile(reply, NO_FILE, NOT_MULTIPART);
      const tooLarge = () =>
        new CsvRejected(413, `CSV is larger than ${config.maxCsvBytes} bytes (MAX_CSV_BYTES)`, []);
      let form: Form<ReceivedCsv>;
      try {
        // Fields may come before or after the file; the CSV is recorded as it streams and
        // the job only becomes visible once every field has been read and checked.
        form = await readForm(request, reply, {
          file: 'CSV file per upload',
          // At the size limit the multipart parser ends the file early and marks it
          // truncated; whatever the reader made of the cut-off rest, the answer is 413.
          onFile: async (part) => {
            let received: ReceivedCsv;
            try {
              received = await jobs.receiveCsv(part.file);
            } catch (err) {
              throw part.file.truncated ? tooLarge() : err;
            }
            if (part.file.truncated) {
              await jobs.discard(received.id);
              throw tooLarge();
            }
            return received;
          },
          discard: (received) => jobs.discard(received.id),
        });
      } catch (err) {
        if (err instanceof CsvRejected) {
          if (err.statusCode === 413) return reply.code(413).send({ error: err.message });
          return reply.code(400).send({ error: err.message, details: err.details });
        }
        if (err instanceof MalformedUpload) {
          return reply.code(400).send({ error: err.message, details: [] });
        }
        throw err;
      }
      const received = form.file;
      if (received === null) return noFile(reply, NO_FILE, 'missing');
      // From here on, this request's lines (its 'request completed' included) are about
      // the new job.
      request.log = reply.log = request.log.child({ [JOB_LOG_FIELD]: received.id });
      const parsed = parseUploadOptions(form.fields);
      if ('errors' in parsed) {
        await jobs.discard(received.id);
        return reply.code(400).send({ error: 'Invalid upload options', details: parsed.errors });
      }
      const baseUrl = config.publicBaseUrl ?? requestOrigin(request);
      await jobs.accept(received, parsed.options, baseUrl);
      return reply.code(202).send({
        request_id: received.id,
        status: 'PENDING' as const,
        products: received.products,
        images: received.images,
        status_url: statusUrl(baseUrl, received.id),
        download_url: downloadUrl(baseUrl, received.id),
      });
    },
  );
};

export default routes;
