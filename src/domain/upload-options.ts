import { OUTPUT_FORMATS, type OutputFormat } from '../config.js';
import type { ThumbnailSpec, TransformOptions } from '../store/job-store.js';
import type { RowError } from './csv-input.js';

export interface UploadOptions extends TransformOptions {
  webhookUrl: string | null;
}

export const DEFAULT_QUALITY = 50;
export const MAX_DIMENSION = 16_384;
const MAX_WEBHOOK_URL_LENGTH = 2048;

/** Thumbnail sizes asked for by name: boxes the image is fit inside. */
export const SMALL_THUMBNAIL: ThumbnailSpec = { name: 'small', width: 128, height: 128 };
export const MEDIUM_THUMBNAIL: ThumbnailSpec = { name: 'medium', width: 512, height: 512 };
const NAMED_THUMBNAILS = new Map(
  [SMALL_THUMBNAIL, MEDIUM_THUMBNAIL].map((spec) => [spec.name, spec]),
);
/** Variants one upload may ask for: each is an encode (and a file) per image. */
export const MAX_THUMBNAILS = 4;
/**
 * Largest side of an explicit thumbnail box. The variants are cut from one decoded bitmap
 * at the largest box, held in memory for each image in flight, so the box is bounded.
 */
export const MAX_THUMBNAIL_DIMENSION = 2048;

type Fail = (column: string, message: string) => void;
type Value = (name: string) => string | undefined;

/** Reads the form fields of a request, reporting problems in the shape of CSV row problems. */
function fieldReader(fields: Record<string, string>): {
  errors: RowError[];
  fail: Fail;
  value: Value;
} {
  const errors: RowError[] = [];
  const fail: Fail = (column, message) => errors.push({ row: null, column, message });
  const value: Value = (name) => {
    const raw = fields[name]?.trim();
    return raw === undefined || raw === '' ? undefined : raw;
  };
  return { errors, fail, value };
}

/**
 * Reads the upload form's option fields. Each problem is reported against the field that
 * has it, in the same shape as a CSV row problem (with `row` null).
 */
export function parseUploadOptions(
  fields: Record<string, string>,
): { options: UploadOptions } | { errors: RowError[] } {
  const { errors, fail, value } = fieldReader(fields);
  const transform = readTransform(value, fail);

  const webhookField = value('webhook_url') !== undefined ? 'webhook_url' : 'webhookUrl';
  const webhookRaw = value(webhookField);
  let webhookUrl: string | null = null;
  if (webhookRaw !== undefined) {
    webhookUrl = checkWebhookUrl(webhookRaw);
    if (webhookUrl === null) {
      fail(
        webhookField,
        `must be an absolute http or https URL (got ${JSON.stringify(webhookRaw.slice(0, 200))})`,
      );
    }
  }

  const thumbnailsRaw = value('thumbnails');
  const thumbnails = thumbnailsRaw === undefined ? [] : parseThumbnails(thumbnailsRaw, fail);

  if (errors.length > 0) return { errors };
  return { options: { ...transform, thumbnails, webhookUrl } };
}

/**
 * Reads the option fields of a direct image upload: quality, format and the size box, as
 * for a CSV. Its thumbnails are always `small` and `medium`, and no webhook is called, so
 * those fields are refused rather than silently ignored.
 */
export function parseImageUploadOptions(
  fields: Record<string, string>,
): { options: TransformOptions } | { errors: RowError[] } {
  const { errors, fail, value } = fieldReader(fields);
  const transform = readTransform(value, fail);
  for (const name of ['webhook_url', 'webhookUrl']) {
    if (value(name) !== undefined) {
      fail(name, 'is not taken by POST /images: poll GET /images/{id} or send ?wait=true');
    }
  }
  if (value('thumbnails') !== undefined) {
    fail('thumbnails', 'is not taken by POST /images: small and medium are always made');
  }
  if (errors.length > 0) return { errors };
  return { options: { ...transform, thumbnails: [SMALL_THUMBNAIL, MEDIUM_THUMBNAIL] } };
}

function readTransform(value: Value, fail: Fail): Omit<TransformOptions, 'thumbnails'> {
  const integer = (name: string, min: number, max: number): number | null => {
    const raw = value(name);
    if (raw === undefined) return null;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      fail(name, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return null;
    }
    return Number(raw);
  };

  const quality = integer('quality', 1, 100) ?? DEFAULT_QUALITY;
  const maxWidth = integer('max_width', 1, MAX_DIMENSION);
  const maxHeight = integer('max_height', 1, MAX_DIMENSION);

  const formatRaw = value('format')?.toLowerCase() ?? 'jpeg';
  const format = (formatRaw === 'jpg' ? 'jpeg' : formatRaw) as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) {
    fail(
      'format',
      `must be one of ${OUTPUT_FORMATS.join(', ')} (got ${JSON.stringify(formatRaw)})`,
    );
  }

  return { quality, format, maxWidth, maxHeight };
}

/**
 * `small,medium`, explicit boxes such as `300x300`, or a mix: each size once, at most
 * MAX_THUMBNAILS of them, in the order given (the order of the results CSV's columns).
 */
function parseThumbnails(raw: string, fail: Fail): ThumbnailSpec[] {
  const entries = raw.split(',').map((part) => part.trim().toLowerCase());
  if (entries.length > MAX_THUMBNAILS) {
    fail('thumbnails', `takes at most ${MAX_THUMBNAILS} sizes (got ${entries.length})`);
    return [];
  }
  const specs: ThumbnailSpec[] = [];
  for (const entry of entries) {
    const spec = thumbnailSpec(entry, fail);
    if (spec === null) continue;
    if (specs.some((other) => other.name === spec.name)) {
      fail('thumbnails', `lists ${spec.name} twice`);
    } else {
      specs.push(spec);
    }
  }
  return specs;
}

function thumbnailSpec(entry: string, fail: Fail): ThumbnailSpec | null {
  const named = NAMED_THUMBNAILS.get(entry);
  if (named !== undefined) return named;
  const box = /^(\d{1,5})x(\d{1,5})$/.exec(entry);
  if (box === null) {
    const known = [...NAMED_THUMBNAILS.keys()].join(', ');
    const got = JSON.stringify(entry.slice(0, 100));
    fail('thumbnails', `sizes are ${known} or a box like 300x300 (got ${got})`);
    return null;
  }
  const width = Number(box[1]);
  const height = Number(box[2]);
  const fits = (side: number) => side >= 1 && side <= MAX_THUMBNAIL_DIMENSION;
  if (!fits(width) || !fits(height)) {
    fail('thumbnails', `box ${entry} must have sides from 1 to ${MAX_THUMBNAIL_DIMENSION} pixels`);
    return null;
  }
  return { name: `${width}x${height}`, width, height };
}

function checkWebhookUrl(raw: string): string | null {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return null;
  try {
    const url = new URL(raw);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '') {
      return url.href;
    }
  } catch {
    // An unparseable URL is reported by the caller like any other bad value.
  }
  return null;
}
