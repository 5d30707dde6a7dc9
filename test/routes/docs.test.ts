import diagnostics from 'node:diagnostics_channel';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { startService } from '../helpers/service.js';

const TOKEN = 'docs-token-0123456789abcdef';

interface Media {
  schema?: object;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}

/** A media type's examples: OpenAPI puts one in `example`, several in `examples`. */
const examplesOf = (media: Media): unknown[] =>
  media.example !== undefined
    ? [media.example]
    : Object.values(media.examples ?? {}).map((e) => e.value);

interface Operation {
  summary?: string;
  security?: unknown[];
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

// Every route the app registers, seen as it is registered: Fastify announces each new
// instance on this channel before any plugin or route is added to it.
const registered: Array<{ method: string; url: string }> = [];
diagnostics.subscribe('fastify.initialization', (message) => {
  const { fastify } = message as { fastify: FastifyInstance };
  fastify.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) registered.push({ method, url: route.url });
  });
});

const service = await startService({ API_TOKEN: TOKEN });
t.teardown(() => service.close());
const res = await fetch(`${service.url}/docs/json`);
const doc = (await res.json()) as Document;

t.test('/docs/json is a valid OpenAPI 3.1 document', async (t) => {
  t.equal(res.status, 200, 'served without a token');
  t.equal(doc.openapi, '3.1.0');
  const result = await new Validator().validate(doc);
  t.strictSame(result.errors ?? [], [], 'no validation errors');
  t.equal(result.valid, true);
});

t.test('every route is in the document, and nothing else', async (t) => {
  // OpenAPI writes `:id` as `{id}`; a wildcard route is documented by the paths under it.
  const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );
  const api = registered.filter(
    (r) => r.method !== 'HEAD' && r.url !== '/docs' && !r.url.startsWith('/docs/'),
  );
  t.ok(api.length >= 10, `${api.length} API routes were registered`);
  for (const route of api) {
    const path = route.url.replace(/:(\w+)/g, '{$1}');
    const found = path.endsWith('/*')
      ? documented.some((d) => d.startsWith(`${route.method} ${path.slice(0, -1)}{`))
      : documented.includes(`${route.method} ${path}`);
    t.ok(found, `${route.method} ${route.url} is documented`);
  }
  for (const entry of documented) {
    const [method, path] = entry.split(' ');
    const found = api.some((r) => {
      if (r.method !== method) return false;
      const pattern = r.url.replace(/:(\w+)/g, '{$1}');
      return pattern.endsWith('/*')
        ? path?.startsWith(pattern.slice(0, -1)) === true
        : pattern === path;
    });
    t.ok(found, `${entry} is a route`);
  }
});

t.test('every operation has a summary, described responses and examples', async (t) => {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const name = `${method.toUpperCase()} ${path}`;
      t.ok(op.summary, `${name} has a summary`);
      for (const [status, response] of Object.entries(op.responses)) {
        t.not(response.description, 'Default Response', `${name} ${status} is described`);
        for (const [type, media] of Object.entries(response.content ?? {})) {
          if (type.startsWith('image/')) continue;
          const inSchema = (media.schema as { examples?: unknown[] } | undefined)?.examples;
          const count = examplesOf(media).length + (inSchema?.length ?? 0);
          t.ok(count > 0, `${name} ${status} ${type} has an example`);
        }
      }
    }
  }
});

t.test('the JSON examples match their schemas', async (t) => {
  const ajv = new Ajv2020({ strict: false });
  addFormats.default(ajv);
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, response] of Object.entries(op.responses)) {
        const media = response.content?.['application/json'];
        if (media?.schema === undefined) continue;
        for (const example of examplesOf(media)) {
          const valid = ajv.validate(media.schema, example);
          t.ok(valid, `${method.toUpperCase()} ${path} ${status}: ${ajv.errorsText()}`);
        }
      }
    }
  }
});

t.test('errors are documented where they occur; the token as a security scheme', async (t) => {
  const responses = (method: string, path: string) =>
    Object.keys(doc.paths[path]?.[method]?.responses ?? {}).sort();
  t.strictSame(responses('post', '/upload'), ['202', '400', '401', '413', '503']);
  t.strictSame(responses('get', '/status/{request_id}'), ['200', '400', '401', '404']);
  t.strictSame(responses('get', '/download/{request_id}'), ['200', '400', '401', '404', '409']);
  t.strictSame(responses('get', '/ready'), ['200', '401', '503']);
  t.strictSame(responses('post', '/images'), [
    '200',
    '202',
    '400',
    '401',
    '404',
    '413',
    '415',
    '503',
  ]);
  t.strictSame(responses('get', '/images/{id}/thumbnails/{size}'), ['200', '400', '401', '404']);
  t.strictSame(responses('get', '/health'), ['200'], '/health needs no token');
  t.strictSame(doc.paths['/health']?.get?.security, []);
  t.match(doc, {
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearerAuth: [] }],
  });

  const upload = doc.paths['/upload']?.post as Operation & {
    requestBody: { content: Record<string, { schema: { properties: object } }> };
  };
  t.match(upload.requestBody.content['multipart/form-data']?.schema.properties, {
    file: { type: 'string', format: 'binary' },
    quality: { type: 'integer', minimum: 1, maximum: 100 },
    format: { enum: ['jpeg', 'webp', 'avif', 'png', 'jpg'] },
    max_width: { type: 'integer' },
    max_height: { type: 'integer' },
    webhook_url: { type: 'string' },
  });
  const images = doc.paths['/images']?.post as typeof upload;
  t.match(images.requestBody.content['multipart/form-data']?.schema.properties, {
    file: { type: 'string', format: 'binary' },
    quality: { type: 'integer', minimum: 1, maximum: 100 },
    format: { enum: ['jpeg', 'webp', 'avif', 'png', 'jpg'] },
    max_width: { type: 'integer' },
    max_height: { type: 'integer' },
  });
  t.match(upload.requestBody.content['multipart/form-data']?.schema.properties, {
    thumbnails: { type: 'string' },
  });
  const media = (path: string, status: string) =>
    Object.keys(doc.paths[path]?.get?.responses[status]?.content ?? {});
  t.strictSame(media('/download/{request_id}', '200'), ['text/csv']);
  t.strictSame(media('/download/{request_id}', '409'), ['application/json']);
  t.strictSame(media('/status/{request_id}/events', '200'), ['text/event-stream']);
  t.strictSame(media('/images/{id}/thumbnails/{size}', '404'), ['application/json']);
  t.strictSame(media('/images/{id}/thumbnails/{size}', '200'), [
    'image/jpeg',
    'image/webp',
    'image/avif',
    'image/png',
  ]);
  t.strictSame(media('/processed_images/{request_id}/{file}', '200'), [
    'image/jpeg',
    'image/webp',
    'image/avif',
    'image/png',
  ]);
});

t.test('Swagger UI is served from the service itself, without a token', async (t) => {
  const page = await fetch(`${service.url}/docs`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /text\/html/);
  const html = await page.text();
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
  t.ok(assets.length > 0, 'the page loads assets');
  for (const asset of assets) {
    t.notMatch(asset, /^(https?:)?\/\//, `${asset} is not loaded from another host`);
    const url = new URL(asset, `${service.url}/docs/`);
    const loaded = await fetch(url);
    t.equal(loaded.status, 200, `${url.pathname} is served`);
    await loaded.arrayBuffer();
  }
  const anonymous = await fetch(`${service.url}/requests`);
  t.equal(anonymous.status, 401, 'while the API itself needs the token');
});
