import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { format } from 'fast-csv';
import type { ImageRecord, JobRecord, JobStore } from '../store/job-store.js';
import { imageUrl } from './urls.js';

export const OUTPUT_URLS_COLUMN = 'Output Image Urls';
export const ERRORS_COLUMN = 'Errors';
export const thumbnailColumn = (name: string): string => `Thumbnail ${name} Urls`;
const PAGE = 1000;

export const resultsFile = (resultsDir: string, id: string): string =>
  path.join(resultsDir, `${id}.csv`);

/**
 * Writes the results CSV: the input's own columns and cells, then the output URL for each
 * input URL (empty where that image failed), a column per thumbnail size the job asked for
 * (its URLs position for position in the same way), and the reasons for the failures.
 * Written to a temporary name and renamed, so a download never sees half a file and a rerun
 * replaces it.
 */
export async function writeResultsCsv(
  store: JobStore,
  job: JobRecord,
  resultsDir: string,
): Promise<string> {
  async function* rows(): AsyncGenerator<string[]> {
    const sizes = job.options.thumbnails.map((spec) => spec.name);
    yield [...job.columns, OUTPUT_URLS_COLUMN, ...sizes.map(thumbnailColumn), ERRORS_COLUMN];
    const url = (file: string | null | undefined) => (file ? imageUrl(job.baseUrl, file) : '');
    for (let offset = 0; ; offset += PAGE) {
      const products = await store.listProducts(job.id, offset, PAGE);
      // Only the images of this page, so a large job's results are written in the memory
      // of one page rather than of all its images.
      const seqs = [...new Set(products.flatMap((product) => product.imageSeqs))];
      const images = new Map<number, ImageRecord>();
      for (const image of await store.findImages(job.id, seqs)) images.set(image.seq, image);
      for (const product of products) {
        const outputs: string[] = [];
        const thumbnails = sizes.map((): string[] => []);
        const errors: string[] = [];
        product.imageSeqs.forEach((seq, position) => {
          const image = images.get(seq);
          const done = image?.status === 'PROCESSED' && image.outputFile ? image : undefined;
          outputs.push(url(done?.outputFile));
          sizes.forEach((size, i) => thumbnails[i]?.push(url(done?.thumbnails[size])));
          if (!done) {
            errors.push(`${product.inputUrls[position]}: ${image?.error ?? 'not processed'}`);
          }
        });
        yield [
          ...product.cells,
          outputs.join(', '),
          ...thumbnails.map((urls) => urls.join(', ')),
          errors.join('; '),
        ];
      }
      if (products.length < PAGE) return;
    }
  }

  await fs.promises.mkdir(resultsDir, { recursive: true });
  const target = resultsFile(resultsDir, job.id);
  const temporary = `${target}.${randomUUID()}.tmp`;
  await pipeline(
    rows(),
    format<string[], string[]>({ quoteColumns: true }),
    fs.createWriteStream(temporary),
  );
  await fs.promises.rename(temporary, target);
  return target;
}
