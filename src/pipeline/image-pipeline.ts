import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { ImageOutcome, ImageRecord, TransformOptions } from '../store/job-store.js';
import { downloadImage } from './download.js';
import type { Metrics } from '../metrics/metrics.js';
import { BodyBuffers } from './body-buffers.js';
import { describeError, failureKind, ImageError } from './image-error.js';
import { checkImageType, type DecodableType } from './image-type.js';
import { withRetries } from './retry.js';
import { EXTENSIONS, transformImage } from './transform.js';
import { isUploadUrl, readUpload } from './upload-source.js';

export interface PipelineSettings {
  imagesDir: string;
  /** Where direct uploads are saved until their job is deleted. */
  uploadsDir: string;
  downloadTimeoutMs: number;
  downloadRetries: number;
  downloadRetryBaseMs: number;
  downloadRetryMaxMs: number;
  maxImageBytes: number;
  maxImagePixels: number;
  /** Images encoded at once. */
  concurrency: number;
  /** Images downloaded, or waiting for an encode, at once. */
  downloadConcurrency: number;
}

/** What the pipeline makes of an image; the worker adds how long it took. */
export type PipelineOutcome = Omit<ImageOutcome, 'processingMs'>;

/** Runs an image's encode (and the writing of its files) when the pool has room for it. */
export type EncodeSlot = <T>(encode: () => Promise<T>) => Promise<T>;

/**
 * Where an image's bytes go from their source to files: fetch (download, or read the
 * saved upload), check, decode and re-encode (with its thumbnails), store.
 */
export class ImagePipeline {
  private readonly bodies: BodyBuffers;

  constructor(
    private readonly settings: PipelineSettings,
    private readonly dispatcher: Dispatcher,
    private readonly metrics: Metrics,
  ) {
    // One per body that can be held at once: downloading or waiting, and encoding.
    this.bodies = new BodyBuffers(settings.downloadConcurrency + settings.concurrency);
  }

  /**
   * Never throws for a problem with the image: that becomes a FAILED outcome with a reason.
   * `cancel` cuts a download short at shutdown; the caller then discards the outcome. The
   * encode waits for `encodeSlot`; the download and the check do not.
   */
  async process(
    image: ImageRecord,
    options: TransformOptions,
    cancel: AbortSignal,
    encodeSlot: EncodeSlot,
  ): Promise<PipelineOutcome> {
    let bytesIn: number | null = null;
    try {
      const input = await this.fetch(image, cancel);
      bytesIn = input.length;
      try {
        const type = checkImageType(input);
        return await encodeSlot(() => {
          // Cut off while it waited for the slot: not worth an encode.
          cancel.throwIfAborted();
          return this.encode(image, input, type, options);
        });
      } finally {
        // The input's memory goes to another download only now that nothing reads it:
        // sharp reads it in place until the encode is over.
        this.bodies.give(input);
      }
    } catch (err) {
      // An image cut off by a shutdown has not failed: it is handed back and done again.
      if (!cancel.aborted) this.metrics.imageFailed(failureKind(err), bytesIn);
      return {
        status: 'FAILED',
        outputFile: null,
        thumbnails: {},
        bytesIn,
        bytesOut: null,
        metadata: null,
        error: describeError(err),
      };
    }
  }

  /** The encode and store stages: re-encoded with its thumbnails, written. */
  private async encode(
    image: ImageRecord,
    input: Buffer,
    type: DecodableType,
    options: TransformOptions,
  ): Promise<PipelineOutcome> {
    const bytesIn = input.length;
    const encodeStart = performance.now();
    const result = await transformImage(input, options, this.settings.maxImagePixels);
    this.metrics.encoded(secondsSince(encodeStart));
    const extension = EXTENSIONS[options.format];
    const thumbnails: Record<string, string> = {};
    for (const { name, bytes } of result.thumbnails) {
      thumbnails[name] = await this.store(`${image.outputName}.${name}.${extension}`, image, bytes);
    }
    const outputFile = await this.store(`${image.outputName}.${extension}`, image, result.output);
    this.metrics.imageProcessed(bytesIn, result.output.length);
    return {
      status: 'PROCESSED',
      outputFile,
      thumbnails,
      bytesIn,
      bytesOut: result.output.length,
      metadata: {
        width: result.width,
        height: result.height,
        format: options.format,
        input: { width: result.inputWidth, height: result.inputHeight, format: type },
        orientation: result.orientation,
        rotated: result.rotated,
      },
      error: null,
    };
  }

  /**
   * The fetch stage: a direct upload is read from disk, anything else downloaded. Only a
   * download's time is reported as one.
   */
  private async fetch(image: ImageRecord, cancel: AbortSignal): Promise<Buffer> {
    const { settings } = this;
    if (isUploadUrl(image.url)) {
      return readUpload(settings.uploadsDir, image.url, settings.maxImageBytes);
    }
    const downloadStart = performance.now();
    const input = await withRetries(
      () =>
        downloadImage(
          image.url,
          this.dispatcher,
          { timeoutMs: settings.downloadTimeoutMs, maxBytes: settings.maxImageBytes },
          this.bodies,
          cancel,
        ),
      {
        retries: settings.downloadRetries,
        baseMs: settings.downloadRetryBaseMs,
        maxMs: settings.downloadRetryMaxMs,
      },
      cancel,
    );
    this.metrics.downloaded(secondsSince(downloadStart));
    return input;
  }

  /**
   * Writes beside the final name and renames, so a crash never leaves a half-written file
   * under a name the results CSV points to, and re-processing replaces rather than adds.
   */
  private async store(name: string, image: ImageRecord, bytes: Buffer): Promise<string> {
    const relative = `${image.requestId}/${name}`;
    const target = path.join(this.settings.imagesDir, relative);
    try {
      const temporary = `${target}.${randomUUID()}.tmp`;
      try {
        await fs.writeFile(temporary, bytes);
      } catch (err) {
        // The job's directory is made by its first image rather than checked for by every
        // one: a threadpool round trip fewer per image.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.writeFile(temporary, bytes);
      }
      await fs.rename(temporary, target);
    } catch (err) {
      throw new ImageError('storage', describeError(err));
    }
    return relative;
  }
}

const secondsSince = (start: number): number => (performance.now() - start) / 1000;
