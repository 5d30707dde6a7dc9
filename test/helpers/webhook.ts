import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface WebhookDelivery {
  method: string;
  /** Request path including query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is valid JSON, otherwise the raw string. */
  body: unknown;
  raw: string;
}

export interface WebhookReceiver {
  /** Full URL to POST to, e.g. `http://127.0.0.1:41234/webhook`. */
  url: string;
  received: WebhookDelivery[];
  /** Resolves with all deliveries so far once at least `count` have arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<WebhookDelivery[]>;
  /** Changes the status returned to later deliveries, e.g. to test retries after failures. */
  setStatus(status: number): void;
  close(): Promise<void>;
}

interface Waiter {
  count: number;
  resolve: (deliveries: WebhookDelivery[]) => void;
}

function parseBody(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export async function startWebhookReceiver(opts?: { status?: number }): Promise<WebhookReceiver> {
  let status = opts?.status ?? 200;
  const received: WebhookDelivery[] = [];
  const waiters = new Set<Waiter>();
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body: parseBody(raw),
        raw,
      });
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: status < 400 }));
      for (const waiter of waiters) {
        if (received.length >= waiter.count) {
          waiters.delete(waiter);
          waiter.resolve([...received]);
        }
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    received,
    waitFor: (count, timeoutMs = 10_000) => {
      if (received.length >= count) return Promise.resolve([...received]);
      return new Promise<WebhookDelivery[]>((resolve, reject) => {
        const waiter: Waiter = {
          count,
          resolve: (deliveries) => {
            clearTimeout(timer);
            resolve(deliveries);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `webhook receiver: expected at least ${count} deliveries within ${timeoutMs} ms, ` +
                `got ${received.length}`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    setStatus: (next) => {
      status = next;
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Senders using keep-alive would otherwise hold close() open.
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
