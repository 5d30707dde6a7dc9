import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { writeToString } from 'fast-csv';
import t from 'tap';
import {
  type CsvLimits,
  CsvTooLarge,
  checkImageUrl,
  type HeaderMap,
  matchHeader,
  type ProductRow,
  type ReadResult,
  readProductCsv,
  splitUrls,
} from '../../src/domain/csv-input.js';

const LIMITS: CsvLimits = { maxRows: 100, maxUrlsPerRow: 5, maxUrlLength: 200 };
const HEADER = 'Serial Number,Product Name,Input Image Urls';
const COLUMNS = ['Serial Number', 'Product Name', 'Input Image Urls'];
const STANDARD: HeaderMap = { columns: COLUMNS, serial: 0, name: 1, urls: 2 };

interface Read {
  result: ReadResult;
  batches: ProductRow[][];
  rows: ProductRow[];
  /** The header handed to each onRows call. */
  headers: HeaderMap[];
}

/** Runs readProductCsv over `chunks` exactly as a request body would arrive. */
async function read(
  chunks: string | Array<string | Buffer>,
  limits: CsvLimits = LIMITS,
  batchSize = 100,
): Promise<Read> {
  const batches: ProductRow[][] = [];
  const headers: HeaderMap[] = [];
  const input = Readable.from(typeof chunks === 'string' ? [chunks] : chunks);
  const result = await readProductCsv(input, limits, batchSize, async (rows, header) => {
    batches.push(rows);
    headers.push(header);
  });
  return { result, batches, rows: batches.flat(), headers };
}

const csv = (...lines: string[]): string => `${lines.join('\n')}\n`;
const url = (n: number): string => `https://img.test/${n}.jpg`;

t.test('matchHeader', async (t) => {
  const found: Array<[string, string[], Omit<HeaderMap, 'columns'>]> = [
    ['canonical names', COLUMNS, { serial: 0, name: 1, urls: 2 }],
    ['S. No.', ['S. No.', 'Product Name', 'Input Image Urls'], { serial: 0, name: 1, urls: 2 }],
    ['S.No', ['S.No', 'Product Name', 'Input Image Urls'], { serial: 0, name: 1, urls: 2 }],
    [
      'snake case and upper case',
      ['serial_number', 'PRODUCT NAME', 'input-image-urls'],
      { serial: 0, name: 1, urls: 2 },
    ],
    ['short aliases', ['Sr. No', 'Name', 'Image URL'], { serial: 0, name: 1, urls: 2 }],
    [
      'any order, extra columns',
      ['Input Image Urls', 'Notes', 'product name', 'S. No.'],
      { serial: 3, name: 2, urls: 0 },
    ],
    [
      'first of two matching columns',
      ['Serial Number', 'Name', 'Product Name', 'Images'],
      { serial: 0, name: 1, urls: 3 },
    ],
  ];
  for (const [label, header, indexes] of found) {
    t.strictSame(matchHeader(header), { columns: header, ...indexes }, label);
  }

  t.strictSame(
    matchHeader(['\uFEFFSerial Number', ' Product Name ', '\tInput Image Urls']),
    STANDARD,
    'a BOM on the first cell and surrounding spaces are dropped from the columns',
  );
  t.strictSame(
    matchHeader(['S.No', 'Product Name', 'Input Image Urls']),
    { columns: ['S.No', 'Product Name', 'Input Image Urls'], serial: 0, name: 1, urls: 2 },
    'the columns keep the client’s spelling',
  );

  const missing = matchHeader(['Serial Number', 'Notes']);
  if (!Array.isArray(missing)) throw new Error('expected errors');
  t.strictSame(
    missing.map(({ row, column }) => ({ row, column })),
    [
      { row: 0, column: 'Product Name' },
      { row: 0, column: 'Input Image Urls' },
    ],
    'each missing column is reported on row 0 under its canonical name',
  );
  t.match(missing[0]?.message, /missing required column "Product Name"/);
  t.match(missing[0]?.message, /header was: "Serial Number", "Notes"/, 'and shows the header');

  const none = matchHeader(['']);
  t.strictSame(Array.isArray(none) ? none.map((e) => e.column) : none, COLUMNS, 'all three');
});

t.test('splitUrls', async (t) => {
  const cases: Array<[string, string, string[]]> = [
    ['one URL', url(1), [url(1)]],
    ['comma-separated', `${url(1)},${url(2)}`, [url(1), url(2)]],
    ['spaces around commas', `  ${url(1)} ,  ${url(2)} , ${url(3)}  `, [url(1), url(2), url(3)]],
    [
      'line breaks',
      `${url(1)}\n${url(2)}\r\n${url(3)}\r${url(4)}`,
      [url(1), url(2), url(3), url(4)],
    ],
    ['comma and line break', `${url(1)},\n  ${url(2)}`, [url(1), url(2)]],
    ['trailing commas', `${url(1)}, ${url(2)},,`, [url(1), url(2)]],
    ['leading and doubled commas', `,,${url(1)},,${url(2)}`, [url(1), url(2)]],
    ['comma in a query string', 'https://a.test/x.jpg?size=1,2', ['https://a.test/x.jpg?size=1,2']],
    [
      'comma in a query string, then another URL',
      `https://a.test/x.jpg?size=1,2, ${url(2)}`,
      ['https://a.test/x.jpg?size=1,2', url(2)],
    ],
    ['comma in a path', 'https://a.test/a,b/x.jpg', ['https://a.test/a,b/x.jpg']],
    ['upper-case scheme', `${url(1)},HTTP://A.TEST/2.jpg`, [url(1), 'HTTP://A.TEST/2.jpg']],
    ['other schemes still split', `${url(1)},ftp://a.test/x`, [url(1), 'ftp://a.test/x']],
    ['empty', '', []],
    ['only separators and spaces', ' , ,\n , ', []],
    ['not a URL is left to checkImageUrl', 'not a url', ['not a url']],
    // Only a comma before a scheme separates, so a scheme-less second URL is glued on.
    [
      'a comma before a scheme-less part does not split',
      `${url(1)}, www.b.test/2.jpg`,
      [`${url(1)}, www.b.test/2.jpg`],
    ],
  ];
  for (const [label, cell, expected] of cases) {
    t.strictSame(splitUrls(cell), expected, label);
  }
});

t.test('checkImageUrl', async (t) => {
  const accepted: Array<[string, string]> = [
    ['http://a.test/x.jpg', 'http://a.test/x.jpg'],
    ['https://a.test/x.jpg?size=1,2', 'https://a.test/x.jpg?size=1,2'],
    ['HTTPS://A.Test/X.jpg', 'https://a.test/X.jpg'],
    ['https://a.test', 'https://a.test/'],
    ['https://a.test:8443/p q.png', 'https://a.test:8443/p%20q.png'],
  ];
  for (const [raw, canonical] of accepted) {
    t.strictSame(checkImageUrl(raw, 200), { url: canonical }, `accepts ${raw}`);
  }

  const rejected: Array<[string, string, RegExp]> = [
    ['ftp', 'ftp://a.test/x.jpg', /only http and https URLs can be fetched, not ftp:/],
    ['file', 'file:///etc/passwd', /not file:/],
    ['javascript', 'javascript:alert(1)', /not javascript:/],
    ['data', 'data:image/png;base64,AAAA', /not data:/],
    ['relative path', '/images/x.jpg', /^not a valid URL: "\/images\/x\.jpg"$/],
    ['no scheme', 'a.test/x.jpg', /^not a valid URL/],
    ['empty host', 'http://', /^not a valid URL: "http:\/\/"$/],
    ['empty host with a port', 'https://:443/x.jpg', /^not a valid URL/],
    ['empty', '', /^not a valid URL: ""$/],
  ];
  for (const [label, raw, reason] of rejected) {
    const checked = checkImageUrl(raw, 200);
    t.match(checked, { error: reason }, `rejects ${label}`);
    t.notOk('url' in checked, `${label}: no URL`);
  }

  const base = 'https://a.test/';
  const exactly = `${base}${'x'.repeat(50 - base.length)}`;
  t.strictSame(checkImageUrl(exactly, 50), { url: exactly }, 'a URL of exactly the limit is ok');
  t.strictSame(
    checkImageUrl(`${exactly}y`, 50),
    { error: 'URL is longer than 50 characters' },
    'one character more is overlong',
  );

  const garbage = `:${'z'.repeat(500)}`;
  const long = checkImageUrl(garbage, 1000);
  t.ok('error' in long && long.error.length < 250, 'an invalid URL is quoted only in part');
});

t.test('readProductCsv', async (t) => {
  t.test('reads rows with CRLF line endings', async (t) => {
    const { result, rows, headers } = await read(
      `${HEADER}\r\n1,Shirt,${url(1)}\r\n2,Shoe,"${url(2)}, ${url(3)}"\r\n`,
    );
    t.strictSame(result, { header: STANDARD, rows: 2, errors: [], errorCount: 0 });
    t.strictSame(rows, [
      { row: 1, serial: '1', name: 'Shirt', cells: ['1', 'Shirt', url(1)], urls: [url(1)] },
      {
        row: 2,
        serial: '2',
        name: 'Shoe',
        cells: ['2', 'Shoe', `${url(2)}, ${url(3)}`],
        urls: [url(2), url(3)],
      },
    ]);
    t.strictSame(headers, [STANDARD], 'onRows gets the header');
  });

  t.test('skips blank lines without counting them', async (t) => {
    const { result, rows } = await read(
      csv(HEADER, '', `1,a,${url(1)}`, '   ', ',,', '', `2,b,${url(2)}`),
    );
    t.equal(result.rows, 2);
    t.strictSame(
      rows.map((r) => [r.row, r.serial]),
      [
        [1, '1'],
        [2, '2'],
      ],
    );
    t.equal(result.errorCount, 0);
  });

  t.test('reads quoted fields with commas, line breaks and escaped quotes', async (t) => {
    const { result, rows } = await read(
      csv(HEADER, `" 7 ","Widget, ""Deluxe""\nEdition","${url(1)},\n${url(2)}"`),
    );
    t.equal(result.errorCount, 0);
    t.strictSame(rows, [
      {
        row: 1,
        serial: '7',
        name: 'Widget, "Deluxe"\nEdition',
        cells: [' 7 ', 'Widget, "Deluxe"\nEdition', `${url(1)},\n${url(2)}`],
        urls: [url(1), url(2)],
      },
    ]);
  });

  t.test('drops a BOM, in a string or split across byte chunks', async (t) => {
    const text = `\uFEFF${HEADER}\n1,Ünïcödé,${url(1)}\n`;
    const whole = await read(text);
    t.strictSame(whole.result.header, STANDARD);
    t.equal(whole.rows[0]?.name, 'Ünïcödé');

    const bytes = Buffer.from(text);
    const oneByteChunks = [...bytes].map((b) => Buffer.from([b]));
    const split = await read(oneByteChunks);
    t.strictSame(split.result, whole.result, 'same result byte by byte');
    t.strictSame(split.rows, whole.rows);
  });

  t.test('passes extra columns through and pads short rows', async (t) => {
    const { result, rows } = await read(
      csv(
        'Notes,S. No.,Product Name,Input Image Urls,Category',
        `"a, b",1,Shirt,${url(1)},Tops`,
        `,2,Shoe,${url(2)}`,
      ),
    );
    t.strictSame(result.header, {
      columns: ['Notes', 'S. No.', 'Product Name', 'Input Image Urls', 'Category'],
      serial: 1,
      name: 2,
      urls: 3,
    });
    t.strictSame(
      rows.map((r) => r.cells),
      [
        ['a, b', '1', 'Shirt', url(1), 'Tops'],
        ['', '2', 'Shoe', url(2), ''],
      ],
      'every row is as wide as the header',
    );
    t.strictSame(
      rows.map((r) => r.serial),
      ['1', '2'],
    );
  });

  t.test('rejects a row longer than the header, with its row number', async (t) => {
    const { result, batches } = await read(
      csv(HEADER, `1,a,${url(1)}`, `2,b,${url(2)},${url(3)}`, `3,c,${url(3)}`),
    );
    t.equal(result.errorCount, 1);
    t.strictSame(result.errors[0]?.row, 2);
    t.strictSame(result.errors[0]?.column, null);
    t.match(result.errors[0]?.message, /row has 4 cells but the header has 3 columns/);
    t.match(result.errors[0]?.message, /quote the "Input Image Urls" cell/);
    t.strictSame(batches, [], 'nothing is handed on');
    t.equal(result.rows, 3, 'the rest is still read');
  });

  t.test('a row without a URL is an error', async (t) => {
    const { result } = await read(csv(HEADER, '1,a,', `2,b,${url(2)}`, '3,c," , "'));
    t.strictSame(
      result.errors.map(({ row, column, message }) => [row, column, message]),
      [
        [1, 'Input Image Urls', 'no image URL'],
        [3, 'Input Image Urls', 'no image URL'],
      ],
    );
  });

  t.test('reports each bad URL against the URL column as the header spells it', async (t) => {
    const { result, batches } = await read(
      csv('sno,name,image_urls', `1,a,"ftp://x.test/1.jpg, ${url(1)}, javascript:alert(1)"`),
    );
    t.strictSame(
      result.errors.map(({ row, column }) => [row, column]),
      [
        [1, 'image_urls'],
        [1, 'image_urls'],
      ],
    );
    t.match(result.errors[0]?.message, /not ftp:/);
    t.match(result.errors[1]?.message, /not javascript:/);
    t.strictSame(batches, []);
  });

  t.test('header only', async (t) => {
    const { result, batches } = await read(`${HEADER}\r\n\r\n`);
    t.strictSame(result, {
      header: STANDARD,
      rows: 0,
      errors: [{ row: null, column: null, message: 'CSV has a header but no product rows' }],
      errorCount: 1,
    });
    t.strictSame(batches, []);
  });

  t.test('empty input', async (t) => {
    const inputs: Array<[string, string]> = [
      ['nothing', ''],
      ['blank lines', '\n\r\n\n'],
    ];
    for (const [label, text] of inputs) {
      const { result } = await read(text);
      t.strictSame(
        result,
        {
          header: null,
          rows: 0,
          errors: [{ row: null, column: null, message: 'CSV is empty' }],
          errorCount: 1,
        },
        label,
      );
    }
  });

  t.test('a header without the required columns', async (t) => {
    const { result, batches } = await read(csv('Serial Number,Title,Links', `1,a,${url(1)}`));
    t.equal(result.header, null);
    t.strictSame(
      result.errors.map(({ row, column }) => [row, column]),
      [
        [0, 'Product Name'],
        [0, 'Input Image Urls'],
      ],
    );
    t.equal(result.errorCount, 2);
    t.strictSame(batches, []);
  });

  // Five good rows, then a quote that is never closed on row 6.
  const unbalanced = csv(
    HEADER,
    ...[1, 2, 3, 4, 5].map((n) => `${n},p,${url(n)}`),
    `6,"unclosed,${url(6)}`,
  );

  t.test('an unbalanced quote is a parse error', async (t) => {
    const { result, batches } = await read(unbalanced);
    t.equal(result.errorCount, 1);
    t.equal(result.errors[0]?.column, null);
    t.match(result.errors[0]?.message, /^CSV could not be parsed: .*missing closing/);
    t.strictSame(batches, []);
  });

  t.test('a parse error names the row it is on, however the input is chunked', async (t) => {
    const perLine = await read(unbalanced.split(/(?<=\n)/));
    t.equal(perLine.result.errors[0]?.row, 6, 'one chunk per line');
    const perChar = await read(unbalanced.split(''));
    t.equal(perChar.result.errors[0]?.row, 6, 'one chunk per character');
    const whole = await read(unbalanced);
    t.equal(whole.result.errors[0]?.row, 6, 'one chunk');
  });

  t.test('more than MAX_ROWS rows is CsvTooLarge', async (t) => {
    const limits = { ...LIMITS, maxRows: 3 };
    const rows = [1, 2, 3, 4].map((n) => `${n},p,${url(n)}`);
    const ok = await read(csv(HEADER, ...rows.slice(0, 3)), limits);
    t.equal(ok.result.errorCount, 0, 'exactly MAX_ROWS is fine');
    t.equal(ok.rows.length, 3);

    const error = await read(csv(HEADER, ...rows), limits).then(
      () => null,
      (err: unknown) => err,
    );
    t.type(error, CsvTooLarge);
    t.match(error, { name: 'CsvTooLarge', message: /more than 3 rows \(MAX_ROWS\)/ });
  });

  t.test('more than MAX_URLS_PER_ROW URLs in a row is an error', async (t) => {
    const limits = { ...LIMITS, maxUrlsPerRow: 2 };
    const { result, rows } = await read(
      csv(HEADER, `1,a,"${url(1)},${url(2)}"`, `2,b,"${url(1)},${url(2)},${url(3)}"`),
      limits,
    );
    t.strictSame(
      result.errors.map(({ row, column }) => [row, column]),
      [[2, 'Input Image Urls']],
    );
    t.match(result.errors[0]?.message, /3 URLs in one row; at most 2 are allowed/);
    t.strictSame(rows, [], 'no rows once an error is seen, even valid ones before it');
  });

  t.test('hands rows on in batches of the configured size', async (t) => {
    const lines = [1, 2, 3, 4, 5].map((n) => `${n},p${n},${url(n)}`);
    const { result, batches, headers } = await read(csv(HEADER, ...lines), LIMITS, 2);
    t.strictSame(
      batches.map((b) => b.map((r) => r.row)),
      [[1, 2], [3, 4], [5]],
    );
    t.strictSame(headers, [STANDARD, STANDARD, STANDARD]);
    t.equal(result.rows, 5);

    const exact = await read(csv(HEADER, ...lines.slice(0, 4)), LIMITS, 2);
    t.strictSame(
      exact.batches.map((b) => b.length),
      [2, 2],
      'no empty last batch',
    );
  });

  t.test('hands on no batch once an error was seen', async (t) => {
    const lines = [1, 2, 3, 4, 5].map((n) => `${n},p${n},${n === 4 ? 'nope' : url(n)}`);
    const { result, batches } = await read(csv(HEADER, ...lines), LIMITS, 2);
    // Rows are checked as they are parsed, ahead of the batching, so how many rows before
    // the bad one were handed on depends on chunking; none at or after it ever is.
    t.ok(
      batches.flat().every((r) => r.row < 4),
      'no row from the bad one on is handed on',
    );
    t.equal(result.errorCount, 1);
    t.equal(result.errors[0]?.row, 4);
    t.equal(result.rows, 5, 'parsing went on to the end');
  });

  t.test('keeps the first 50 errors and counts them all', async (t) => {
    const lines = Array.from({ length: 60 }, (_, i) => `${i + 1},p,ftp://x.test/${i}`);
    const { result } = await read(csv(HEADER, ...lines));
    t.equal(result.errorCount, 60);
    t.equal(result.errors.length, 50);
    t.strictSame(
      result.errors.map((e) => e.row),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  });

  t.test('reads the same input however it is chunked', async (t) => {
    const text = csv(HEADER, `1,"a, ""b""\r\nc",${url(1)}`, `2,d,"${url(2)},\r\n${url(3)}"`);
    const whole = await read(text);
    const chars = await read(text.split(''));
    t.strictSame(chars.result, whole.result);
    t.strictSame(chars.rows, whole.rows);
    t.equal(whole.rows.length, 2);
  });

  t.test('a failure in onRows is not reported as a CSV problem', async (t) => {
    // onRows records rows in the store; if the store fails, the upload must fail as a
    // server error, not be answered 400 "CSV could not be parsed: <store error>".
    const storeDown = new Error('store down');
    const input = Readable.from([csv(HEADER, `1,a,${url(1)}`, `2,b,${url(2)}`)]);
    const outcome = await readProductCsv(input, LIMITS, 1, async () => {
      throw storeDown;
    }).then(
      (result) => result,
      (err: unknown) => err,
    );
    t.equal(outcome, storeDown, 'the onRows error is what readProductCsv rejects with');
  });
});

// Values a client might put in a CSV; URLs are generated canonical (as checkImageUrl
// returns them) so that the expected URLs are the generated ones.
const label = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);
const segment = fc.stringMatching(/^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,11}$/);
const imageUrl = fc
  .record({
    scheme: fc.constantFrom('http', 'https'),
    host: fc.array(label, { minLength: 1, maxLength: 3 }),
    path: fc.array(segment, { minLength: 0, maxLength: 3 }),
    // Commas in the query are the case splitUrls must not cut. Not a trailing one: a
    // comma at the end of a URL cannot be told from a separator, and is dropped.
    query: fc.option(fc.stringMatching(/^[a-z0-9=&,]{0,19}[a-z0-9=&]$/), { nil: undefined }),
  })
  .map(
    ({ scheme, host, path, query }) =>
      `${scheme}://${[...host, 'test'].join('.')}/${path.join('/')}${query === undefined ? '' : `?${query}`}`,
  )
  .filter((u) => new URL(u).href === u);
const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom(',', '"', '\n', '\r\n', '\r', ' ', "'"),
    fc.string({ minLength: 1, maxLength: 1 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 30,
});
const productRow = fc.record({
  serial: fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/),
  name: text,
  urls: fc.array(imageUrl, { minLength: 1, maxLength: 5 }),
  separator: fc.constantFrom(',', ', ', '\n', ' ,\r\n ', ',\n'),
  notes: text,
});

t.test('any product rows written by fast-csv are read back unchanged', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(productRow, { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 4 }),
      async (products, batchSize) => {
        const urlCells = products.map((p) => p.urls.join(p.separator));
        const written = await writeToString([
          [...COLUMNS, 'Notes'],
          ...products.map((p, i) => [p.serial, p.name, urlCells[i] ?? '', p.notes]),
        ]);
        const limits = { maxRows: 100, maxUrlsPerRow: 5, maxUrlLength: 2048 };
        const { result, rows } = await read(written, limits, batchSize);
        const expected = products.map((p, i) => ({
          row: i + 1,
          serial: p.serial,
          name: p.name.trim(),
          cells: [p.serial, p.name, urlCells[i] ?? '', p.notes],
          urls: p.urls,
        }));
        // Plain assertions so that fast-check sees a failure and shrinks it.
        assert.deepStrictEqual(result.errors, []);
        assert.deepStrictEqual(rows, expected);
      },
    ),
  );
  t.pass('100 generated CSVs read back unchanged');
});
