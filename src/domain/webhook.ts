import { type Dispatcher, request } from 'undici';
import type { JobRecord, WebhookState } from '../store/job-store.js';
import { downloadUrl } from './urls.js';

export interface WebhookPayload {
  request_id: string;
  status: string;
  download_url: string;
  images_total: number;
  images_processed: number;
  images_failed: number;
  completed_at: string | null;
}

export function webhookPayload(job: JobRecord): WebhookPayload {
  return {
    request_id: job.id,
    status: job.status,
    download_url: downloadUrl(job.baseUrl, job.id),
    images_total: job.imagesTotal,
    images_processed: job.imagesProcessed,
    images_failed: job.imagesFailed,
    completed_at: job.completedAt?.toISOString() ?? null,
  };
}

/** POSTs the completion notice once and reports how it went. */
export async function deliverWebhook(
  webhook: WebhookState,
  payload: WebhookPayload,
  dispatcher: Dispatcher,
  timeoutMs: number,
): Promise<WebhookState> {
  const attempts = webhook.attempts + 1;
  try {
    const response = await request(webhook.url, {
      method: 'POST',
      dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'content-type': 'application/json', 'user-agent': 'image-batch-service' },
      body: JSON.stringify(payload),
    });
    response.body.resume();
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return { ...webhook, status: 'DELIVERED', attempts, lastError: null };
    }
    return { ...webhook, status: 'FAILED', attempts, lastError: `HTTP ${response.statusCode}` };
  } catch (err) {
    const e = err as { name?: string; message?: string };
    const lastError =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.message ?? String(err));
    return { ...webhook, status: 'FAILED', attempts, lastError };
  }
}
