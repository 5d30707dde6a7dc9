import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { JOB_LOG_FIELD } from '../../domain/job-log.js';
import { CsvRejected, type ReceivedCsv } from '../../domain/job-service.js';
import { parseUploadOptions } from '../../domain/upload-options.js';
import { downloadUrl, statusUrl } from '../../domain/urls.js';
import { errorResponse, Overloaded, RejectedUpload } from '../../schemas/common.js';
import { UploadAccepted, UploadForm } from '../../schemas/jobs.js';
import { MalformedUpload, nextPart, requestOrigin } from '../form.js';

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
      if (!request.isMultipart()) {
        return reply.code(400).send({
          error: NO_FILE,
          details: [{ row: null, column: 'file', message: 'request is not multipart/form-data' }],
        });
      }
      const fields: Record<string, string> = {};
      let received: ReceivedCsv | null = null;
      const parts = request.parts();
      try {
        // Fields may come before or after the file; the CSV is recorded as it streams and
        // the job only becomes visible once every field has been read and checked.
        for (;;) {
          const next = await nextPart(parts, 'CSV file per upload');
          if (next.done) break;
          const part = next.value;
          if (part.type === 'field') {
            fields[part.fieldname] = String(part.value);
            continue;
          }
          // At the size limit the multipart parser ends the file early and marks it
          // truncated; whatever the reader made of the cut-off rest, the answer is 413.
          try {
            received = await jobs.receiveCsv(part.file);
            // From here on, this request's lines (its 'request completed' included) are
            // about the new job.
            request.log = reply.log = request.log.child({ [JOB_LOG_FIELD]: received.id });
          } catch (err) {
            if (!part.file.truncated) throw err;
          }
          if (part.file.truncated) {
            const limit = `CSV is larger than ${config.maxCsvBytes} bytes (MAX_CSV_BYTES)`;
            throw new CsvRejected(413, limit, []);
          }
        }
      } catch (err) {
        if (received) await jobs.discard(received.id);
        // The rest of the body is never read. Without this the connection stays open
        // for keep-alive with that body unread, and a shutdown waits for it (~70 s).
        reply.header('connection', 'close');
        if (err instanceof CsvRejected) {
          if (err.statusCode === 413) return reply.code(413).send({ error: err.message });
          return reply.code(400).send({ error: err.message, details: err.details });
        }
        if (err instanceof MalformedUpload) {
          return reply.code(400).send({ error: err.message, details: [] });
        }
        throw err;
      }
      if (received === null) {
        return reply.code(400).send({
          error: NO_FILE,
          details: [{ row: null, column: 'file', message: 'missing' }],
        });
      }
      const parsed = parseUploadOptions(fields);
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
