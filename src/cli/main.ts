import { type Context, println } from './context.js';
import {
  CliError,
  ExitCode,
  errorText,
  HttpError,
  UnreachableError,
  usageError,
} from './errors.js';
import { HELP, PROGRAM } from './help.js';
import { HELP_OPTION, parse } from './options.js';
import { SERVICE_VERSION } from '../version.js';

type Command = (args: string[], ctx: Context) => Promise<number | null>;

// Loaded on use, so that help, version and usage errors answer without loading the HTTP client.
const COMMANDS: Record<'serve' | 'submit' | 'status', () => Promise<Command>> = {
  serve: async () => (await import('./commands/serve.js')).serve,
  submit: async () => (await import('./commands/submit.js')).submit,
  status: async () => (await import('./commands/status.js')).status,
};

const isCommand = (name: string): name is keyof typeof COMMANDS => Object.hasOwn(COMMANDS, name);

/**
 * Runs one command line. Resolves to the exit code, or to null when the service was started
 * and now decides when and how the process exits.
 */
export async function run(argv: string[], ctx: Context): Promise<number | null> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      ctx.stderr.write(HELP.program);
      return ExitCode.USAGE;
    }
    if (first.startsWith('-')) return programOptions(argv, ctx);
    if (first === 'help') return help(rest, ctx);
    if (!isCommand(first)) throw usageError(`unknown command "${first}"`);
    const command = await COMMANDS[first]();
    return await command(rest, ctx);
  } catch (err) {
    return report(err, ctx);
  }
}

function programOptions(argv: string[], ctx: Context): number {
  const { values, positionals } = parse(
    argv,
    { ...HELP_OPTION, version: { type: 'boolean', short: 'V' } },
    '',
  );
  if (positionals.length > 0) {
    throw usageError(`put options after the command: ${PROGRAM} ${positionals[0]} ${argv[0]}`);
  }
  if (values.version) println(ctx.stdout, `${PROGRAM} ${SERVICE_VERSION}`);
  else ctx.stdout.write(HELP.program);
  return ExitCode.OK;
}

function help(topics: string[], ctx: Context): number {
  const [topic, ...extra] = topics;
  if (topic === undefined) {
    ctx.stdout.write(HELP.program);
    return ExitCode.OK;
  }
  if (!isCommand(topic) || extra.length > 0) throw usageError(`no help for "${topics.join(' ')}"`);
  ctx.stdout.write(HELP[topic]);
  return ExitCode.OK;
}

function report(err: unknown, ctx: Context): number {
  const fail = (code: number, message: string, ...hints: string[]): number => {
    println(ctx.stderr, `${PROGRAM}: ${message}`, ...hints);
    return code;
  };
  if (err instanceof CliError) return fail(err.exitCode, err.message, ...err.hints);
  if (err instanceof UnreachableError) {
    return fail(
      ExitCode.FAILED,
      err.message,
      `Is it running? Start it with '${PROGRAM} serve', or point --server (or IMAGE_BATCH_SERVER) at it.`,
    );
  }
  if (err instanceof HttpError && err.status === 401) {
    return fail(
      ExitCode.FAILED,
      `the service refused the request (401): ${errorText(err.body)}`,
      'Pass the token it was started with: --token, or the API_TOKEN variable.',
    );
  }
  if (err instanceof HttpError) return fail(ExitCode.FAILED, `the service answered ${err.message}`);
  return fail(
    ExitCode.FAILED,
    `unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
}
