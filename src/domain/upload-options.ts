import { OUTPUT_FORMATS, type OutputFormat } from '../config.js';
import type { TransformOptions } from '../store/job-store.js';
import type { RowError } from './csv-input.js';

export interface UploadOptions extends TransformOptions {
  webhookUrl: string | null;
}

export const DEFAULT_QUALITY = 50;
export const MAX_DIMENSION = 16_384;
const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * Reads the upload form's option fields. Each problem is reported against the field that
 * has it, in the same shape as a CSV row problem (with `row` null).
 */
export function parseUploadOptions(
  fields: Record<string, string>,
): { options: UploadOptions } | { errors: RowError[] } {
  const errors: RowError[] = [];
  const fail = (column: string, message: string) => errors.push({ row: null, column, message });
  const value = (name: string) => {
    const raw = fields[name]?.trim();
    return raw === undefined || raw === '' ? undefined : raw;
  };

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

  if (errors.length > 0) return { errors };
  return { options: { quality, format, maxWidth, maxHeight, webhookUrl } };
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
