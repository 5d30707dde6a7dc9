import t from 'tap';
import type { RowError } from '../../src/domain/csv-input.js';
import {
  DEFAULT_QUALITY,
  MAX_DIMENSION,
  MAX_THUMBNAILS,
  parseImageUploadOptions,
  parseUploadOptions,
  type UploadOptions,
} from '../../src/domain/upload-options.js';

const DEFAULTS: UploadOptions = {
  quality: 50,
  format: 'jpeg',
  maxWidth: null,
  maxHeight: null,
  thumbnails: [],
  webhookUrl: null,
};

t.test('defaults: quality 50, jpeg, no resize, no webhook', async (t) => {
  t.equal(DEFAULT_QUALITY, 50);
  t.strictSame(parseUploadOptions({}), { options: DEFAULTS }, 'no fields');
  t.strictSame(
    parseUploadOptions({ quality: '', format: '  ', max_width: '', webhook_url: '' }),
    { options: DEFAULTS },
    'blank fields count as absent',
  );
  t.strictSame(
    parseUploadOptions({ unrelated: 'x', csv: 'ignored' }),
    { options: DEFAULTS },
    'unknown fields are ignored',
  );
});

t.test('valid values', async (t) => {
  const cases: Array<[string, Record<string, string>, Partial<UploadOptions>]> = [
    ['lowest quality', { quality: '1' }, { quality: 1 }],
    ['highest quality', { quality: '100' }, { quality: 100 }],
    ['quality with spaces', { quality: ' 75 ' }, { quality: 75 }],
    ['quality with a leading zero', { quality: '080' }, { quality: 80 }],
    ['jpeg', { format: 'jpeg' }, { format: 'jpeg' }],
    ['webp', { format: 'webp' }, { format: 'webp' }],
    ['avif', { format: 'avif' }, { format: 'avif' }],
    ['png', { format: 'png' }, { format: 'png' }],
    ['format in any case', { format: ' WebP ' }, { format: 'webp' }],
    ['jpg is jpeg', { format: 'jpg' }, { format: 'jpeg' }],
    ['JPG is jpeg', { format: 'JPG' }, { format: 'jpeg' }],
    ['smallest width', { max_width: '1' }, { maxWidth: 1 }],
    ['largest width', { max_width: String(MAX_DIMENSION) }, { maxWidth: 16_384 }],
    ['height', { max_height: '600' }, { maxHeight: 600 }],
    [
      'width and height',
      { max_width: '800', max_height: '600' },
      { maxWidth: 800, maxHeight: 600 },
    ],
    [
      'webhook_url',
      { webhook_url: 'https://hooks.test/done?job=1' },
      { webhookUrl: 'https://hooks.test/done?job=1' },
    ],
    [
      'webhookUrl alias',
      { webhookUrl: 'http://hooks.test/x' },
      { webhookUrl: 'http://hooks.test/x' },
    ],
    [
      'webhook_url wins over the alias',
      { webhook_url: 'https://a.test/1', webhookUrl: 'https://b.test/2' },
      { webhookUrl: 'https://a.test/1' },
    ],
    [
      'a blank webhook_url leaves the alias',
      { webhook_url: ' ', webhookUrl: 'https://b.test/2' },
      { webhookUrl: 'https://b.test/2' },
    ],
    [
      'webhook URL is canonical',
      { webhook_url: 'HTTPS://Hooks.Test' },
      { webhookUrl: 'https://hooks.test/' },
    ],
    [
      'everything at once',
      {
        quality: '90',
        format: 'avif',
        max_width: '10',
        max_height: '20',
        webhookUrl: 'https://h.test/',
      },
      { quality: 90, format: 'avif', maxWidth: 10, maxHeight: 20, webhookUrl: 'https://h.test/' },
    ],
  ];
  for (const [label, fields, expected] of cases) {
    t.strictSame(parseUploadOptions(fields), { options: { ...DEFAULTS, ...expected } }, label);
  }
});

t.test('invalid values are reported against their field', async (t) => {
  const cases: Array<[string, Record<string, string>, string, RegExp]> = [
    ['quality 0', { quality: '0' }, 'quality', /from 1 to 100 \(got "0"\)/],
    ['quality 101', { quality: '101' }, 'quality', /from 1 to 100 \(got "101"\)/],
    ['negative quality', { quality: '-5' }, 'quality', /whole number/],
    ['fractional quality', { quality: '50.5' }, 'quality', /whole number/],
    ['quality in exponent form', { quality: '1e2' }, 'quality', /whole number/],
    ['quality as a word', { quality: 'high' }, 'quality', /got "high"/],
    ['width 0', { max_width: '0' }, 'max_width', /from 1 to 16384 \(got "0"\)/],
    ['width over the limit', { max_width: '16385' }, 'max_width', /from 1 to 16384/],
    ['width with a unit', { max_width: '800px' }, 'max_width', /got "800px"/],
    ['height 0', { max_height: '0' }, 'max_height', /from 1 to 16384/],
    ['height as a word', { max_height: 'tall' }, 'max_height', /got "tall"/],
    ['gif', { format: 'gif' }, 'format', /must be one of jpeg, webp, avif, png \(got "gif"\)/],
    ['tiff', { format: 'TIFF' }, 'format', /got "tiff"/],
    ['ftp webhook', { webhook_url: 'ftp://hooks.test/x' }, 'webhook_url', /absolute http or https/],
    ['relative webhook', { webhook_url: '/hook' }, 'webhook_url', /got "\/hook"/],
    ['webhook without scheme', { webhook_url: 'hooks.test/x' }, 'webhook_url', /absolute/],
    ['javascript webhook', { webhook_url: 'javascript:alert(1)' }, 'webhook_url', /absolute/],
    [
      'overlong webhook',
      { webhook_url: `https://hooks.test/${'x'.repeat(2048)}` },
      'webhook_url',
      /absolute http or https URL/,
    ],
    ['invalid alias', { webhookUrl: 'not a url' }, 'webhookUrl', /got "not a url"/],
  ];
  for (const [label, fields, field, message] of cases) {
    const parsed = parseUploadOptions(fields);
    t.strictSame(
      'errors' in parsed ? parsed.errors.map(({ row, column }) => ({ row, column })) : parsed,
      [{ row: null, column: field }],
      `${label}: one error, on ${field}`,
    );
    t.match('errors' in parsed ? parsed.errors[0]?.message : '', message, `${label}: message`);
  }
});

t.test('an overlong webhook URL is quoted only in part', async (t) => {
  const parsed = parseUploadOptions({ webhook_url: `https://hooks.test/${'x'.repeat(5000)}` });
  const message = 'errors' in parsed ? (parsed.errors[0]?.message ?? '') : '';
  t.ok(message.length > 0 && message.length < 300, `message is ${message.length} characters`);
});

t.test('every problem is reported at once, in field order', async (t) => {
  const parsed = parseUploadOptions({
    quality: '0',
    max_width: 'x',
    max_height: '-1',
    format: 'bmp',
    webhook_url: 'nope',
  });
  const errors: RowError[] = 'errors' in parsed ? parsed.errors : [];
  t.strictSame(
    errors.map((e) => e.column),
    ['quality', 'max_width', 'max_height', 'format', 'webhook_url'],
  );
  t.ok(
    errors.every((e) => e.row === null),
    'form fields have no row',
  );
});

t.test('thumbnails: named sizes and explicit boxes, in the order given', async (t) => {
  const small = { name: 'small', width: 128, height: 128 };
  const medium = { name: 'medium', width: 512, height: 512 };
  const cases: Array<[string, string, UploadOptions['thumbnails']]> = [
    ['small', 'small', [small]],
    ['both, any case and spacing', ' Medium , SMALL ', [medium, small]],
    ['a box', '300x200', [{ name: '300x200', width: 300, height: 200 }]],
    ['a box with X and leading zeros', '0300X020', [{ name: '300x20', width: 300, height: 20 }]],
    ['the smallest box', '1x1', [{ name: '1x1', width: 1, height: 1 }]],
    ['the largest box', '2048x2048', [{ name: '2048x2048', width: 2048, height: 2048 }]],
    [
      'four at once',
      'small,medium,64x64,1000x10',
      [
        small,
        medium,
        { name: '64x64', width: 64, height: 64 },
        { name: '1000x10', width: 1000, height: 10 },
      ],
    ],
  ];
  for (const [label, raw, thumbnails] of cases) {
    t.strictSame(
      parseUploadOptions({ thumbnails: raw }),
      { options: { ...DEFAULTS, thumbnails } },
      label,
    );
  }
});

t.test('thumbnails: every problem is reported against the field', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['an unknown name', 'large', /small, medium or a box like 300x300 \(got "large"\)/],
    ['a prototype key', 'constructor', /got "constructor"/],
    ['an empty entry', 'small,,medium', /got ""/],
    ['a box side of 0', '0x100', /box 0x100 must have sides from 1 to 2048/],
    ['a box side over the limit', '2049x10', /from 1 to 2048/],
    ['a box with one side', '300', /got "300"/],
    ['a negative side', '-3x3', /got "-3x3"/],
    ['a name twice', 'small,Small', /lists small twice/],
    ['one box spelled twice', '300x300,0300x300', /lists 300x300 twice/],
    [
      'too many',
      'small,medium,1x1,2x2,3x3',
      new RegExp(`at most ${MAX_THUMBNAILS} sizes \\(got 5\\)`),
    ],
  ];
  for (const [label, raw, message] of cases) {
    const parsed = parseUploadOptions({ thumbnails: raw });
    const errors: RowError[] = 'errors' in parsed ? parsed.errors : [];
    t.strictSame(
      errors.map(({ row, column }) => ({ row, column })),
      [{ row: null, column: 'thumbnails' }],
      `${label}: one error, on thumbnails`,
    );
    t.match(errors[0]?.message, message, `${label}: message`);
  }
});

t.test('a direct image upload: always small and medium, no webhook', async (t) => {
  t.strictSame(parseImageUploadOptions({ quality: '80', format: 'webp', max_width: '100' }), {
    options: {
      quality: 80,
      format: 'webp',
      maxWidth: 100,
      maxHeight: null,
      thumbnails: [
        { name: 'small', width: 128, height: 128 },
        { name: 'medium', width: 512, height: 512 },
      ],
    },
  });
  const parsed = parseImageUploadOptions({
    quality: '0',
    webhook_url: 'https://hooks.test/x',
    webhookUrl: 'https://hooks.test/y',
    thumbnails: 'small',
  });
  const errors: RowError[] = 'errors' in parsed ? parsed.errors : [];
  t.strictSame(
    errors.map((e) => e.column),
    ['quality', 'webhook_url', 'webhookUrl', 'thumbnails'],
  );
  t.match(errors[1]?.message, /not taken by POST \/images/);
  t.match(errors[3]?.message, /small and medium are always made/);
});
