import type { Logger } from 'pino';
import type { JobRecord } from '../store/job-store.js';
import { jobLog } from './job-log.js';

export type WatchEvent =
  /** The job changed in a way its owner can see. */
  | { type: 'progress'; job: JobRecord }
  /** The job is COMPLETED or FAILED; nothing follows. */
  | { type: 'done'; job: JobRecord }
  /** Nothing changed for a while; a stream says so, so that proxies keep it open. */
  | { type: 'keepalive' }
  /** The job no longer exists; nothing follows. */
  | { type: 'gone' };

export type WatchListener = (event: WatchEvent) => void;

export interface WatchSettings {
  /** How often a watched job is read from the store. */
  intervalMs: number;
  /** Silence after which listeners get a keepalive. */
  keepaliveMs: number;
}

const isFinal = (job: JobRecord): boolean => job.status === 'COMPLETED' || job.status === 'FAILED';

/**
 * What a client can see of a job. The webhook's claim (owner and lease) changes without
 * anything visible changing, so it is left out.
 */
function fingerprint(job: JobRecord): string {
  const webhook = job.webhook && { ...job.webhook, owner: null, leaseUntil: null };
  return JSON.stringify({ ...job, webhook });
}

interface Watcher {
  id: string;
  listeners: Set<WatchListener>;
  print: string;
  lastEventAt: number;
  timer: NodeJS.Timeout | null;
  /** The last read failed; further failures in a row are not logged again. */
  failing: boolean;
}

/**
 * Live progress of jobs for any number of listeners. Each watched job has one watcher that
 * reads it from the store once per interval, however many listeners it has, and tells
 * them when what they can see changed; the watcher goes away with its last listener, or
 * when the job is finished.
 */
export class JobWatchers {
  private readonly watchers = new Map<string, Watcher>();

  constructor(
    private readonly read: (id: string) => Promise<JobRecord | null>,
    private readonly settings: WatchSettings,
    private readonly log: Logger,
  ) {}

  /** Jobs being watched, each costing one store read per interval. */
  get watchedJobs(): number {
    return this.watchers.size;
  }

  /** Listeners across every watched job. */
  get listenerCount(): number {
    let count = 0;
    for (const watcher of this.watchers.values()) count += watcher.listeners.size;
    return count;
  }

  /**
   * Tells `listener` about `job` (as just read by the caller) at once, then about each
   * change, at most once per interval, until the job is finished (`done`) or the returned
   * function is called. A finished job gets `progress` and `done` at once and no watcher.
   */
  watch(job: JobRecord, listener: WatchListener): () => void {
    listener({ type: 'progress', job });
    if (isFinal(job)) {
      listener({ type: 'done', job });
      return () => {};
    }
    let watcher = this.watchers.get(job.id);
    if (!watcher) {
      watcher = {
        id: job.id,
        listeners: new Set(),
        print: fingerprint(job),
        lastEventAt: Date.now(),
        timer: null,
        failing: false,
      };
      this.watchers.set(job.id, watcher);
      this.schedule(watcher);
    }
    watcher.listeners.add(listener);
    const watching = watcher;
    return () => {
      watching.listeners.delete(listener);
      if (watching.listeners.size === 0) this.dispose(watching);
    };
  }

  private schedule(watcher: Watcher): void {
    watcher.timer = setTimeout(() => void this.tick(watcher), this.settings.intervalMs);
  }

  private dispose(watcher: Watcher): void {
    if (watcher.timer) clearTimeout(watcher.timer);
    if (this.watching(watcher)) this.watchers.delete(watcher.id);
  }

  private async tick(watcher: Watcher): Promise<void> {
    let job: JobRecord | null;
    try {
      job = await this.read(watcher.id);
    } catch (err) {
      // A store that fails now may answer at the next tick; the listeners just wait.
      if (!watcher.failing) {
        jobLog(this.log, watcher.id).warn({ err }, 'could not read a watched job');
      }
      watcher.failing = true;
      if (this.watching(watcher)) this.schedule(watcher);
      return;
    }
    watcher.failing = false;
    // The last listener left while the store was being read.
    if (!this.watching(watcher)) return;
    if (job === null) {
      this.dispose(watcher);
      this.emit(watcher, { type: 'gone' });
      return;
    }
    const print = fingerprint(job);
    if (print !== watcher.print) {
      watcher.print = print;
      watcher.lastEventAt = Date.now();
      this.emit(watcher, { type: 'progress', job });
    } else if (Date.now() - watcher.lastEventAt >= this.settings.keepaliveMs) {
      watcher.lastEventAt = Date.now();
      this.emit(watcher, { type: 'keepalive' });
    }
    if (isFinal(job)) {
      this.dispose(watcher);
      this.emit(watcher, { type: 'done', job });
      return;
    }
    if (this.watching(watcher)) this.schedule(watcher);
  }

  private watching(watcher: Watcher): boolean {
    return this.watchers.get(watcher.id) === watcher;
  }

  private emit(watcher: Watcher, event: WatchEvent): void {
    for (const listener of watcher.listeners) {
      try {
        listener(event);
      } catch (err) {
        jobLog(this.log, watcher.id).warn({ err }, 'a job listener failed; dropped');
        watcher.listeners.delete(listener);
      }
    }
    if (watcher.listeners.size === 0) this.dispose(watcher);
  }
}
