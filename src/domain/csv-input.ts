import type { Readable } from 'node:stream';
import { parse } from 'fast-csv';

export interface RowError {
  /** 1-based data row (the header is row 0); null for a problem with the file or a form field. */
  row: number | null;
  column: string | null;
  message: string;
}

export interface ProductRow {
  row: number;
  serial: string;
  name: string;
  cells: string[];
  urls: string[];
}

export interface CsvLimits {
  maxRows: number;
  maxUrlsPerRow: number;
  maxUrlLength: number;
}

/** Thrown when the input exceeds a size limit: answered with 413, not 400. */
export class CsvTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvTooLarge';
  }
}

const normalize = (header: string): string => header.toLowerCase().replace(/[^a-z0-9]/g, '');

const SERIAL = new Set(['serialnumber', 'serialno', 'serial', 'sno', 'srno', 'sn', 'no']);
const NAME = new Set(['productname', 'name', 'product']);
const URLS = new Set([
  'inputimageurls',
  'inputimageurl',
  'imageurls',
  'imageurl',
  'urls',
  'images',
]);

export const REQUIRED_COLUMNS = ['Serial Number', 'Product Name', 'Input Image Urls'] as const;

export interface HeaderMap {
  columns: string[];
  serial: number;
  name: number;
  urls: number;
}

/** Finds the three required columns however the header spells them. */
export function matchHeader(header: string[]): HeaderMap | RowError[] {
  const columns = header.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
  const keys = columns.map(normalize);
  const find = (aliases: Set<string>) => keys.findIndex((k) => aliases.has(k));
  const found = { serial: find(SERIAL), name: find(NAME), urls: find(URLS) };
  const missing = REQUIRED_COLUMNS.filter(
    (_, i) => [found.serial, found.name, found.urls][i] === -1,
  );
  if (missing.length > 0) {
    return missing.map((column) => ({
      row: 0,
      column,
      message: `missing required column "${column}" (header was: ${columns.map((c) => JSON.stringify(c)).join(', ')})`,
    }));
  }
  return { columns, ...found };
}

/**
 * Splits an image-URL cell into URLs. The separator is a comma (or a line break) that
 * starts a new URL, so a comma inside a URL's path or query does not cut it in two.
 */
export function splitUrls(cell: string): string[] {
  return cell
    .split(/[\r\n]+|,(?=\s*[a-z][a-z0-9+.-]*:)/i)
    .map((part) => part.replace(/^[\s,]+|[\s,]+$/g, ''))
    .filter((part) => part !== '');
}

/** The URL in canonical form, or why it cannot be fetched. */
export function checkImageUrl(raw: string, maxLength: number): { url: string } | { error: string } {
  if (raw.length > maxLength) return { error: `URL is longer than ${maxLength} characters` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { error: `not a valid URL: ${JSON.stringify(raw.slice(0, 200))}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { error: `only http and https URLs can be fetched, not ${url.protocol}` };
  }
  if (url.hostname === '') return { error: `URL has no host: ${JSON.stringify(raw)}` };
  return { url: url.href };
}

export interface ReadResult {
  header: HeaderMap | null;
  rows: number;
  errors: RowError[];
  /** How many errors there were in all; `errors` keeps only the first few. */
  errorCount: number;
}

const MAX_REPORTED_ERRORS = 50;

/**
 * Streams a product CSV, validating each row and handing valid rows to `onRows` in
 * batches. Once any error is found no more rows are handed on, but parsing continues so
 * that the client learns about every bad row in one round trip.
 */
export async function readProductCsv(
  input: Readable,
  limits: CsvLimits,
  batchSize: number,
  onRows: (rows: ProductRow[], header: HeaderMap) => Promise<void>,
): Promise<ReadResult> {
  const result: ReadResult = { header: null, rows: 0, errors: [], errorCount: 0 };
  const fail = (error: RowError) => {
    result.errorCount++;
    if (result.errors.length < MAX_REPORTED_ERRORS) result.errors.push(error);
  };
  let batch: ProductRow[] = [];
  const parser = parse<string[], string[]>({ headers: false, ignoreEmpty: true });
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);

  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (result.header === null) {
        const header = matchHeader(record);
        if (Array.isArray(header)) {
          for (const error of header) fail(error);
          input.resume();
          return result;
        }
        result.header = header;
        continue;
      }
      if (record.every((cell) => cell.trim() === '')) continue;
      result.rows++;
      if (result.rows > limits.maxRows) {
        throw new CsvTooLarge(`CSV has more than ${limits.maxRows} rows (MAX_ROWS)`);
      }
      const product = checkRow(record, result.rows, result.header, limits, fail);
      if (product && result.errorCount === 0) {
        batch.push(product);
        if (batch.length >= batchSize) {
          await onRows(batch, result.header);
          batch = [];
        }
      }
    }
  } catch (err) {
    if (err instanceof CsvTooLarge || isFileTooLarge(err)) throw err;
    fail({
      row: result.rows + 1,
      column: null,
      message: `CSV could not be parsed: ${err instanceof Error ? err.message : String(err)}`,
    });
    return result;
  }
  if (result.header === null) {
    fail({ row: null, column: null, message: 'CSV is empty' });
  } else if (result.rows === 0) {
    fail({ row: null, column: null, message: 'CSV has a header but no product rows' });
  } else if (batch.length > 0 && result.errorCount === 0) {
    await onRows(batch, result.header);
  }
  return result;
}

function checkRow(
  record: string[],
  row: number,
  header: HeaderMap,
  limits: CsvLimits,
  fail: (error: RowError) => void,
): ProductRow | null {
  const width = header.columns.length;
  const urlColumn = header.columns[header.urls] ?? 'Input Image Urls';
  if (record.length > width) {
    fail({
      row,
      column: null,
      message: `row has ${record.length} cells but the header has ${width} columns; quote the "${urlColumn}" cell when it lists several URLs`,
    });
    return null;
  }
  // Spreadsheets drop trailing empty cells; the results CSV keeps the header's width.
  const cells = Array.from({ length: width }, (_, i) => record[i] ?? '');
  const found = splitUrls(cells[header.urls] ?? '');
  if (found.length === 0) {
    fail({ row, column: urlColumn, message: 'no image URL' });
    return null;
  }
  if (found.length > limits.maxUrlsPerRow) {
    fail({
      row,
      column: urlColumn,
      message: `${found.length} URLs in one row; at most ${limits.maxUrlsPerRow} are allowed (MAX_URLS_PER_ROW)`,
    });
    return null;
  }
  const urls: string[] = [];
  let ok = true;
  for (const raw of found) {
    const checked = checkImageUrl(raw, limits.maxUrlLength);
    if ('error' in checked) {
      fail({ row, column: urlColumn, message: checked.error });
      ok = false;
    } else {
      urls.push(checked.url);
    }
  }
  if (!ok) return null;
  return {
    row,
    serial: (cells[header.serial] ?? '').trim(),
    name: (cells[header.name] ?? '').trim(),
    cells,
    urls,
  };
}

function isFileTooLarge(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    (err as { code: unknown }).code === 'FST_REQ_FILE_TOO_LARGE'
  );
}
