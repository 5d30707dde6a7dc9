/**
 * Buffers that downloaded bodies are read into, reused from one image to the next.
 *
 * V8 starts a young-generation collection after every ~20 MB of new `Buffer` memory,
 * however large its young generation is. A 1 MB image arrives as ~1 MB of socket reads,
 * and joining those into one new 1 MB buffer doubled that: 88 collections for the
 * benchmark's 900-image job, ~0.45 s of main-thread pauses. A body whose Content-Length is
 * known is copied into a buffer from here instead, and the buffer is handed back once the
 * image has been encoded: 48 collections, ~0.2 s.
 */
export class BodyBuffers {
  /** Free memory, smallest first; each `byteLength` a power of two, MIN_SIZE to MAX_SIZE. */
  private readonly free: ArrayBuffer[] = [];
  /** Memory handed out and not yet back, so that nothing else is taken in. */
  private readonly lent = new WeakSet<ArrayBuffer>();

  /** @param keep how much free memory to hold on to: one per image in flight is enough. */
  constructor(private readonly keep: number) {}

  /**
   * A buffer of exactly `length` bytes for a body to be copied into, or null when the body
   * is too large to be worth keeping memory for (read it some other way).
   */
  take(length: number): Buffer | null {
    if (length > MAX_SIZE) return null;
    // The smallest that fits, so that small bodies leave the large ones free.
    const index = this.free.findIndex((memory) => memory.byteLength >= length);
    const memory =
      (index >= 0 ? this.free.splice(index, 1)[0] : undefined) ?? new ArrayBuffer(sizeFor(length));
    this.lent.add(memory);
    return Buffer.from(memory, 0, length);
  }

  /**
   * Takes back a buffer from `take` (anything else is ignored). Only once nothing reads it
   * any more: sharp reads its input in place, so not before the image's encode has ended.
   */
  give(body: Buffer): void {
    const memory = body.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.has(memory)) return;
    this.lent.delete(memory);
    if (this.free.length >= this.keep) return;
    const at = this.free.findIndex((other) => other.byteLength >= memory.byteLength);
    this.free.splice(at < 0 ? this.free.length : at, 0, memory);
  }
}

const MIN_SIZE = 64 * 1024;
/** Larger bodies are rare enough to be read into a buffer of their own. */
const MAX_SIZE = 4 * 1024 * 1024;

function sizeFor(length: number): number {
  let size = MIN_SIZE;
  while (size < length) size *= 2;
  return size;
}
