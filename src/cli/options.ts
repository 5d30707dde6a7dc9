import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient } from './api.js';
import { usageError } from './errors.js';

export type Env = Record<string, string | undefined>;

type Options = NonNullable<ParseArgsConfig['options']>;

export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

export const CONNECTION_OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
} as const satisfies Options;

/** util.parseArgs in strict mode, its complaints turned into usage errors naming the command. */
export function parse<T extends Options>(args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    // Node adds advice on '--' to its unknown-option message; the help says more.
    throw usageError(
      (err as Error).message.replace(/\. To specify a positional .*$/s, ''),
      command,
    );
  }
}

const DEFAULT_PORT = '8000';

/** The client for --server/--token, falling back to IMAGE_BATCH_SERVER, PORT and API_TOKEN. */
export function connect(
  values: { server?: string | undefined; token?: string | undefined },
  env: Env,
  command: string,
): ApiClient {
  const fromEnv = (name: string) => (env[name]?.trim() ? env[name].trim() : undefined);
  const server =
    values.server ??
    fromEnv('IMAGE_BATCH_SERVER') ??
    `http://127.0.0.1:${fromEnv('PORT') ?? DEFAULT_PORT}`;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw usageError(`--server must be an http or https URL (got "${server}")`, command);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`--server must be an http or https URL (got "${server}")`, command);
  }
  const token = values.token ?? fromEnv('API_TOKEN') ?? null;
  return new ApiClient(url.href.replace(/\/+$/, ''), token === '' ? null : token);
}
