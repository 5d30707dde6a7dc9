import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, FileChooser, Page } from 'playwright-core';
import t from 'tap';
import { WEB_DIR } from '../../src/web-page.js';
import { launchChromium, offMachine, openContext } from '../helpers/browser.js';
import { startOrigin } from '../helpers/origin.js';
import {
  downloadCsv,
  fetchBytes,
  getProducts,
  parseCsv,
  sleep,
  splitOutputs,
  startService,
  type TapTest,
} from '../helpers/service.js';

const TOKEN = 'test-token-0123456789abcdef';
/** How long a step may hang before the test fails instead of waiting for tap's timeout. */
const PAGE_TIMEOUT_MS = 30_000;
/** Set UPDATE_SCREENSHOTS=1 to refresh the README's pictures; otherwise they go to a temp dir. */
const SCREENSHOT_DIR = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

if (!existsSync(path.join(WEB_DIR, 'index.html'))) {
  t.fail(`the web page is not built in ${WEB_DIR}: run npm run build:web (scripts/test.sh does)`);
}

const origin = await startOrigin();
t.teardown(() => origin.close());
const browser = await launchChromium(t);
if (browser !== null) definePageTests(browser);

/** Three products, four good images (800×600, 1600×1200, 400×300) and one that is gone. */
const productsCsv = (): string =>
  [
    'Serial Number,Product Name,Input Image Urls',
    `SKU-1,Walnut chair,"${origin.url}/img/photo1.jpg, ${origin.url}/img/photo2.jpg"`,
    `SKU-2,Oak table,${origin.url}/img/big.jpg`,
    `SKU-3,Glass lamp,"${origin.url}/img/alpha.png, ${origin.url}/status/404"`,
    '',
  ].join('\n');

const csvFile = (text: string) => ({
  name: 'products.csv',
  mimeType: 'text/csv',
  buffer: Buffer.from(text),
});

/** Waits for the open job to reach 100 % and COMPLETED; returns its id. */
async function waitForCompletion(t: TapTest, page: Page): Promise<string> {
  const bar = page.getByRole('progressbar', { name: 'Job progress' });
  await bar.and(page.locator('[aria-valuenow="100"]')).waitFor();
  t.equal(await bar.getAttribute('aria-valuemin'), '0');
  t.equal(await bar.getAttribute('aria-valuemax'), '100');
  await page.locator('#job-status', { hasText: 'COMPLETED' }).waitFor();
  t.match(await page.locator('#job-announce').textContent(), /Job completed/, 'announced');
  const id = (await page.locator('#job-id').textContent()) ?? '';
  t.match(id, /^[0-9a-f-]{36}$/);
  t.equal(new URL(page.url()).hash, `#job=${id}`, 'the address names the job');
  return id;
}

/**
 * The loaded "after" thumbnails, once all `count` have loaded. (Code run in the page sees
 * its elements untyped: this program has Node's types, not the DOM's.)
 */
async function afterThumbnails(page: Page, count: number) {
  const images = page.locator('li.image[data-status="PROCESSED"] img.after');
  const read = () =>
    images.evaluateAll((all) =>
      all.map((i) => ({
        src: i.src as string,
        loaded: (i.complete as boolean) && i.naturalWidth > 0,
        width: i.naturalWidth as number,
        height: i.naturalHeight as number,
        alt: i.alt as string,
      })),
    );
  const deadline = Date.now() + PAGE_TIMEOUT_MS;
  for (;;) {
    const thumbs = await read();
    if (thumbs.length === count && thumbs.every((thumb) => thumb.loaded)) return thumbs;
    if (Date.now() > deadline) throw new Error(`thumbnails not loaded: ${JSON.stringify(thumbs)}`);
    await sleep(50);
  }
}

/** Downloads the results CSV through the page's button and checks it against the input. */
async function checkDownload(t: TapTest, page: Page, serviceUrl: string, id: string) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download results CSV' }).click(),
  ]);
  t.equal(download.suggestedFilename(), `results-${id}.csv`);
  const text = await fs.readFile(await download.path(), 'utf8');
  const rows = await parseCsv(text);
  const input = await parseCsv(productsCsv());
  t.same(rows[0], [...(input[0] ?? []), 'Output Image Urls', 'Errors'], 'header');
  t.equal(rows.length, input.length, 'one results row per input row');
  input.slice(1).forEach((cells, i) => {
    const row = rows[i + 1] ?? [];
    t.same(row.slice(0, 3), cells, `row ${i + 1} keeps its input cells`);
    const inputs = splitOutputs(cells[2] ?? '');
    const outputs = splitOutputs(row[3] ?? '');
    t.equal(outputs.length, inputs.length, `row ${i + 1}: an output position per input URL`);
    inputs.forEach((url, position) => {
      if (url.endsWith('/status/404')) t.equal(outputs[position], '', 'the missing image');
      else t.match(outputs[position], /\/processed_images\/.+\.webp$/, url);
    });
  });
  return text;
}

function definePageTests(browser: Browser): void {
  t.test('upload through the page, live progress, thumbnails, results', async (t) => {
    const service = await startService();
    t.teardown(() => service.close());
    const { context, requests } = await openContext(browser);
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    // Listening from the start has Playwright intercept file choosers before any can open.
    const fileChooser = new Promise<FileChooser>((resolve) => page.once('filechooser', resolve));

    await page.goto(`${service.url}/`);
    t.equal(await page.title(), 'Image batch service');
    t.same(
      await page
        .locator('input, select')
        .evaluateAll((fields) => fields.filter((f) => f.labels.length === 0).map((f) => f.id)),
      [],
      'every field has a label',
    );

    // The drop zone is the file input: reached with Tab, opened with Space.
    const fileInput = page.locator('#file');
    const focused = () =>
      fileInput.evaluate((input) => input === input.ownerDocument.activeElement);
    for (let i = 0; i < 10 && !(await focused()); i++) await page.keyboard.press('Tab');
    t.ok(await focused(), 'Tab reaches it');
    t.equal(
      await page
        .locator('#dropzone')
        .evaluate((zone) => zone.ownerDocument.defaultView.getComputedStyle(zone).outlineStyle),
      'solid',
      'focus is visible on the zone',
    );
    await page.keyboard.press('Space');
    const chooser = await fileChooser;
    await chooser.setFiles(csvFile(productsCsv()));
    await page.locator('#file-name', { hasText: 'products.csv' }).waitFor();

    await page.getByLabel('Quality').fill('60');
    await page.getByLabel('Format').selectOption('webp');
    await page.getByLabel('Max width').fill('400');
    await page.getByRole('button', { name: 'Upload and process' }).click();
    const id = await waitForCompletion(t, page);

    t.match(
      await page.locator('#job-counts').textContent(),
      /^100% · 4 of 5 images processed, 1 failed · 3 of 3 products done$/,
    );
    const thumbs = await afterThumbnails(page, 4);
    for (const thumb of thumbs) {
      t.equal(thumb.width, 400, `${thumb.alt}: max width applied`);
      t.equal(thumb.height, 300, `${thumb.alt}: aspect kept`);
      t.match(thumb.src, new RegExp(`^${service.url}/processed_images/${id}/.+\\.webp$`));
    }
    const before = await page
      .locator('li.image img:not(.after)')
      .evaluateAll((images) =>
        images.map((i) => ({ src: i.src as string, loaded: i.naturalWidth > 0 })),
      );
    t.equal(before.length, 5, 'a "before" thumbnail for every input image');
    t.same(
      before.filter((b) => !b.loaded).map((b) => b.src),
      [`${origin.url}/status/404`],
      'all but the missing one show',
    );
    const products = await getProducts(service.url, id);
    const processed = products.products.flatMap((p) => p.images).filter((i) => i.bytes_out);
    const captions = await page
      .locator('li.image[data-status="PROCESSED"] figcaption')
      .allTextContents();
    t.equal(captions.length, processed.length);
    for (const caption of captions) t.match(caption, /^[\d.]+ kB → [\d.]+ kB, \d+% smaller$/);
    t.match(
      await page.locator('li.image[data-status="FAILED"] figcaption').textContent(),
      /^Failed: .*404/,
    );

    const text = await checkDownload(t, page, service.url, id);
    t.equal(text, (await downloadCsv(service.url, id)).text, 'the same file GET /download sends');

    const recent = page.locator(`#recent a[data-id="${id}"]`);
    await recent.waitFor();
    t.equal(await recent.getAttribute('aria-current'), 'true', 'listed and marked current');
    t.match(await recent.textContent(), /COMPLETED/);

    const paths = requests.map((u) => u.pathname);
    t.ok(paths.includes(`/status/${id}/events`), 'progress came from the event stream');
    t.notOk(paths.includes(`/status/${id}`), 'so the page did not poll');
    t.same(offMachine(requests), [], 'no request left 127.0.0.1');

    const dir = process.env.UPDATE_SCREENSHOTS === '1' ? SCREENSHOT_DIR : t.testdir();
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'web-page.png');
    await page.screenshot({ path: file, fullPage: true });
    const png = await fs.readFile(file);
    t.same([...png.subarray(1, 4)], [...Buffer.from('PNG')], 'a PNG screenshot');
  });

  t.test('a rejected CSV: every row problem is listed, nothing is fetched', async (t) => {
    const service = await startService();
    t.teardown(() => service.close());
    const { context } = await openContext(browser);
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.goto(`${service.url}/`);

    const csv = [
      'Serial Number,Product Name,Input Image Urls',
      `1,Fine,${origin.url}/img/photo3.jpg`,
      '2,No scheme,example.com/a.jpg',
      '3,No URL,',
      '',
    ].join('\n');
    await page.setInputFiles('#file', csvFile(csv));
    await page.getByRole('button', { name: 'Upload and process' }).click();
    const errors = page.getByRole('alert').filter({ hasText: 'rejected' });
    await errors.waitFor();
    const items = await errors.locator('li').allTextContents();
    t.equal(items.length, 2, 'both bad rows');
    t.match(items[0], /^Row 2, column "Input Image Urls": /);
    t.match(items[1], /^Row 3, column "Input Image Urls": no image URL/);
    t.ok(await page.locator('#job').isHidden(), 'no job opened');
    t.equal(origin.hits('/img/photo3.jpg'), 0, 'nothing fetched');

    await page.getByLabel('Webhook URL').fill('http://127.0.0.1:9/hook');
    await page.setInputFiles('#file', csvFile(`Serial Number,Product Name,Input Image Urls\n`));
    await page.getByRole('button', { name: 'Upload and process' }).click();
    await errors.filter({ hasText: 'no product rows' }).waitFor();
  });

  t.test('when the event stream fails, the page polls to the end', async (t) => {
    const service = await startService();
    t.teardown(() => service.close());
    const { context, requests } = await openContext(browser);
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.route('**/status/*/events', (route) => route.abort('connectionreset'));
    await page.goto(`${service.url}/`);

    await page.setInputFiles('#file', csvFile(productsCsv()));
    await page.getByLabel('Format').selectOption('webp');
    await page.getByRole('button', { name: 'Upload and process' }).click();
    const id = await waitForCompletion(t, page);
    t.ok(
      requests.some((u) => u.pathname === `/status/${id}`),
      'GET /status/:id polled',
    );
    await afterThumbnails(page, 4);
    await checkDownload(t, page, service.url, id);

    // A fresh visit shows no job until one is picked from the recent jobs.
    await page.goto(`${service.url}/`);
    t.ok(await page.locator('#job').isHidden(), 'no job open');
    await page.locator(`#recent a[data-id="${id}"]`).click();
    await page.locator('#job-status', { hasText: 'COMPLETED' }).waitFor();
    t.equal(await page.locator('#job-id').textContent(), id, 'the picked job');
    t.equal(await page.getByRole('progressbar').getAttribute('aria-valuenow'), '100');
    await afterThumbnails(page, 4);
  });

  t.test('with API_TOKEN: the page asks for the token and sends it everywhere', async (t) => {
    const service = await startService({ API_TOKEN: TOKEN });
    t.teardown(() => service.close());
    const { context, requests } = await openContext(browser);
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.goto(`${service.url}/`);

    await page.locator('#token-panel[open]').waitFor();
    t.match(await page.locator('#token-state').textContent(), /needs an API token/);
    t.match(await page.locator('#recent-message').textContent(), /needs the API token/);
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#recent-message', { hasText: 'No jobs yet.' }).waitFor();

    // Dropped on the zone this time, as a file dragged from the desktop would be.
    const transfer = await page.evaluateHandle(
      `(() => {
        const data = new DataTransfer();
        data.items.add(new File([${JSON.stringify(productsCsv())}], 'dropped.csv', { type: 'text/csv' }));
        return data;
      })()`,
    );
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: transfer });
    await page.locator('#file-name', { hasText: 'dropped.csv' }).waitFor();
    await page.getByLabel('Format').selectOption('webp');
    await page.getByRole('button', { name: 'Upload and process' }).click();
    const id = await waitForCompletion(t, page);

    const thumbs = await afterThumbnails(page, 4);
    for (const thumb of thumbs)
      t.match(thumb.src, /^blob:/, `${thumb.alt}: fetched with the token`);
    const products = await getProducts(service.url, id).catch((err: Error) => err);
    t.type(products, Error, 'the API refuses a caller without the token');
    const output = `${service.url}/processed_images/${id}/1-1.webp`;
    t.equal((await fetchBytes(output)).res.status, 401, 'and so do the images');
    t.ok(
      requests.some((u) => u.pathname === `/status/${id}/events`),
      'streamed with the token',
    );

    await checkDownload(t, page, service.url, id);

    await page.reload();
    await page.locator('#job-status', { hasText: 'COMPLETED' }).waitFor();
    t.equal(await page.locator('#job-id').textContent(), id, 'reopened from the address');
    await afterThumbnails(page, 4);
    t.same(offMachine(requests), [], 'no request left 127.0.0.1');
  });
}
