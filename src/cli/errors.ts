/** The CLI's exit codes; `image-batch --help` lists them. */
export const ExitCode = {
  OK: 0,
  /** The job FAILED, or the service could not be reached or answered with an error. */
  FAILED: 1,
  /** A wrong command line, or an upload the service rejected (400, 413). */
  USAGE: 2,
  /** The job completed, but some of its images failed. */
  IMAGES_FAILED: 3,
  /** Ctrl-C while waiting; the job goes on in the service (128 + SIGINT, as shells report it). */
  INTERRUPTED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI explains in its own words and turns into an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.FAILED,
    /** Lines printed after the message: what to do about it. */
    readonly hints: string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string, command?: string): CliError =>
  new CliError(message, ExitCode.USAGE, [
    `Run 'image-batch ${command ? `${command} ` : ''}--help' for usage.`,
  ]);

/** The service answered, but not with what was asked for. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly retryAfter: string | null,
  ) {
    super(`HTTP ${status}: ${errorText(body)}`);
    this.name = 'HttpError';
  }
}

/** No answer at all: nothing listening, a refused or reset connection, a timeout. */
export class UnreachableError extends Error {
  constructor(
    readonly baseUrl: string,
    readonly reason: string,
  ) {
    super(`cannot reach the service at ${baseUrl} (${reason})`);
    this.name = 'UnreachableError';
  }
}

/** The `error` field of a JSON error body, else the body as text. */
export function errorText(body: unknown): string {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    return String((body as { error: unknown }).error);
  }
  return typeof body === 'string' ? body.slice(0, 500) : JSON.stringify(body);
}
