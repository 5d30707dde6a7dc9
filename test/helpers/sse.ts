import { timeout } from './service.js';

/** One Server-Sent Events frame: an event (with its fields) or a comment line. */
export interface SseFrame {
  event?: string;
  id?: string;
  data?: string;
  comment?: string;
}

export interface SseClient {
  res: Response;
  /** The next frame, or null once the server has ended the stream. */
  next(): Promise<SseFrame | null>;
  /** Every frame up to the end of the stream. */
  rest(): Promise<SseFrame[]>;
  /** Drops the connection, as a closed browser tab does. */
  abort(): void;
}

/**
 * GETs an event stream with fetch and reads its body frame by frame. Non-stream answers
 * (404, 401…) are returned too: check `res.status` before calling `next`.
 */
export async function openEvents(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseClient> {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: AbortSignal.any([controller.signal, timeout()]),
  });
  // Taken on the first read, so that a JSON answer (404, 401) can still be read with json().
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const decoder = new TextDecoder();
  let buffer = '';
  let ended = false;

  async function next(): Promise<SseFrame | null> {
    for (;;) {
      const blank = buffer.indexOf('\n\n');
      if (blank >= 0) {
        const block = buffer.slice(0, blank);
        buffer = buffer.slice(blank + 2);
        return parseFrame(block);
      }
      if (ended || res.body === null) return null;
      reader ??= res.body.getReader();
      const chunk = await reader.read();
      if (chunk.done) ended = true;
      else buffer += decoder.decode(chunk.value, { stream: true });
    }
  }

  const client: SseClient = {
    res,
    next,
    async rest() {
      const frames: SseFrame[] = [];
      for (let frame = await next(); frame !== null; frame = await next()) frames.push(frame);
      return frames;
    },
    abort: () => controller.abort(),
  };
  return client;
}

function parseFrame(block: string): SseFrame {
  const frame: SseFrame = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comment = line.slice(1).trim();
    const match = /^(event|id|data): ?(.*)$/.exec(line);
    if (match?.[1] === 'event') frame.event = match[2];
    if (match?.[1] === 'id') frame.id = match[2];
    if (match?.[1] === 'data') frame.data = match[2];
  }
  return frame;
}
