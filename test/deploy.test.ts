/**
 * The deployment files, checked against the project as far as can be done without a Docker
 * engine: what the Dockerfile copies exists and reaches the build context, its runtime stage
 * runs `npm start`'s entry as a non-root user with the service's directories as volumes, the
 * production dependencies cover every runtime import, and docker-compose.yml wires the
 * service to MongoDB and to volumes the image declares.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { startTunables } from './helpers/service-process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions by stage: continuation lines joined, comments dropped. */
function dockerfileStages(text: string): Instruction[][] {
  const stages: Instruction[][] = [[]];
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { keyword: keyword.toUpperCase(), args };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

/** `["a", "b"]` (exec form) or a shell string, as words. */
const words = (args: string): string[] =>
  args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);

/** Whether .dockerignore keeps `file` (repository-relative) out of the build context. */
function ignoredByDockerignore(file: string, patterns: string[]): boolean {
  return patterns.some((pattern) => {
    const regex = new RegExp(
      `^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`,
    );
    return regex.test(file);
  });
}

const dockerfile = read('Dockerfile');
const stages = dockerfileStages(dockerfile);
const [preamble = [], ...buildStages] = stages;
const runtime = buildStages.at(-1) ?? [];
const pkg = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  engines: { node: string };
};
const env = (stage: Instruction[]): Record<string, string> =>
  Object.fromEntries(
    stage
      .filter((i) => i.keyword === 'ENV')
      .flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])),
  );

t.test('two stages on the slim Debian image of the Node version the package needs', async (t) => {
  const arg = preamble.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='));
  const major = /(\d+)/.exec(pkg.engines.node)?.[1];
  t.equal(arg?.args, `NODE_IMAGE=node:${major}-bookworm-slim`);
  t.strictSame(
    buildStages.map((stage) => stage[0]?.args),
    ['${NODE_IMAGE} AS build', '${NODE_IMAGE} AS runtime'],
  );
});

t.test('every COPY source exists and reaches the build context', async (t) => {
  const ignore = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const copied = new Set<string>();
  for (const instruction of buildStages.flat().filter((i) => i.keyword === 'COPY')) {
    if (instruction.args.startsWith('--from=')) continue;
    const sources = words(instruction.args).slice(0, -1);
    for (const source of sources) {
      copied.add(source);
      t.ok(fs.existsSync(path.join(root, source)), `${source} exists`);
      t.notOk(ignoredByDockerignore(source, ignore), `${source} is not in .dockerignore`);
    }
  }
  const buildConfig = JSON.parse(read('tsconfig.build.json')) as {
    extends: string;
    include: string[];
  };
  for (const needed of [
    'package.json',
    'package-lock.json',
    'tsconfig.build.json',
    path.normalize(buildConfig.extends),
    ...buildConfig.include,
  ]) {
    t.ok(copied.has(needed), `the build stage gets ${needed}, which npm ci or the build reads`);
  }
  for (const kept of ['node_modules', 'dist', '.git', '.env', 'data', 'processed_images']) {
    t.ok(ignoredByDockerignore(kept, ignore), `${kept} stays out of the context`);
  }
});

t.test(
  'the runtime stage runs npm start as a non-root user, with its dirs as volumes',
  async (t) => {
    const last = (keyword: string) => runtime.filter((i) => i.keyword === keyword).at(-1)?.args;
    const user = last('USER') ?? 'root';
    t.notOk(/^(root|0)(:|$)/.test(user), `USER ${user} is not root`);
    const [tunables, ...command] = pkg.scripts.start?.split(' ') ?? [];
    t.match(tunables, /^GLIBC_TUNABLES=/, 'npm start sets the malloc settings first');
    t.strictSame(words(last('CMD') ?? '[]'), command, 'CMD is npm start');
    t.match(last('HEALTHCHECK'), /CMD .*\/health/, 'HEALTHCHECK probes /health');

    const runtimeEnv = env(runtime);
    t.equal(runtimeEnv.GLIBC_TUNABLES, startTunables(), 'with the malloc settings npm start sets');
    t.equal(runtimeEnv.HOST, '0.0.0.0', 'listens beyond the container');
    t.equal(last('EXPOSE'), runtimeEnv.PORT);
    t.strictSame(
      words(last('VOLUME') ?? '[]').sort(),
      [runtimeEnv.DATA_DIR, runtimeEnv.IMAGES_DIR, runtimeEnv.RESULTS_DIR].sort(),
      'the three directories the service writes are volumes',
    );
    t.match(dockerfile, /npm prune --omit=dev/, 'dev dependencies are pruned before the copy');
  },
);

t.test('the production dependencies cover every runtime import', async (t) => {
  const imported = new Set<string>();
  const files = fs
    .readdirSync(path.join(root, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'));
  for (const file of files) {
    const source = fs.readFileSync(path.join(root, 'src', file), 'utf8');
    // Type-only imports vanish from the compiled code; only value imports need the package.
    const specifiers = [
      ...source.matchAll(/^import (?!type )[^;]*? from '([^']+)'/gms),
      ...source.matchAll(/import\('([^']+)'\)/g),
    ].map((m) => m[1] ?? '');
    for (const specifier of specifiers) {
      if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
      const parts = specifier.split('/');
      imported.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
    }
  }
  t.ok(imported.has('sharp') && imported.has('undici'), 'the scan finds imports');
  for (const name of imported) {
    t.ok(name in pkg.dependencies, `${name} is a production dependency`);
  }
});

t.test('docker-compose.yml: the service on MongoDB, outputs on named volumes', async (t) => {
  const compose = parseYaml(read('docker-compose.yml')) as {
    services: Record<
      string,
      {
        build?: string;
        image?: string;
        environment?: Record<string, string>;
        volumes?: string[];
        ports?: string[];
        depends_on?: Record<string, { condition: string }>;
        healthcheck?: { test: string[] };
        stop_grace_period?: string;
      }
    >;
    volumes: Record<string, unknown>;
  };
  const app = compose.services.app;
  t.ok(app, 'an app service');
  if (!app) return;
  t.equal(app.build, '.', 'built from this Dockerfile');

  const mongoUri = new URL(app.environment?.MONGODB_URI ?? '');
  const mongo = compose.services[mongoUri.hostname];
  t.match(mongo?.image, /^mongo:\d/, 'MONGODB_URI names the official mongo image service');
  t.equal(mongoUri.port, '27017');
  t.ok(mongo?.healthcheck, 'mongo has a health check');
  t.equal(app.depends_on?.[mongoUri.hostname]?.condition, 'service_healthy');

  const known = new Set([...read('.env.example').matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1] ?? ''));
  for (const name of Object.keys(app.environment ?? {})) {
    t.ok(known.has(name), `${name} is a setting the service reads (.env.example)`);
  }

  const runtimeEnv = env(runtime);
  const mounts = (app.volumes ?? []).map((volume) => volume.split(':'));
  t.strictSame(
    mounts.map(([, target]) => target).sort(),
    words(runtime.filter((i) => i.keyword === 'VOLUME').at(-1)?.args ?? '[]').sort(),
    'every volume the image declares is mounted',
  );
  for (const [source] of [...mounts, ...(mongo?.volumes ?? []).map((v) => v.split(':'))]) {
    t.ok(source !== undefined && source in compose.volumes, `${source} is a named volume`);
  }
  t.match(app.ports, [new RegExp(`:${runtimeEnv.PORT}$`)], 'publishes the port it listens on');

  const deadline = Number(
    /SHUTDOWN_DEADLINE_MS = ([\d_]+)/.exec(read('src/server.ts'))?.[1]?.replace(/_/g, ''),
  );
  const grace = Number(/^(\d+)s$/.exec(app.stop_grace_period ?? '')?.[1]);
  t.ok(grace * 1000 > deadline, `docker stop waits ${grace}s, past the ${deadline} ms shutdown`);
});
