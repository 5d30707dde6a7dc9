import type { Origin } from './origin.js';

export interface Gate {
  /** Resolves once the service has asked for the image. */
  requested: Promise<void>;
  /** Lets every held and later request through, answered with the image. */
  open(): void;
}

/**
 * Serves `body` at `path` on the origin, but only once `open()` is called: a job whose image
 * is behind a closed gate stays PROCESSING for as long as a test needs it to.
 */
export function addGate(origin: Origin, path: string, body: Buffer): Gate {
  let opened = false;
  const waiting: Array<() => void> = [];
  let markRequested: () => void = () => {};
  const requested = new Promise<void>((resolve) => {
    markRequested = resolve;
  });
  origin.add(path, (_req, res) => {
    markRequested();
    const send = () => {
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': body.length });
      res.end(body);
    };
    if (opened) send();
    else waiting.push(send);
  });
  return {
    requested,
    open() {
      opened = true;
      for (const send of waiting.splice(0)) send();
    },
  };
}
