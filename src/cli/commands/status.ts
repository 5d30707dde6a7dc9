import { type Context, println } from '../context.js';
import { connect } from '../connection.js';
import { CliError, ExitCode, HttpError, usageError } from '../errors.js';
import { formatStatus } from '../format.js';
import { HELP } from '../help.js';
import { CONNECTION_OPTIONS, HELP_OPTION, parse } from '../options.js';

export async function status(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...HELP_OPTION, ...CONNECTION_OPTIONS, json: { type: 'boolean' } },
    'status',
  );
  if (values.help) {
    ctx.stdout.write(HELP.status);
    return ExitCode.OK;
  }
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0) {
    throw usageError('status takes one request id', 'status');
  }
  const client = connect(values, ctx.env, 'status');
  try {
    const body = await client.status(id);
    if (values.json) println(ctx.stdout, JSON.stringify(body, null, 2));
    else println(ctx.stdout, ...formatStatus(body));
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) {
      throw new CliError(`no request ${id} at ${client.baseUrl}`);
    }
    if (err instanceof HttpError && err.status === 400) {
      throw usageError(`"${id}" is not a request id (they look like 0b7c2a7e-5f7e-…)`, 'status');
    }
    throw err;
  }
}
