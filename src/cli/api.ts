import { createWriteStream, openAsBlob } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Static } from '@sinclair/typebox';
import { FormData, request } from 'undici';
import type { RejectedUpload } from '../schemas/common.js';
import type { JobStatusResponse, ProductsResponse, UploadAccepted } from '../schemas/jobs.js';
import { HttpError, UnreachableError } from './errors.js';

export type Accepted = Static<typeof UploadAccepted>;
export type JobStatus = Static<typeof JobStatusResponse>;
export type Products = Static<typeof ProductsResponse>;
export type Rejection = Static<typeof RejectedUpload>;

// Generous for an upload (the service reads the whole CSV before it answers), and still an
// end for a service that accepted the connection and then hung.
const UPLOAD_TIMEOUT_MS = 300_000;
const CALL_TIMEOUT_MS = 30_000;

interface CallOptions {
  method?: 'GET' | 'POST';
  body?: FormData;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The service's HTTP API, as the CLI uses it. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | null,
  ) {}

  async upload(file: string, fields: Record<string, string>): Promise<Accepted> {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    // A file-backed Blob: the CSV is streamed from disk, never held in memory whole.
    form.append('file', await openAsBlob(file, { type: 'text/csv' }), path.basename(file));
    return (await this.json('/upload', 202, {
      method: 'POST',
      body: form,
      timeoutMs: UPLOAD_TIMEOUT_MS,
    })) as Accepted;
  }

  async status(id: string, signal?: AbortSignal): Promise<JobStatus> {
    return (await this.json(`/status/${encodeURIComponent(id)}`, 200, { signal })) as JobStatus;
  }

  async products(id: string, offset: number, limit: number): Promise<Products> {
    const query = `offset=${offset}&limit=${limit}`;
    return (await this.json(
      `/status/${encodeURIComponent(id)}/products?${query}`,
      200,
    )) as Products;
  }

  /** Saves the results CSV at `target`, through a temporary file so it never holds half of one. */
  async downloadResults(id: string, target: string): Promise<void> {
    const res = await this.send(`/download/${encodeURIComponent(id)}`, {});
    if (res.statusCode !== 200) throw await httpError(res);
    const temporary = `${target}.${process.pid}.part`;
    try {
      await pipeline(res.body, createWriteStream(temporary));
      await rename(temporary, target);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  }

  private async json(pathname: string, expected: number, opts: CallOptions = {}): Promise<unknown> {
    const res = await this.send(pathname, opts);
    if (res.statusCode !== expected) throw await httpError(res);
    return res.body.json();
  }

  private async send(pathname: string, opts: CallOptions) {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== null) headers.authorization = `Bearer ${this.token}`;
    const timeoutMs = opts.timeoutMs ?? CALL_TIMEOUT_MS;
    try {
      return await request(`${this.baseUrl}${pathname}`, {
        method: opts.method ?? 'GET',
        headers,
        body: opts.body ?? null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new UnreachableError(this.baseUrl, networkReason(err));
    }
  }
}

async function httpError(res: Awaited<ReturnType<typeof request>>): Promise<HttpError> {
  const text = await res.body.text();
  const type = String(res.headers['content-type'] ?? '');
  let body: unknown = text;
  if (type.includes('application/json')) {
    try {
      body = JSON.parse(text);
    } catch {
      // A JSON content type with a body that is not JSON: keep the text.
    }
  }
  const retryAfter = res.headers['retry-after'];
  return new HttpError(res.statusCode, body, typeof retryAfter === 'string' ? retryAfter : null);
}

/** The most specific reason undici gives: its own error, or the socket error it wraps. */
function networkReason(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { message?: string } };
  const cause = e.cause?.message;
  if (cause) return cause;
  return e.message || e.code || String(err);
}
