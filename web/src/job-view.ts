import { ApiError, getBlob, getProducts, type JobStatus, type Product, token } from './api.js';
import { byId, h } from './dom.js';
import { formatBytes, formatSaving, formatTime } from './format.js';
import { followJob, type Transport } from './job-feed.js';

export interface JobViewHandlers {
  changed(status: JobStatus): void;
  finished(status: JobStatus): void;
  unauthorized(): void;
}

const PRODUCTS_PER_PAGE = 20;
/** While a job runs, its products are re-read at most this often. */
const PRODUCTS_REFRESH_MS = 1000;

const TRANSPORT_TEXT: Record<Transport, string> = {
  connecting: 'Connecting…',
  stream: 'Live updates',
  polling: 'Checking every second (live updates unavailable)',
};

const IMAGE_STATUS_TEXT = {
  PENDING: 'Waiting',
  PROCESSING: 'Processing…',
  PROCESSED: 'Done',
  FAILED: 'Failed',
} as const;

const isFinished = (status: JobStatus): boolean =>
  status.status === 'COMPLETED' || status.status === 'FAILED';

/** One job: its live progress, its products with thumbnails, and its results CSV. */
export class JobView {
  private readonly section = byId<HTMLElement>('job');
  private readonly heading = byId<HTMLHeadingElement>('job-heading');
  private readonly idText = byId<HTMLElement>('job-id');
  private readonly badge = byId<HTMLSpanElement>('job-status');
  private readonly created = byId<HTMLSpanElement>('job-created');
  private readonly transportText = byId<HTMLSpanElement>('job-transport');
  private readonly bar = byId<HTMLDivElement>('job-progress');
  private readonly fill = byId<HTMLDivElement>('job-progress-fill');
  private readonly counts = byId<HTMLParagraphElement>('job-counts');
  private readonly announcer = byId<HTMLParagraphElement>('job-announce');
  private readonly webhook = byId<HTMLParagraphElement>('job-webhook');
  private readonly problem = byId<HTMLParagraphElement>('job-problem');
  private readonly download = byId<HTMLButtonElement>('download');
  private readonly list = byId<HTMLOListElement>('products');
  private readonly range = byId<HTMLSpanElement>('products-range');
  private readonly prev = byId<HTMLButtonElement>('products-prev');
  private readonly next = byId<HTMLButtonElement>('products-next');

  private id: string | null = null;
  private status: JobStatus | null = null;
  private stopFeed: () => void = () => {};
  private announced = '';
  private offset = 0;
  private total = 0;
  /** Only the latest products request may render; older answers are dropped. */
  private productsRequest = 0;
  private productsDue = false;
  private productsLoop: Promise<void> | null = null;
  private cards = new Map<number, { json: string; element: HTMLLIElement }>();
  /** Output images fetched with the token, by URL, as object URLs (revoked on leaving the job). */
  private blobUrls = new Map<string, Promise<string>>();

  constructor(private readonly on: JobViewHandlers) {
    this.download.addEventListener('click', () => void this.downloadResults());
    this.prev.addEventListener('click', () => this.turnPage(-1));
    this.next.addEventListener('click', () => this.turnPage(1));
  }

  get current(): string | null {
    return this.id;
  }

  open(id: string, focus: boolean): void {
    this.leave();
    this.id = id;
    this.section.hidden = false;
    this.idText.textContent = id;
    this.setBadge('Loading…', 'unknown');
    this.created.textContent = '';
    this.setProgress(0);
    this.counts.textContent = '';
    this.webhook.hidden = true;
    this.showProblem(null);
    this.download.disabled = true;
    this.range.textContent = '';
    this.prev.disabled = true;
    this.next.disabled = true;
    if (focus) {
      // Straight to the job, which on a narrow screen is below the form.
      this.heading.focus({ preventScroll: true });
      this.heading.scrollIntoView({ block: 'start' });
    }

    this.stopFeed = followJob(id, {
      status: (status) => this.update(status),
      transport: (transport) => {
        this.transportText.textContent = TRANSPORT_TEXT[transport];
      },
      transient: (err) =>
        this.showProblem(err && `Lost contact with the service, retrying: ${err.message}`),
      fatal: (err) => {
        this.transportText.textContent = '';
        if (err.status === 401) this.on.unauthorized();
        this.showProblem(jobFailure(err));
      },
    });
    void this.loadProducts();
  }

  private leave(): void {
    this.stopFeed();
    this.id = null;
    this.status = null;
    this.announced = '';
    this.offset = 0;
    this.total = 0;
    this.productsRequest += 1;
    this.cards.clear();
    this.list.replaceChildren();
    for (const url of this.blobUrls.values()) {
      void url.then(
        (objectUrl) => URL.revokeObjectURL(objectUrl),
        () => {},
      );
    }
    this.blobUrls.clear();
  }

  private update(status: JobStatus): void {
    const previous = this.status;
    this.status = status;
    const { progress } = status;
    this.setBadge(status.status, status.status.toLowerCase());
    this.created.textContent = `created ${formatTime(status.created_at)}`;
    this.setProgress(progress.percent);
    this.counts.textContent =
      `${progress.percent}% · ${progress.images_processed} of ${progress.images_total} images processed, ` +
      `${progress.images_failed} failed · ` +
      `${progress.products_done} of ${progress.products_total} products done`;
    this.announce(status);
    this.showWebhook(status);
    this.download.disabled = status.download_url === null;
    if (status.status === 'FAILED') this.showProblem('The job could not finish.');

    const changed =
      previous === null ||
      previous.status !== status.status ||
      previous.progress.images_processed !== progress.images_processed ||
      previous.progress.images_failed !== progress.images_failed;
    if (changed) {
      this.requestProducts();
      this.on.changed(status);
    }
    if (isFinished(status)) {
      this.transportText.textContent = '';
      if (previous === null || !isFinished(previous)) this.on.finished(status);
    }
  }

  private setBadge(text: string, kind: string): void {
    this.badge.textContent = text;
    this.badge.className = `badge badge-${kind}`;
  }

  private setProgress(percent: number): void {
    this.bar.setAttribute('aria-valuenow', String(percent));
    this.bar.setAttribute('aria-valuetext', `${percent}%`);
    this.fill.style.width = `${percent}%`;
  }

  /** Screen readers hear status changes and every tenth of the way, not every event. */
  private announce(status: JobStatus): void {
    const { progress } = status;
    const step = `${status.status}:${Math.floor(progress.percent / 10)}`;
    if (step === this.announced) return;
    this.announced = step;
    this.announcer.textContent =
      status.status === 'COMPLETED'
        ? `Job completed: ${progress.images_processed} images processed, ` +
          `${progress.images_failed} failed. The results CSV is ready to download.`
        : status.status === 'FAILED'
          ? 'The job failed.'
          : `Job ${status.status.toLowerCase()}: ${progress.percent}%`;
  }

  private showWebhook(status: JobStatus): void {
    const hook = status.webhook;
    this.webhook.hidden = hook === null;
    if (hook === null) return;
    const attempts = `${hook.attempts} attempt${hook.attempts === 1 ? '' : 's'}`;
    const next = hook.next_attempt_at ? `, next at ${formatTime(hook.next_attempt_at)}` : '';
    const error = hook.last_error ? ` (last error: ${hook.last_error})` : '';
    this.webhook.textContent = `Webhook ${hook.url}: ${hook.status.toLowerCase()}, ${attempts}${next}${error}`;
  }

  private showProblem(message: string | null): void {
    this.problem.hidden = message === null;
    this.problem.textContent = message ?? '';
  }

  private turnPage(direction: 1 | -1): void {
    this.offset = Math.max(0, this.offset + direction * PRODUCTS_PER_PAGE);
    void this.loadProducts();
  }

  /** Re-reads the products now, or once the last read is PRODUCTS_REFRESH_MS old. */
  private requestProducts(): void {
    this.productsDue = true;
    this.productsLoop ??= (async () => {
      while (this.productsDue) {
        this.productsDue = false;
        await this.loadProducts();
        if (this.productsDue) await new Promise((r) => setTimeout(r, PRODUCTS_REFRESH_MS));
      }
      this.productsLoop = null;
    })();
  }

  private async loadProducts(): Promise<void> {
    const id = this.id;
    if (id === null) return;
    const request = ++this.productsRequest;
    try {
      const page = await getProducts(id, this.offset, PRODUCTS_PER_PAGE);
      if (request !== this.productsRequest) return;
      this.total = page.total;
      this.renderProducts(page.products);
    } catch (err) {
      if (request !== this.productsRequest || !(err instanceof ApiError)) return;
      // The feed reports a missing job or a missing token; only other failures show here.
      if (err.status !== 401 && err.status !== 404) {
        this.showProblem(`Could not load the products: ${err.message}`);
      }
    }
  }

  private renderProducts(products: Product[]): void {
    const cards = new Map<number, { json: string; element: HTMLLIElement }>();
    for (const product of products) {
      const json = JSON.stringify(product);
      const kept = this.cards.get(product.row);
      cards.set(product.row, kept?.json === json ? kept : { json, element: this.card(product) });
    }
    this.cards = cards;
    this.list.replaceChildren(...[...cards.values()].map((card) => card.element));
    const first = products.length === 0 ? 0 : this.offset + 1;
    this.range.textContent = `Products ${first}–${this.offset + products.length} of ${this.total}`;
    this.prev.disabled = this.offset === 0;
    this.next.disabled = this.offset + PRODUCTS_PER_PAGE >= this.total;
  }

  private card(product: Product): HTMLLIElement {
    const title = product.name === '' ? product.serial : product.name;
    return h(
      'li',
      { class: 'product', 'data-row': String(product.row) },
      h(
        'h4',
        {},
        h('span', { class: 'serial' }, product.serial),
        ' ',
        product.name,
        h('span', { class: 'muted' }, ` · row ${product.row}`),
      ),
      h(
        'ul',
        { class: 'images' },
        ...product.images.map((image, index) => {
          const label = `${title}, image ${index + 1}`;
          const before = thumbnail(`Before: ${label}`);
          before.src = image.url;
          before.referrerPolicy = 'no-referrer';
          let after: HTMLElement;
          if (image.output_url === null) {
            after = h('span', { class: 'thumb placeholder' }, IMAGE_STATUS_TEXT[image.status]);
          } else {
            const img = thumbnail(`After: ${label}`);
            img.classList.add('after');
            this.showOutput(img, image.output_url);
            after = img;
          }
          return h(
            'li',
            { class: 'image', 'data-status': image.status },
            h(
              'figure',
              {},
              h('div', { class: 'pair' }, before, h('span', { 'aria-hidden': 'true' }, '→'), after),
              h('figcaption', {}, imageCaption(image)),
            ),
          );
        }),
      ),
    );
  }

  /** With a token, output images are behind it too: fetched with it and shown as blobs. */
  private showOutput(img: HTMLImageElement, url: string): void {
    if (token.get() === '') {
      img.src = url;
      return;
    }
    let blobUrl = this.blobUrls.get(url);
    if (blobUrl === undefined) {
      blobUrl = getBlob(url).then((blob) => URL.createObjectURL(blob));
      this.blobUrls.set(url, blobUrl);
    }
    blobUrl.then(
      (src) => {
        img.src = src;
      },
      () => img.classList.add('broken'),
    );
  }

  private async downloadResults(): Promise<void> {
    const url = this.status?.download_url;
    const id = this.id;
    if (!url || id === null) return;
    this.download.disabled = true;
    try {
      const href = URL.createObjectURL(await getBlob(url));
      const link = h('a', { href, download: `results-${id}.csv`, hidden: '' });
      document.body.append(link);
      link.click();
      link.remove();
      // The download has its own copy by the time the page next looks at this.
      setTimeout(() => URL.revokeObjectURL(href), 60_000);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 401) this.on.unauthorized();
      this.showProblem(`The results CSV could not be downloaded: ${err.message}`);
    } finally {
      this.download.disabled = !this.status?.download_url;
    }
  }
}

function thumbnail(alt: string): HTMLImageElement {
  const img = h('img', {
    class: 'thumb',
    alt,
    width: '96',
    height: '96',
    loading: 'lazy',
    decoding: 'async',
  });
  img.addEventListener('error', () => img.classList.add('broken'));
  return img;
}

function imageCaption(image: Product['images'][number]): string {
  if (image.status === 'FAILED') return `Failed: ${image.error ?? 'unknown error'}`;
  if (image.status === 'PROCESSED' && image.bytes_in !== null && image.bytes_out !== null) {
    return (
      `${formatBytes(image.bytes_in)} → ${formatBytes(image.bytes_out)}, ` +
      formatSaving(image.bytes_in, image.bytes_out)
    );
  }
  return IMAGE_STATUS_TEXT[image.status];
}

function jobFailure(err: ApiError): string {
  switch (err.status) {
    case 401:
      return 'This job needs the API token: enter it under "Access token" above.';
    case 404:
      return 'There is no job with this id on this service.';
    case 400:
      return `Not a job id: ${err.message}`;
    default:
      return err.message;
  }
}
