import { downloadUrl } from '../../domain/urls.js';
import type { JobRecord } from '../../store/job-store.js';

/** The body of GET /status/:request_id, also sent by its event stream and GET /requests. */
export function statusView(job: JobRecord) {
  const done = job.imagesProcessed + job.imagesFailed;
  return {
    request_id: job.id,
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
