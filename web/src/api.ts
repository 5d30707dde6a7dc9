import type { Static } from '@sinclair/typebox';
import type { RejectedUpload } from '../../src/schemas/common.js';
import type {
  JobStatusResponse,
  ProductsResponse,
  RequestsResponse,
  UploadAccepted,
} from '../../src/schemas/jobs.js';

// The page's view of the API comes from the server's own schemas, so a change there that
// the page does not follow fails the type check instead of the page.
export type JobStatus = Static<typeof JobStatusResponse>;
export type Products = Static<typeof ProductsResponse>;
export type Product = Products['products'][number];
export type Accepted = Static<typeof UploadAccepted>;
export type Problem = Static<typeof RejectedUpload>['details'][number];
export type RecentJobs = Static<typeof RequestsResponse>;

const TOKEN_KEY = 'image-batch-service.token';

export const token = {
  get(): string {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  },
  set(value: string): void {
    if (value === '') localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, value);
  },
};

/** An answer other than the one asked for, with what the server said about it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Problem[] = [],
    readonly retryAfter: string | null = null,
  ) {
    super(message);
  }
}

/** fetch() with the bearer token when one is set; network failures become ApiError 0. */
export async function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const bearer = token.get();
  if (bearer !== '') headers.set('authorization', `Bearer ${bearer}`);
  try {
    return await fetch(url, { ...init, headers });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, `The service could not be reached (${String(err)})`);
  }
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  let message = text.trim() === '' ? res.statusText : text;
  let details: Problem[] = [];
  try {
    const body = JSON.parse(text) as { error?: unknown; details?: unknown };
    if (typeof body.error === 'string') message = body.error;
    if (Array.isArray(body.details)) details = body.details as Problem[];
  } catch {
    // Not JSON (a proxy's error page, say): the text itself is the message.
  }
  return new ApiError(res.status, message, details, res.headers.get('retry-after'));
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await apiFetch(url, init);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export const uploadCsv = (form: FormData): Promise<Accepted> =>
  json<Accepted>('upload', { method: 'POST', body: form });

export const getStatus = (id: string, signal?: AbortSignal): Promise<JobStatus> =>
  json<JobStatus>(`status/${id}`, { signal });

export const getProducts = (id: string, offset: number, limit: number): Promise<Products> =>
  json<Products>(`status/${id}/products?offset=${offset}&limit=${limit}`);

/**
 * CSV jobs only: the page shows a job as its products and results CSV, which a direct image
 * upload (GET /images) has neither of.
 */
export function listRequests(offset: number, limit: number, status: string): Promise<RecentJobs> {
  const query = new URLSearchParams({ offset: String(offset), limit: String(limit), kind: 'csv' });
  if (status !== '') query.set('status', status);
  return json<RecentJobs>(`requests?${query}`);
}

/** The body of a URL of the service (an output image, the results CSV) as a Blob. */
export async function getBlob(url: string): Promise<Blob> {
  const res = await apiFetch(url);
  if (!res.ok) throw await failure(res);
  return res.blob();
}

/** The raw event stream of a job; the caller reads the body. */
export async function openEvents(id: string, signal: AbortSignal): Promise<Response> {
  const res = await apiFetch(`status/${id}/events`, {
    headers: { accept: 'text/event-stream' },
    signal,
    cache: 'no-store',
  });
  if (!res.ok) throw await failure(res);
  return res;
}
