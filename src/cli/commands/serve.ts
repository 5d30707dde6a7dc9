import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { HELP } from '../help.js';
import { HELP_OPTION, parse } from '../options.js';

/**
 * The service's own entry point, loaded into this process: it reads the environment, starts,
 * and handles SIGTERM/SIGINT and the exit code itself, exactly as under `npm start`.
 */
const startService = (): Promise<unknown> => import('../../server.js');

/** Resolves to null once the service is starting: from then on it owns the process's exit. */
export async function serve(args: string[], ctx: Context): Promise<number | null> {
  const { values, positionals } = parse(
    args,
    { ...HELP_OPTION, port: { type: 'string' }, host: { type: 'string' } },
    'serve',
  );
  if (values.help) {
    ctx.stdout.write(HELP.serve);
    return ExitCode.OK;
  }
  if (positionals.length > 0) {
    throw usageError(`serve takes no arguments (got "${positionals.join(' ')}")`, 'serve');
  }
  // The service reads its settings from the process environment only; the flags are shorthands.
  if (values.port !== undefined) process.env.PORT = values.port;
  if (values.host !== undefined) process.env.HOST = values.host;
  await startService();
  return null;
}
