import type { Logger } from 'pino';
import { Alarm } from './alarm.js';
import type { JobManager } from './job-manager.js';

const DAY_MS = 86_400_000;

export interface RetentionSettings {
  /** Finished jobs are deleted this many days after they completed. */
  retentionDays: number;
  /** Time between two sweeps; the first runs at start. */
  everyMs: number;
}

/**
 * Deletes old finished jobs and their files (RETENTION_DAYS): one sweep at start, then
 * one every `everyMs`, each through the job manager, so a sweep deletes exactly as
 * DELETE /requests/:id does. A stop waits for the job being deleted, not the whole sweep.
 */
export class RetentionSweeper {
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly alarm = new Alarm();
  private readonly stopping = new AbortController();

  constructor(
    private readonly manager: Pick<JobManager, 'sweepExpired'>,
    private readonly settings: RetentionSettings,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.alarm.wake();
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const before = new Date(Date.now() - this.settings.retentionDays * DAY_MS);
      try {
        const deleted = await this.manager.sweepExpired(before, this.stopping.signal);
        if (deleted > 0) this.log.info({ deleted, before }, 'retention sweep deleted old jobs');
      } catch (err) {
        this.log.error({ err }, 'retention sweep failed');
      }
      await this.alarm.sleep(this.settings.everyMs);
    }
  }
}
