import { ApiError, type JobStatus, listRequests } from './api.js';
import { byId, h } from './dom.js';
import { formatTime } from './format.js';

const JOBS_PER_PAGE = 10;

/** The service's latest jobs (GET /requests), each a link that opens it. */
export class RecentJobs {
  private readonly list = byId<HTMLOListElement>('recent');
  private readonly filter = byId<HTMLSelectElement>('recent-status');
  private readonly message = byId<HTMLParagraphElement>('recent-message');
  private readonly range = byId<HTMLSpanElement>('recent-range');
  private readonly prev = byId<HTMLButtonElement>('recent-prev');
  private readonly next = byId<HTMLButtonElement>('recent-next');
  private offset = 0;
  private total = 0;
  private current: string | null = null;
  private request = 0;

  constructor(private readonly onUnauthorized: () => void) {
    byId<HTMLButtonElement>('recent-refresh').addEventListener('click', () => void this.load());
    this.filter.addEventListener('change', () => {
      this.offset = 0;
      void this.load();
    });
    this.prev.addEventListener('click', () => {
      this.offset = Math.max(0, this.offset - JOBS_PER_PAGE);
      void this.load();
    });
    this.next.addEventListener('click', () => {
      this.offset += JOBS_PER_PAGE;
      void this.load();
    });
  }

  /** Marks the job the page shows. */
  select(id: string | null): void {
    this.current = id;
    for (const link of this.list.querySelectorAll<HTMLAnchorElement>('a[data-id]')) {
      if (link.dataset.id === id) link.setAttribute('aria-current', 'true');
      else link.removeAttribute('aria-current');
    }
  }

  /** Shows a job's latest status in its entry, if the list has it. */
  update(job: JobStatus): void {
    const link = this.list.querySelector<HTMLAnchorElement>(`a[data-id="${job.request_id}"]`);
    link?.parentElement?.replaceWith(this.item(job));
  }

  async load(): Promise<void> {
    const request = ++this.request;
    try {
      const page = await listRequests(this.offset, JOBS_PER_PAGE, this.filter.value);
      if (request !== this.request) return;
      this.total = page.total;
      this.message.textContent = page.total === 0 ? 'No jobs yet.' : '';
      this.list.replaceChildren(...page.requests.map((job) => this.item(job)));
      const first = page.requests.length === 0 ? 0 : this.offset + 1;
      this.range.textContent =
        page.total === 0 ? '' : `${first}–${this.offset + page.requests.length} of ${page.total}`;
      this.prev.disabled = this.offset === 0;
      this.next.disabled = this.offset + JOBS_PER_PAGE >= this.total;
    } catch (err) {
      if (request !== this.request || !(err instanceof ApiError)) return;
      if (err.status === 401) this.onUnauthorized();
      this.list.replaceChildren();
      this.message.textContent =
        err.status === 401
          ? 'The list of jobs needs the API token.'
          : `The list of jobs is not available: ${err.message}`;
    }
  }

  private item(job: JobStatus): HTMLLIElement {
    const { progress } = job;
    const link = h(
      'a',
      { href: `#job=${job.request_id}`, 'data-id': job.request_id, class: 'recent-job' },
      h('span', { class: `badge badge-${job.status.toLowerCase()}` }, job.status),
      h('code', { class: 'recent-id', title: job.request_id }, job.request_id.slice(0, 8)),
      h('span', {}, `${progress.percent}% of ${progress.images_total} images`),
      h('time', { datetime: job.created_at, class: 'muted' }, formatTime(job.created_at)),
    );
    if (job.request_id === this.current) link.setAttribute('aria-current', 'true');
    return h('li', {}, link);
  }
}
