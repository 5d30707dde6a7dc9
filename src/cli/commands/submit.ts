import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Accepted, ApiClient, JobStatus, Rejection } from '../api.js';
import { type Context, println } from '../context.js';
import { connect } from '../connection.js';
import {
  CliError,
  ExitCode,
  errorText,
  HttpError,
  UnreachableError,
  usageError,
} from '../errors.js';
import { formatRejection, formatSaving } from '../format.js';
import { HELP, PROGRAM } from '../help.js';
import { CONNECTION_OPTIONS, HELP_OPTION, parse } from '../options.js';
import { formatDuration } from '../progress.js';
import { ProgressReporter } from '../progress-reporter.js';

const SUBMIT_OPTIONS = {
  ...HELP_OPTION,
  ...CONNECTION_OPTIONS,
  quality: { type: 'string' },
  format: { type: 'string' },
  'max-width': { type: 'string' },
  'max-height': { type: 'string' },
  webhook: { type: 'string' },
  wait: { type: 'boolean' },
  out: { type: 'string' },
} as const;

/** Command-line options and the upload form fields they fill; the service checks the values. */
const FORM_FIELDS = {
  quality: 'quality',
  format: 'format',
  'max-width': 'max_width',
  'max-height': 'max_height',
  webhook: 'webhook_url',
} as const;

const optionForField = (field: string): string => {
  const option = Object.entries(FORM_FIELDS).find(([, name]) => name === field)?.[0];
  return option === undefined ? field : `--${option}`;
};

const POLL_MS = 500;
/** How long the service may stay out of reach while a job is followed before giving up. */
const UNREACHABLE_GIVE_UP_MS = 30_000;
const PRODUCTS_PAGE = 500;
const FAILURES_SHOWN = 5;

export async function submit(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, SUBMIT_OPTIONS, 'submit');
  if (values.help) {
    ctx.stdout.write(HELP.submit);
    return ExitCode.OK;
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) {
    throw usageError('submit takes one CSV file', 'submit');
  }
  if (values.out !== undefined && !values.wait) {
    throw usageError('--out is where --wait saves the results: add --wait', 'submit');
  }
  await checkReadable(file);
  const out = values.out ?? defaultResultsPath(file);
  // Checked before the upload, so that a typo does not leave a job whose results go nowhere.
  if (values.wait) await checkDirectory(path.dirname(out));
  const client = connect(values, ctx.env, 'submit');
  const fields: Record<string, string> = {};
  for (const [option, field] of Object.entries(FORM_FIELDS)) {
    const value = values[option as keyof typeof FORM_FIELDS];
    if (value !== undefined) fields[field] = value;
  }

  const started = Date.now();
  const accepted = await upload(client, file, fields);
  println(
    ctx.stdout,
    `Submitted ${file}: ${plural(accepted.products, 'product')}, ${plural(accepted.images, 'image')}`,
    `Request id: ${accepted.request_id}`,
  );
  if (!values.wait) {
    println(ctx.stdout, `Follow it with: ${PROGRAM} status ${accepted.request_id}`);
    return ExitCode.OK;
  }

  const reporter = new ProgressReporter(ctx.stderr);
  const final = await followUntilDone(client, accepted.request_id, reporter, ctx);
  if (final === null) return ExitCode.INTERRUPTED;
  const took = formatDuration((Date.now() - started) / 1000);
  const p = final.progress;
  if (final.status === 'FAILED') {
    throw new CliError(
      `the job FAILED after ${took}: the service could not finish it ` +
        `(${p.images_processed} of ${p.images_total} images had been processed)`,
      ExitCode.FAILED,
      [`Its log has the reason; '${PROGRAM} status ${final.request_id}' shows the job.`],
    );
  }

  await saveResults(client, final.request_id, out);
  const summary = await summarise(client, final.request_id);
  println(
    ctx.stdout,
    `COMPLETED in ${took}: ${plural(p.images_total, 'image')}, ` +
      `${p.images_processed} processed, ${p.images_failed} failed`,
    `Size: ${formatSaving(summary.bytesIn, summary.bytesOut)}`,
  );
  if (summary.failures.length > 0) {
    println(ctx.stdout, `Failed images (${p.images_failed}):`);
    for (const failure of summary.failures) {
      println(ctx.stdout, `  row ${failure.row}: ${failure.url}: ${failure.error}`);
    }
    if (p.images_failed > summary.failures.length) {
      const more = p.images_failed - summary.failures.length;
      println(ctx.stdout, `  … and ${more} more (the Errors column of the results CSV has all)`);
    }
  }
  println(ctx.stdout, `Results CSV: ${out}`);
  return p.images_failed > 0 ? ExitCode.IMAGES_FAILED : ExitCode.OK;
}

async function checkReadable(file: string): Promise<void> {
  try {
    if (!(await stat(file)).isFile()) throw usageError(`${file} is not a file`, 'submit');
    await access(file, constants.R_OK);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'submit');
  }
}

async function checkDirectory(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) {
    throw usageError(`cannot save the results in ${dir}: no such directory`, 'submit');
  }
}

async function saveResults(client: ApiClient, id: string, out: string): Promise<void> {
  try {
    await client.downloadResults(id, out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof HttpError || err instanceof UnreachableError || code === undefined) {
      throw err;
    }
    throw new CliError(`cannot save the results to ${out}: ${code}`, ExitCode.FAILED, [
      `They stay in the service: ${PROGRAM} status ${id} shows where.`,
    ]);
  }
}

/** `products.csv` → `products.results.csv` in the same directory. */
export function defaultResultsPath(input: string): string {
  const { dir, name, ext } = path.parse(input);
  const stem = ext.toLowerCase() === '.csv' ? name : `${name}${ext}`;
  return path.join(dir, `${stem}.results.csv`);
}

const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? '' : 's'}`;

async function upload(
  client: ApiClient,
  file: string,
  fields: Record<string, string>,
): Promise<Accepted> {
  try {
    return await client.upload(file, fields);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    if (err.status === 400) {
      const rejection = err.body as Rejection;
      const problems = Array.isArray(rejection.details)
        ? formatRejection(rejection, optionForField)
        : [];
      throw new CliError(
        `the service rejected ${file}: ${rejection.error}`,
        ExitCode.USAGE,
        problems.map((line) => `  ${line}`),
      );
    }
    if (err.status === 413) {
      throw new CliError(`the service rejected ${file}: ${errorText(err.body)}`, ExitCode.USAGE);
    }
    if (err.status === 503) {
      const wait = err.retryAfter === null ? '' : ` (try again in ${err.retryAfter} s)`;
      throw new CliError(`the service is overloaded and turned the upload away${wait}`);
    }
    throw err;
  }
}

/**
 * Polls the job until it completes or fails, showing progress, and rides out a service that
 * is briefly out of reach (a restart). Null when Ctrl-C stopped the wait: the job goes on.
 */
async function followUntilDone(
  client: ApiClient,
  id: string,
  reporter: ProgressReporter,
  ctx: Context,
): Promise<JobStatus | null> {
  const interrupt = new AbortController();
  const onInterrupt = () => interrupt.abort();
  process.once('SIGINT', onInterrupt);
  let unreachableSince: number | null = null;
  try {
    for (;;) {
      try {
        const status = await client.status(id, interrupt.signal);
        unreachableSince = null;
        reporter.update(status);
        if (status.status === 'COMPLETED' || status.status === 'FAILED') return status;
      } catch (err) {
        if (!(err instanceof UnreachableError) || interrupt.signal.aborted) throw err;
        if (unreachableSince === null) {
          unreachableSince = Date.now();
          reporter.note(
            `Lost the service (${err.reason}); retrying for up to ${formatDuration(UNREACHABLE_GIVE_UP_MS / 1000)}`,
          );
        } else if (Date.now() - unreachableSince > UNREACHABLE_GIVE_UP_MS) {
          throw err;
        }
      }
      await sleep(POLL_MS, undefined, { signal: interrupt.signal });
    }
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    reporter.end();
    println(
      ctx.stderr,
      `Stopped waiting; the job goes on. Follow it with: ${PROGRAM} status ${id}`,
    );
    return null;
  } finally {
    reporter.end();
    process.off('SIGINT', onInterrupt);
  }
}

interface Summary {
  bytesIn: number;
  bytesOut: number;
  /** The first few failed images, in row order. */
  failures: Array<{ row: number; url: string; error: string }>;
}

/** Sizes and failures over every distinct image of the job (a repeated URL counts once). */
async function summarise(client: ApiClient, id: string): Promise<Summary> {
  const summary: Summary = { bytesIn: 0, bytesOut: 0, failures: [] };
  const seen = new Set<string>();
  for (let offset = 0; ; offset += PRODUCTS_PAGE) {
    const page = await client.products(id, offset, PRODUCTS_PAGE);
    for (const product of page.products) {
      for (const image of product.images) {
        if (seen.has(image.url)) continue;
        seen.add(image.url);
        if (image.status === 'PROCESSED') {
          summary.bytesIn += image.bytes_in ?? 0;
          summary.bytesOut += image.bytes_out ?? 0;
        } else if (image.status === 'FAILED' && summary.failures.length < FAILURES_SHOWN) {
          summary.failures.push({ row: product.row, url: image.url, error: image.error ?? '' });
        }
      }
    }
    if (offset + PRODUCTS_PAGE >= page.total) return summary;
  }
}
