/**
 * The sleep of a polling loop that new work can cut short. A `wake()` that comes while
 * the loop is busy rather than asleep is kept, so the next `sleep()` returns at once and
 * the news is never missed until the next poll.
 */
export class Alarm {
  private ring: (() => void) | null = null;
  private rungEarly = false;

  wake(): void {
    if (this.ring) this.ring();
    else this.rungEarly = true;
  }

  sleep(ms: number): Promise<void> {
    if (this.rungEarly) {
      this.rungEarly = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.ring = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ring = done;
    });
  }
}
