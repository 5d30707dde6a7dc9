import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { ImageOutcome, ImageRecord, TransformOptions } from '../store/job-store.js';
import { downloadImage } from './download.js';
import type { Metrics } from '../metrics/metrics.js';
import { describeError, failureKind, ImageError } from './image-error.js';
import { checkImageType } from './image-type.js';
import { withRetries } from './retry.js';
import { EXTENSIONS, transformImage } from './transform.js';

export interface PipelineSettings {
  imagesDir: string;
  downloadTimeoutMs: number;
  downloadRetries: number;
  downloadRetryBaseMs: number;
  downloadRetryMaxMs: number;
  maxImageBytes: number;
  maxImagePixels: number;
}

/** Where an image's bytes go from URL to file: fetch, check, decode and re-encode, store. */
export class ImagePipeline {
  constructor(
    private readonly settings: PipelineSettings,
    private readonly dispatcher: Dispatcher,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Never throws for a problem with the image: that becomes a FAILED outcome with a reason.
   * `cancel` cuts a download short at shutdown; the caller then discards the outcome.
   */
  async process(
    image: ImageRecord,
    options: TransformOptions,
    cancel?: AbortSignal,
  ): Promise<Omit<ImageOutcome, 'processingMs'>> {
    let bytesIn: number | null = null;
    try {
      const downloadStart = performance.now();
      const input = await withRetries(
        () =>
          downloadImage(
            image.url,
            this.dispatcher,
            { timeoutMs: this.settings.downloadTimeoutMs, maxBytes: this.settings.maxImageBytes },
            cancel,
          ),
        {
          retries: this.settings.downloadRetries,
          baseMs: this.settings.downloadRetryBaseMs,
          maxMs: this.settings.downloadRetryMaxMs,
        },
        cancel,
      );
      this.metrics.downloaded(secondsSince(downloadStart));
      bytesIn = input.length;
      checkImageType(input);
      const encodeStart = performance.now();
      const output = await transformImage(input, options, this.settings.maxImagePixels);
      this.metrics.encoded(secondsSince(encodeStart));
      const outputFile = await this.store(image, options, output).catch((err: unknown) => {
        throw new ImageError('storage', describeError(err));
      });
      this.metrics.imageProcessed(bytesIn, output.length);
      return { status: 'PROCESSED', outputFile, bytesIn, bytesOut: output.length, error: null };
    } catch (err) {
      // An image cut off by a shutdown has not failed: it is handed back and done again.
      if (!cancel?.aborted) this.metrics.imageFailed(failureKind(err), bytesIn);
      return {
        status: 'FAILED',
        outputFile: null,
        bytesIn,
        bytesOut: null,
        error: describeError(err),
      };
    }
  }

  /**
   * Writes beside the final name and renames, so a crash never leaves a half-written file
   * under a name the results CSV points to, and re-processing replaces rather than adds.
   */
  private async store(
    image: ImageRecord,
    options: TransformOptions,
    bytes: Buffer,
  ): Promise<string> {
    const relative = `${image.requestId}/${image.outputName}.${EXTENSIONS[options.format]}`;
    const target = path.join(this.settings.imagesDir, relative);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.tmp`;
    await fs.writeFile(temporary, bytes);
    await fs.rename(temporary, target);
    return relative;
  }
}

const secondsSince = (start: number): number => (performance.now() - start) / 1000;
