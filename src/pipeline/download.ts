import { Agent, type Dispatcher, interceptors, request } from 'undici';
import { ImageError } from './image-error.js';

export interface DownloadLimits {
  timeoutMs: number;
  maxBytes: number;
}

const MAX_REDIRECTS = 5;

/** One connection pool for every outbound image download and webhook call. */
export function createOutboundDispatcher(timeoutMs: number): Dispatcher {
  return new Agent({
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 10_000,
  }).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
}

/**
 * Fetches an image's bytes within a total deadline and a byte cap. The cap is checked
 * against Content-Length before reading and against the bytes actually received while
 * reading, so an oversized or lying response is cut off, never buffered whole.
 */
export async function downloadImage(
  url: string,
  dispatcher: Dispatcher,
  limits: DownloadLimits,
  cancel?: AbortSignal,
): Promise<Buffer> {
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, {
      dispatcher,
      signal,
      headers: { accept: 'image/*', 'user-agent': 'image-batch-service' },
    });
  } catch (err) {
    throw new ImageError(networkReason(err, limits.timeoutMs));
  }
  const { statusCode, headers, body } = response;
  if (statusCode < 200 || statusCode > 299) {
    body.resume();
    throw new ImageError(`HTTP ${statusCode} from image server`);
  }
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    body.destroy();
    throw new ImageError(`image is ${declared} bytes, over the ${limits.maxBytes}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limits.maxBytes) {
        body.destroy();
        throw new ImageError(`image is over the ${limits.maxBytes}-byte limit`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError(networkReason(err, limits.timeoutMs));
  }
  if (received === 0) throw new ImageError('image server sent an empty body');
  return Buffer.concat(chunks, received);
}

function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (
    e.name === 'TimeoutError' ||
    e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    e.code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return `download timed out after ${timeoutMs} ms`;
  }
  if (e.code === 'UND_ERR_CONNECT_TIMEOUT') return `connection timed out after ${timeoutMs} ms`;
  if (e.name === 'AbortError') return `download timed out after ${timeoutMs} ms`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return 'host not found';
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ECONNRESET' || e.code === 'UND_ERR_SOCKET')
    return 'connection reset by image server';
  if (
    e.code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' ||
    e.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
  ) {
    return 'image server sent fewer bytes than it announced';
  }
  if (e.name === 'MaxRedirectionError' || /redirect/i.test(e.message ?? '')) {
    return `too many redirects (more than ${MAX_REDIRECTS})`;
  }
  return `download failed: ${e.message ?? String(err)}`;
}
