import t from 'tap';
import { startOrigin } from '../helpers/origin.js';
import {
  type AcceptedBody,
  downloadCsv,
  type RejectedBody,
  sleep,
  startService,
  submit,
  type TapTest,
  timeout,
  upload,
  waitForStatus,
} from '../helpers/service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEADER = 'Serial Number,Product Name,Input Image Urls';

const origin = await startOrigin();
t.teardown(() => origin.close());

// Rejections only: this service must end the file without a single job recorded.
const strict = await startService({ MAX_CSV_BYTES: '2048', MAX_ROWS: '5', MAX_URLS_PER_ROW: '3' });
t.teardown(() => strict.close());

// Same limits, for uploads that must be accepted.
const accepting = await startService({
  MAX_CSV_BYTES: '2048',
  MAX_ROWS: '5',
  MAX_URLS_PER_ROW: '3',
});
t.teardown(() => accepting.close());

let pathCounter = 0;
/** A URL on the origin no other case uses, so its hit count says whether anything fetched it. */
const uniqueUrl = (): string => `${origin.url}/rejected/${++pathCounter}.jpg`;
const rejectedUrls: string[] = [];
const fresh = (): string => {
  const url = uniqueUrl();
  rejectedUrls.push(url);
  return url;
};

/** Asserts the store holds no job at all: none unfinished, none half-received. */
async function assertNothingQueued(tt: TapTest, urls: string[]): Promise<void> {
  await sleep(300);
  for (const url of urls) {
    tt.equal(origin.hits(new URL(url).pathname), 0, `nothing fetched ${url}`);
  }
  tt.same(await strict.services.store.listUnfinishedJobs(), [], 'no unfinished job recorded');
  tt.same(
    await strict.services.store.listAbandonedJobs(new Date(Date.now() + 3_600_000)),
    [],
    'no half-received job left behind',
  );
}

async function expect400(
  tt: TapTest,
  csv: string | Buffer,
  fields: Record<string, string> = {},
): Promise<RejectedBody> {
  const res = await upload(strict.url, csv, fields);
  tt.equal(res.status, 400, `400 (body: ${JSON.stringify(res.body)})`);
  const body = res.body as RejectedBody;
  tt.type(body.error, 'string');
  tt.ok(body.error.length > 0, 'error is not empty');
  tt.ok(Array.isArray(body.details) && body.details.length > 0, 'details are listed');
  for (const detail of body.details ?? []) {
    tt.ok('row' in detail && 'column' in detail && 'message' in detail, 'detail shape');
    tt.type(detail.message, 'string');
  }
  return body;
}

t.test('no file', async (t) => {
  t.test('multipart form without a file field', async (t) => {
    const form = new FormData();
    form.append('quality', '80');
    const res = await fetch(`${strict.url}/upload`, {
      method: 'POST',
      body: form,
      signal: timeout(),
    });
    const body = (await res.json()) as RejectedBody;
    t.equal(res.status, 400);
    t.match(body.error, /file/i);
    t.match(body.details, [{ row: null, column: 'file' }]);
  });

  t.test('non-multipart JSON POST', async (t) => {
    const res = await fetch(`${strict.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ file: `${HEADER}\n1,a,${fresh()}\n` }),
      signal: timeout(),
    });
    const body = (await res.json()) as RejectedBody;
    t.equal(res.status, 400);
    t.match(body.error, /multipart/i);
    t.match(body.details, [{ row: null, column: 'file', message: /multipart/ }]);
  });
});

t.test('empty and header-only CSVs', async (t) => {
  const empty = await expect400(t, '');
  t.match(empty.details, [{ row: null, message: /empty/i }]);

  const blank = await expect400(t, '\uFEFF\r\n\r\n\n');
  t.match(blank.details, [{ message: /empty/i }], 'a BOM and blank lines are still empty');

  const headerOnly = await expect400(t, `${HEADER}\r\n`);
  t.match(headerOnly.details, [{ row: null, message: /no product rows/i }]);

  const headerAndBlanks = await expect400(t, `${HEADER}\n\n,,\n\n`);
  t.match(headerAndBlanks.details, [{ message: /no product rows/i }], 'empty rows do not count');
});

t.test('missing required columns', async (t) => {
  const url = fresh();
  const one = await expect400(t, `Serial Number,Title,Input Image Urls\n1,Shoe,${url}\n`);
  t.equal(one.details.length, 1, 'only the missing column is reported');
  t.match(one.details[0], { row: 0, column: 'Product Name', message: /Product Name/ });

  const two = await expect400(t, `id,Product Name,pictures\n1,Shoe,${fresh()}\n`);
  t.same(
    two.details.map((d) => [d.row, d.column]),
    [
      [0, 'Serial Number'],
      [0, 'Input Image Urls'],
    ],
  );
  t.match(two.details[0]?.message, /"id"/, 'the message quotes the header that was found');
});

t.test('bad rows name their row and column', async (t) => {
  t.test('a row with no URL', async (t) => {
    const body = await expect400(t, `${HEADER}\n1,Shoe,${fresh()}\n2,Hat,\n3,Bag,"  ,  "\n`);
    t.same(
      body.details.map((d) => [d.row, d.column]),
      [
        [2, 'Input Image Urls'],
        [3, 'Input Image Urls'],
      ],
    );
    t.match(body.details[0]?.message, /no image URL/i);
  });

  t.test('invalid URL and non-http schemes', async (t) => {
    const csv = [
      'S. No.,product name,INPUT IMAGE URLS',
      `1,Ok,${fresh()}`,
      '2,Relative,/img/photo1.jpg',
      '3,Ftp,ftp://127.0.0.1/img/photo1.jpg',
      '4,Js,javascript:alert(1)',
      '5,File,file:///etc/passwd',
    ].join('\n');
    const body = await expect400(t, csv);
    t.same(
      body.details.map((d) => [d.row, d.column]),
      [
        [2, 'INPUT IMAGE URLS'],
        [3, 'INPUT IMAGE URLS'],
        [4, 'INPUT IMAGE URLS'],
        [5, 'INPUT IMAGE URLS'],
      ],
      'every bad row is reported in one answer, with the column as the header spells it',
    );
    t.match(body.details[0]?.message, /not a valid URL/);
    t.match(body.details[1]?.message, /ftp:/);
    t.match(body.details[2]?.message, /javascript:/);
    t.match(body.details[3]?.message, /file:/);
    t.match(body.error, /4 problems/);
  });

  t.test('one bad URL among good ones in a cell', async (t) => {
    const body = await expect400(
      t,
      `${HEADER}\n1,Shoe,"${fresh()}, ftp://127.0.0.1/x.jpg, ${fresh()}"\n`,
    );
    t.match(body.details, [{ row: 1, column: 'Input Image Urls', message: /ftp:/ }]);
  });

  t.test('too many cells in a row', async (t) => {
    const body = await expect400(t, `${HEADER}\n1,Shoe,${fresh()}\n2,Hat,${fresh()},${fresh()}\n`);
    t.match(body.details, [{ row: 2, message: /4 cells.*3 columns/ }]);
  });

  t.test('a later bad row rejects rows already read', async (t) => {
    const rows = [`${HEADER}`, `1,a,${fresh()}`, `2,b,${fresh()}`, `3,c,${fresh()}`, '4,d,nope'];
    const body = await expect400(t, `${rows.join('\n')}\n`);
    t.match(body.details, [{ row: 4 }]);
  });
});

t.test('bad option values', async (t) => {
  const csv = (): string => `${HEADER}\n1,Shoe,${fresh()}\n`;
  const cases: Array<[Record<string, string>, string]> = [
    [{ quality: '0' }, 'quality'],
    [{ quality: '101' }, 'quality'],
    [{ quality: 'abc' }, 'quality'],
    [{ quality: '50.5' }, 'quality'],
    [{ format: 'gif' }, 'format'],
    [{ format: 'jpeg2000' }, 'format'],
    [{ max_width: '0' }, 'max_width'],
    [{ max_width: '-10' }, 'max_width'],
    [{ max_width: 'wide' }, 'max_width'],
    [{ max_width: '100000' }, 'max_width'],
    [{ max_height: '1.5' }, 'max_height'],
    [{ webhook_url: 'not a url' }, 'webhook_url'],
    [{ webhook_url: 'ftp://127.0.0.1/hook' }, 'webhook_url'],
    [{ webhookUrl: 'javascript:alert(1)' }, 'webhookUrl'],
  ];
  for (const [fields, column] of cases) {
    const body = await expect400(t, csv(), fields);
    t.match(
      body.details,
      [{ row: null, column, message: String }],
      `${JSON.stringify(fields)} is reported against ${column}`,
    );
    t.match(body.error, /option/i);
  }

  const several = await expect400(t, csv(), { quality: '0', format: 'bmp', max_height: 'x' });
  t.same(
    several.details.map((d) => d.column).sort(),
    ['format', 'max_height', 'quality'],
    'every bad option is reported at once',
  );

  // Fields sent after the file are read too.
  const form = new FormData();
  form.append('file', new Blob([csv()], { type: 'text/csv' }), 'products.csv');
  form.append('quality', '500');
  const res = await fetch(`${strict.url}/upload`, {
    method: 'POST',
    body: form,
    signal: timeout(),
  });
  t.equal(res.status, 400, 'an option after the file is still checked');
  t.match(((await res.json()) as RejectedBody).details, [{ column: 'quality' }]);
});

t.test('413 for a CSV over MAX_CSV_BYTES or MAX_ROWS', async (t) => {
  t.test('over MAX_CSV_BYTES, cut inside a passthrough column', async (t) => {
    // The limit falls inside the last (unquoted, optional) column of row 2, so the bytes
    // before the cut still parse as valid rows: only the size limit can reject this.
    const rows = [`${HEADER},Notes`];
    for (let i = 1; i <= 3; i++) rows.push(`${i},p${i},${fresh()},${'n'.repeat(1000)}`);
    const res = await upload(strict.url, `${rows.join('\n')}\n`);
    t.equal(res.status, 413, `413 (body: ${JSON.stringify(res.body)})`);
    t.match(res.body, { error: String });
  });

  t.test('over MAX_CSV_BYTES, cut inside a required column', async (t) => {
    const rows = [HEADER];
    // ~3 KB in 3 rows (MAX_ROWS is 5): the 2048-byte limit cuts row 2 before its URL.
    for (let i = 1; i <= 3; i++) rows.push(`${i},${'x'.repeat(1000)},${fresh()}`);
    const res = await upload(strict.url, `${rows.join('\n')}\n`);
    t.equal(res.status, 413, `413 (body: ${JSON.stringify(res.body)})`);
    t.notMatch(res.body, { details: [{ row: 2 }] }, 'no error about the row the limit cut');
    t.match(res.body, { error: String });
  });

  t.test('over MAX_ROWS', async (t) => {
    const many = [HEADER];
    for (let i = 1; i <= 6; i++) many.push(`${i},p${i},${fresh()}`);
    const res = await upload(strict.url, `${many.join('\n')}\n`);
    t.equal(res.status, 413);
    t.match(res.body, { error: /MAX_ROWS/ });
  });
});

t.test('a rejection mid-stream closes the connection, so shutdown need not wait', async (t) => {
  // Most of the body is still unread when MAX_ROWS is hit. Kept alive, that connection
  // held app.close (and SIGTERM) for the ~70 s keep-alive timeout.
  const service = await startService({ MAX_ROWS: '5', MAX_CSV_BYTES: String(4 << 20) });
  t.teardown(() => service.close());
  const rows = [HEADER];
  for (let i = 1; i <= 20_000; i++) rows.push(`${i},p${i},${origin.url}/never/${i}.jpg`);
  const res = await upload(service.url, `${rows.join('\n')}\n`);
  t.equal(res.status, 413);
  t.equal(res.headers.get('connection'), 'close');
  const closed = await Promise.race([
    service.close().then(() => 'closed'),
    sleep(30_000).then(() => 'still waiting after 30 s'),
  ]);
  t.equal(closed, 'closed');
});

t.test('malformed or unexpected multipart bodies', async (t) => {
  /** Status 0 when no answer came within the helpers' request timeout. */
  const post = async (contentType: string, body: string) => {
    try {
      const res = await fetch(`${strict.url}/upload`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
        signal: timeout(),
      });
      return { status: res.status, body: (await res.json()) as { error: string } };
    } catch (err) {
      return { status: 0, body: { error: String(err) } };
    }
  };
  const noBoundary = await post('multipart/form-data', `${HEADER}\n1,a,${fresh()}\n`);
  t.equal(noBoundary.status, 400, `no boundary is a client error (${noBoundary.status})`);
  t.notMatch(noBoundary.body.error, /internal/i, 'not reported as a server fault');

  const garbage = await post('multipart/form-data; boundary=XYZ', 'this is not multipart');
  t.equal(garbage.status, 400, `a body without parts is a client error (${garbage.status})`);

  const cut = await post(
    'multipart/form-data; boundary=XYZ',
    `--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n${HEADER}\n1,a,${fresh()}\n`,
  );
  t.equal(cut.status, 400, `a body cut off inside the file part is answered (${cut.status})`);
  t.match(cut.body, { error: String });

  const form = new FormData();
  form.append('file', new Blob([`${HEADER}\n1,a,${fresh()}\n`]), 'a.csv');
  form.append('other', new Blob([`${HEADER}\n1,a,${fresh()}\n`]), 'b.csv');
  const two = await fetch(`${strict.url}/upload`, {
    method: 'POST',
    body: form,
    signal: timeout(),
  });
  t.ok(two.status >= 400 && two.status < 500, `a second file part is refused (${two.status})`);
  t.match(await two.json(), { error: String });
});

t.test('more URLs in a row than MAX_URLS_PER_ROW', async (t) => {
  const urls = [fresh(), fresh(), fresh(), fresh()].join(', ');
  const body = await expect400(t, `${HEADER}\n1,a,"${urls}"\n`);
  t.match(body.details, [{ row: 1, column: 'Input Image Urls', message: /MAX_URLS_PER_ROW/ }]);
});

t.test('a rejected CSV queues nothing', async (t) => {
  t.ok(rejectedUrls.length > 20, 'the cases above used their own URLs');
  await assertNothingQueued(t, rejectedUrls);
  const res = await fetch(`${strict.url}/status/00000000-0000-4000-8000-000000000000`, {
    signal: timeout(),
  });
  t.equal(res.status, 404);
  await res.arrayBuffer();
});

t.test('accepted uploads', async (t) => {
  t.test('202 body and header aliases', async (t) => {
    const photo = `${origin.url}/img/photo1.jpg`;
    const csv = [
      'S.No,name,Image URLs,Notes',
      `7,Shoe,"${photo}, ${origin.url}/img/photo2.jpg",first`,
      `8,Hat,${photo},"second, with a comma"`,
    ].join('\n');
    const res = await upload(accepting.url, csv);
    t.equal(res.status, 202);
    const body = res.body as AcceptedBody;
    t.match(body.request_id, UUID);
    t.same(body, {
      request_id: body.request_id,
      status: 'PENDING',
      products: 2,
      images: 2,
      status_url: `${accepting.url}/status/${body.request_id}`,
      download_url: `${accepting.url}/download/${body.request_id}`,
    });
    const status = await waitForStatus(accepting.url, body.request_id);
    t.equal(status.progress.images_processed, 2);
  });

  t.test('a BOM before a quoted header', async (t) => {
    const csv = `\uFEFF"Serial Number","Product Name","Input Image Urls"\r\n"1","a","${origin.url}/img/pic.webp"\r\n`;
    const body = await submit(accepting.url, csv);
    await waitForStatus(accepting.url, body.request_id);
    const { rows } = await downloadCsv(accepting.url, body.request_id);
    t.same(rows[0], [
      'Serial Number',
      'Product Name',
      'Input Image Urls',
      'Output Image Urls',
      'Errors',
    ]);
  });

  t.test('exactly MAX_ROWS rows is accepted', async (t) => {
    const rows = [HEADER];
    for (let i = 1; i <= 5; i++) rows.push(`${i},p${i},${origin.url}/img/pic.webp`);
    const body = await submit(accepting.url, `${rows.join('\r\n')}\r\n`);
    t.equal(body.products, 5);
    t.equal(body.images, 1, 'one distinct URL');
    await waitForStatus(accepting.url, body.request_id);
  });

  t.test('a comma inside a URL does not split it', async (t) => {
    const body = await submit(
      accepting.url,
      `${HEADER}\n1,a,"${origin.url}/img/photo3.jpg?v=1,2"\n`,
    );
    t.equal(body.images, 1);
    const status = await waitForStatus(accepting.url, body.request_id);
    t.equal(status.progress.images_processed, 1);
  });

  t.test('options in range are accepted', async (t) => {
    const body = await submit(accepting.url, `${HEADER}\n1,a,${origin.url}/img/pic.webp\n`, {
      quality: '1',
      format: 'JPG',
      max_width: '16384',
      max_height: '1',
      webhookUrl: '',
    });
    const status = await waitForStatus(accepting.url, body.request_id);
    t.equal(status.webhook, null, 'an empty webhookUrl means no webhook');
    t.equal(status.progress.images_processed, 1);
  });
});
