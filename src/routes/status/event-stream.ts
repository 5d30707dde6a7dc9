import type { ServerResponse } from 'node:http';

/** A Server-Sent Events response: numbered events with JSON data, and comment lines. */
export class EventStream {
  private nextId = 1;

  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // nginx buffers responses unless told not to, which would hold every event back.
      'x-accel-buffering': 'no',
    });
  }

  /** JSON.stringify leaves no line breaks, so the data always fits on one `data:` line. */
  send(event: string, data: unknown): void {
    this.res.write(`event: ${event}\nid: ${this.nextId++}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  comment(text: string): void {
    this.res.write(`: ${text}\n\n`);
  }

  end(): void {
    this.res.end();
  }
}
