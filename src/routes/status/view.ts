import { downloadUrl, imageUrl } from '../../domain/urls.js';
import type { ImageRecord, JobRecord } from '../../store/job-store.js';

/** An image's `metadata` as the API shows it; null until it is processed. */
export function metadataView(image: ImageRecord) {
  const { metadata } = image;
  if (image.status !== 'PROCESSED' || metadata === null) return null;
  return {
    width: metadata.width,
    height: metadata.height,
    format: metadata.format,
    input: { ...metadata.input },
    orientation: metadata.orientation,
    rotated: metadata.rotated,
    bytes_in: image.bytesIn,
    bytes_out: image.bytesOut,
    processing_ms: image.processingMs,
  };
}

/** The URL of each thumbnail the job asked for, by name; null until the image has it. */
export function thumbnailUrls(job: JobRecord, image: ImageRecord | undefined) {
  const urls: Record<string, string | null> = {};
  for (const { name } of job.options.thumbnails) {
    const file = image?.status === 'PROCESSED' ? image.thumbnails[name] : undefined;
    urls[name] = file === undefined ? null : imageUrl(job.baseUrl, file);
  }
  return urls;
}

/** The body of GET /status/:request_id, also sent by its event stream and GET /requests. */
export function statusView(job: JobRecord) {
  const done = job.imagesProcessed + job.imagesFailed;
  return {
    request_id: job.id,
    kind: job.kind,
    // The job service hands out neither internal status; this only narrows the type.
    status:
      job.status === 'RECEIVING' || job.status === 'DELETING' ? ('PENDING' as const) : job.status,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
    completed_at: job.completedAt?.toISOString() ?? null,
    progress: {
      products_total: job.productsTotal,
      products_done: job.productsDone,
      images_total: job.imagesTotal,
      images_processed: job.imagesProcessed,
      images_failed: job.imagesFailed,
      percent: job.imagesTotal === 0 ? 100 : Math.floor((done / job.imagesTotal) * 1000) / 10,
    },
    download_url: job.status === 'COMPLETED' ? downloadUrl(job.baseUrl, job.id) : null,
    webhook: job.webhook && {
      url: job.webhook.url,
      status: job.webhook.status,
      attempts: job.webhook.attempts,
      last_error: job.webhook.lastError,
      next_attempt_at: job.webhook.nextAttemptAt?.toISOString() ?? null,
      attempts_log: job.webhook.log.map((entry) => ({
        attempt: entry.attempt,
        at: entry.at.toISOString(),
        http_status: entry.httpStatus,
        error: entry.error,
        duration_ms: entry.durationMs,
      })),
    },
  };
}
