import { ApiClient } from './api.js';
import { usageError } from './errors.js';
import type { Env } from './options.js';

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
