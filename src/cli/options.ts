import { parseArgs, type ParseArgsConfig } from 'node:util';
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
