import pLimit, { type LimitFunction } from 'p-limit';
import type { EncodeSlot } from '../pipeline/image-pipeline.js';

export interface SlotLimits {
  /** Images being downloaded, or downloaded and waiting for an encode slot. */
  downloads: number;
  /** Images being decoded, re-encoded and written. */
  encodes: number;
  /** Downloads from one host at once; its other images wait without taking a slot. */
  perHost: number;
}

/**
 * The pool's slots. Downloads wait on the network and encodes on the CPU, so they are
 * limited apart: with one limit for both, images waiting on a slow image server held the
 * slots the encoders needed (a 300-ms origin left half of a 2-core machine idle).
 *
 * An image takes a download slot once its host's turn has come, gives the host's turn up
 * when its bytes have arrived, keeps the download slot while it waits for an encode slot
 * (so at most `downloads` images' bytes are held ahead of the encoders), and gives it up
 * when its encode starts.
 */
export class ImageSlots {
  private readonly encodes: LimitFunction;
  private readonly hosts = new Map<string, LimitFunction>();
  private hostQueue = 0;
  /** Download slots held: images downloading, or downloaded and waiting for an encode. */
  private held = 0;
  /** Images whose host's turn has come, in order, each waiting to be let in to download. */
  private readonly admissions: Array<() => void> = [];

  constructor(private readonly limits: SlotLimits) {
    this.encodes = pLimit(limits.encodes);
  }

  /** Images holding a slot of either kind. */
  get occupied(): number {
    return this.held + this.encodes.activeCount;
  }

  /** Images queued behind their host's limit, holding no slot. */
  get waitingForHost(): number {
    return this.hostQueue;
  }

  /**
   * Runs `task` in a download slot (once `host`'s turn has come; null: no host to spare,
   * such as a direct upload read from disk). `task` runs its encode through the
   * `EncodeSlot` it is given, at most once.
   */
  run<T>(host: string | null, task: (encodeSlot: EncodeSlot) => Promise<T>): Promise<T> {
    if (host === null) return this.inDownloadSlot(task, () => {});
    const hostLimit = this.hostLimit(host);
    this.hostQueue++;
    return new Promise<T>((resolve, reject) => {
      void hostLimit(() => {
        this.hostQueue--;
        // Settles, and so gives the host's turn to its next image, once the bytes are in.
        return new Promise<void>((downloaded) => {
          this.inDownloadSlot(task, downloaded).then(resolve, reject).finally(downloaded);
        });
      }).finally(() => {
        // A limiter per host ever seen would grow without end in a long-lived process;
        // one with nothing running or queued can go, and is made again when needed.
        if (hostLimit.activeCount === 0 && hostLimit.pendingCount === 0) {
          this.hosts.delete(host);
        }
      });
    });
  }

  private async inDownloadSlot<T>(
    task: (encodeSlot: EncodeSlot) => Promise<T>,
    downloaded: () => void,
  ): Promise<T> {
    await this.enter();
    let holding = true;
    const release = () => {
      if (!holding) return;
      holding = false;
      this.held--;
      this.admit();
    };
    const encodeSlot: EncodeSlot = (encode) => {
      downloaded();
      return this.encodes(() => {
        release();
        return encode();
      });
    };
    try {
      return await task(encodeSlot);
    } finally {
      release();
    }
  }

  private hasRoom(): boolean {
    return this.held < this.limits.downloads;
  }

  /** Resolves once the image holds a download slot. */
  private async enter(): Promise<void> {
    if (this.admissions.length === 0 && this.hasRoom()) {
      this.held++;
      return;
    }
    await new Promise<void>((resolve) => this.admissions.push(resolve));
  }

  private admit(): void {
    while (this.admissions.length > 0 && this.hasRoom()) {
      this.held++;
      this.admissions.shift()?.();
    }
  }

  private hostLimit(host: string): LimitFunction {
    let limit = this.hosts.get(host);
    if (!limit) {
      limit = pLimit(this.limits.perHost);
      this.hosts.set(host, limit);
    }
    return limit;
  }
}
