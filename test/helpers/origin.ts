import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { makeExifRotatedJpeg, makeJpeg, makePng, makeWebp } from './images.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;

export type StaticRoute = {
  body: Buffer;
  contentType?: string;
  status?: number;
  headers?: Record<string, string>;
};

export type Route = StaticRoute | RouteHandler;

export type FixturePath =
  | '/img/photo1.jpg'
  | '/img/photo2.jpg'
  | '/img/photo3.jpg'
  | '/img/big.jpg'
  | '/img/alpha.png'
  | '/img/pic.webp'
  | '/img/rotated.jpg';

export type Fixtures = Readonly<Record<FixturePath, Buffer>>;

export type FixtureInfo = {
  width: number;
  height: number;
  format: 'jpeg' | 'png' | 'webp';
  contentType: string;
  /** EXIF orientation stored in the file; width/height above are the stored (unrotated) size. */
  orientation?: number;
};

export const fixtureInfo: Readonly<Record<FixturePath, FixtureInfo>> = {
  '/img/photo1.jpg': { width: 800, height: 600, format: 'jpeg', contentType: 'image/jpeg' },
  '/img/photo2.jpg': { width: 800, height: 600, format: 'jpeg', contentType: 'image/jpeg' },
  '/img/photo3.jpg': { width: 800, height: 600, format: 'jpeg', contentType: 'image/jpeg' },
  '/img/big.jpg': { width: 1600, height: 1200, format: 'jpeg', contentType: 'image/jpeg' },
  '/img/alpha.png': { width: 400, height: 300, format: 'png', contentType: 'image/png' },
  '/img/pic.webp': { width: 400, height: 300, format: 'webp', contentType: 'image/webp' },
  '/img/rotated.jpg': {
    width: 300,
    height: 200,
    format: 'jpeg',
    contentType: 'image/jpeg',
    orientation: 6,
  },
};

export const HTML_PAGE =
  '<!doctype html>\n<html><head><title>Not an image</title></head>' +
  '<body><h1>Sorry, this is a web page</h1></body></html>\n';

let fixturesPromise: Promise<Fixtures> | undefined;

/** Generated once per process: encoding the big JPEG costs ~100 ms and every origin shares it. */
export function loadFixtures(): Promise<Fixtures> {
  fixturesPromise ??= (async () => {
    const [photo1, photo2, photo3, big, alpha, pic, rotated] = await Promise.all([
      makeJpeg(800, 600, 1),
      makeJpeg(800, 600, 2),
      makeJpeg(800, 600, 3),
      makeJpeg(1600, 1200, 1),
      makePng(400, 300, 1, true),
      makeWebp(400, 300, 1),
      makeExifRotatedJpeg(300, 200),
    ]);
    return Object.freeze({
      '/img/photo1.jpg': photo1,
      '/img/photo2.jpg': photo2,
      '/img/photo3.jpg': photo3,
      '/img/big.jpg': big,
      '/img/alpha.png': alpha,
      '/img/pic.webp': pic,
      '/img/rotated.jpg': rotated,
    });
  })();
  return fixturesPromise;
}

export interface Origin {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  fixtures: Fixtures;
  /** Requests received for a pathname (query string ignored), including unknown paths. */
  hits(path: string): number;
  /** Registers or replaces a route; keyed by pathname. */
  add(path: string, route: Route): void;
  close(): Promise<void>;
}

function sendStatic(req: IncomingMessage, res: ServerResponse, route: StaticRoute): void {
  res.writeHead(route.status ?? 200, {
    'Content-Type': route.contentType ?? 'application/octet-stream',
    'Content-Length': String(route.body.length),
    ...route.headers,
  });
  res.end(req.method === 'HEAD' ? undefined : route.body);
}

export async function startOrigin(): Promise<Origin> {
  const fixtures = await loadFixtures();
  const routes = new Map<string, Route>();
  const hitCounts = new Map<string, number>();
  const sockets = new Set<Socket>();

  for (const [path, body] of Object.entries(fixtures)) {
    const info = fixtureInfo[path as FixturePath];
    routes.set(path, { body, contentType: info.contentType });
  }
  routes.set('/status/404', {
    status: 404,
    body: Buffer.from('not found'),
    contentType: 'text/plain',
  });
  routes.set('/status/500', {
    status: 500,
    body: Buffer.from('internal error'),
    contentType: 'text/plain',
  });
  routes.set('/html', { body: Buffer.from(HTML_PAGE), contentType: 'image/jpeg' });
  const photo1 = fixtures['/img/photo1.jpg'];
  routes.set('/truncated.jpg', {
    body: photo1.subarray(0, Math.floor(photo1.length / 2)),
    contentType: 'image/jpeg',
  });
  routes.set('/slow', (_req, res) => {
    // Announces a full body and delivers a few bytes so clients get past the headers and then
    // stall on the body; only a client-side timeout or close() ends the request.
    res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': '100000' });
    res.write(photo1.subarray(0, 64));
  });

  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    hitCounts.set(pathname, (hitCounts.get(pathname) ?? 0) + 1);
    const route = routes.get(pathname);
    if (route === undefined) {
      sendStatic(req, res, {
        status: 404,
        body: Buffer.from('no such route'),
        contentType: 'text/plain',
      });
      return;
    }
    if (typeof route !== 'function') {
      sendStatic(req, res, route);
      return;
    }
    try {
      route(req, res);
    } catch (err) {
      if (!res.headersSent) {
        sendStatic(req, res, {
          status: 500,
          body: Buffer.from(`handler threw: ${String(err)}`),
          contentType: 'text/plain',
        });
      } else {
        res.destroy();
      }
    }
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
    url: `http://127.0.0.1:${port}`,
    fixtures,
    hits: (path) => hitCounts.get(path) ?? 0,
    add: (path, route) => {
      routes.set(path, route);
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive and stalled (/slow) connections would otherwise keep close() pending forever.
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
