import { type Readable, Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
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

/** Wraps a failure of the caller's row sink, so it is not mistaken for a problem with the CSV. */
class SinkFailure extends Error {
  constructor(readonly original: unknown) {
    super('row sink failed');
  }
}

/**
 * Streams a product CSV, validating each row and handing valid rows to `onRows` in
 * batches. Once any error is found no more rows are handed on, but parsing continues so
 * that the client learns about every bad row in one round trip.
 *
 * Rows are checked in the parser's own transform step, as each one is parsed, so a later
 * parse error (an unbalanced quote, say) can neither hide the problems of the rows before
 * it nor be reported against the wrong row because some rows were still buffered.
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
  let headerSeen = false;
  const check = (record: string[]): ProductRow | null => {
    if (!headerSeen) {
      headerSeen = true;
      const header = matchHeader(record);
      if (Array.isArray(header)) header.forEach(fail);
      else result.header = header;
      return null;
    }
    if (result.header === null || record.every((cell) => cell.trim() === '')) return null;
    result.rows++;
    if (result.rows > limits.maxRows) {
      throw new CsvTooLarge(`CSV has more than ${limits.maxRows} rows (MAX_ROWS)`);
    }
    return checkRow(record, result.rows, result.header, limits, fail);
  };
  // fast-csv drops a row whose transform returns null; its types just don't say so.
  const parser = parse<string[], ProductRow>({ headers: false, ignoreEmpty: true }).transform(
    check as (record: string[]) => ProductRow,
  );
  const lines = oneLinePerChunk();
  input.on('error', (err) => parser.destroy(err));
  lines.on('error', (err) => parser.destroy(err));
  input.pipe(lines).pipe(parser);

  let batch: ProductRow[] = [];
  const flush = async () => {
    if (batch.length === 0 || result.header === null || result.errorCount > 0) return;
    const rows = batch;
    batch = [];
    try {
      await onRows(rows, result.header);
    } catch (err) {
      throw new SinkFailure(err);
    }
  };
  try {
    for await (const product of parser as AsyncIterable<ProductRow>) {
      if (result.errorCount > 0) continue;
      batch.push(product);
      if (batch.length >= batchSize) await flush();
    }
  } catch (err) {
    if (err instanceof SinkFailure) throw err.original;
    if (err instanceof CsvTooLarge) throw err;
    fail({
      row: result.rows + 1,
      column: null,
      message: `CSV could not be parsed: ${err instanceof Error ? err.message : String(err)}`,
    });
    return result;
  }
  if (!headerSeen) {
    fail({ row: null, column: null, message: 'CSV is empty' });
  } else if (result.header !== null && result.rows === 0) {
    fail({ row: null, column: null, message: 'CSV has a header but no product rows' });
  } else {
    await flush();
  }
  return result;
}

/**
 * Re-chunks text so each chunk ends at a line break. fast-csv drops the rows it parsed
 * from a chunk when it meets an error later in that same chunk; one line per chunk keeps
 * every row before a parse error checked, and the error's row number right.
 */
function oneLinePerChunk(): Transform {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const text = partial + decoder.write(chunk);
      let start = 0;
      for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
        this.push(text.slice(start, end + 1));
        start = end + 1;
      }
      partial = text.slice(start);
      done();
    },
    flush(done) {
      const rest = partial + decoder.end();
      if (rest !== '') this.push(rest);
      done();
    },
  });
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
