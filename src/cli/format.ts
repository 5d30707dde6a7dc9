import type { JobStatus, Rejection } from './api.js';
import { formatDuration } from './progress.js';

/** Decimal units, as file managers show sizes: `950 B`, `12.3 kB`, `4.5 MB`. */
export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `2.3 MB → 312.0 kB (2.0 MB saved, 86.6%)`; bytes of the images that were processed. */
export function formatSaving(bytesIn: number, bytesOut: number): string {
  const saved = bytesIn - bytesOut;
  const share = bytesIn === 0 ? 0 : (saved / bytesIn) * 100;
  const verb = saved >= 0 ? 'saved' : 'added';
  return `${formatBytes(bytesIn)} → ${formatBytes(bytesOut)} (${formatBytes(Math.abs(saved))} ${verb}, ${Math.abs(share).toFixed(1)}%)`;
}

/**
 * One line per problem of a rejected upload: `row 2, column "Input Image Urls": …` for the
 * CSV, `<field>: …` for a form field (named through `fieldName`, e.g. as its command-line option).
 */
export function formatRejection(
  rejection: Rejection,
  fieldName: (field: string) => string = (field) => field,
): string[] {
  return rejection.details.map((problem) => {
    if (problem.row === null) {
      return problem.column === null
        ? problem.message
        : `${fieldName(problem.column)}: ${problem.message}`;
    }
    const column = problem.column === null ? '' : `, column "${problem.column}"`;
    return `row ${problem.row}${column}: ${problem.message}`;
  });
}

const LABEL_WIDTH = 11;

/** The status as labelled lines, for people; `status --json` gives the body itself. */
export function formatStatus(status: JobStatus): string[] {
  const p = status.progress;
  const lines: Array<[string, string]> = [
    ['Request', status.request_id],
    ['Status', status.status],
    ['Created', status.created_at],
  ];
  if (status.completed_at !== null) {
    const took = (Date.parse(status.completed_at) - Date.parse(status.created_at)) / 1000;
    lines.push(['Completed', `${status.completed_at} (after ${formatDuration(took)})`]);
  }
  lines.push(['Products', `${p.products_done} of ${p.products_total} done`]);
  lines.push([
    'Images',
    `${p.images_processed} processed, ${p.images_failed} failed, of ${p.images_total} (${p.percent.toFixed(1)}%)`,
  ]);
  if (status.download_url !== null) lines.push(['Results', status.download_url]);
  const webhook = status.webhook;
  if (webhook !== null) {
    const attempts = `${webhook.attempts} attempt${webhook.attempts === 1 ? '' : 's'}`;
    let text = `${webhook.status} (${attempts}): ${webhook.url}`;
    if (webhook.status !== 'DELIVERED' && webhook.last_error !== null) {
      text += `\n${''.padEnd(LABEL_WIDTH)}last error: ${webhook.last_error}`;
    }
    if (webhook.next_attempt_at !== null) {
      text += `\n${''.padEnd(LABEL_WIDTH)}next attempt at ${webhook.next_attempt_at}`;
    }
    lines.push(['Webhook', text]);
  }
  return lines.map(([label, value]) => `${label.padEnd(LABEL_WIDTH)}${value}`);
}
