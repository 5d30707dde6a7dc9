import type { Logger } from 'pino';

/** The field that names the job on every log line about one. */
export const JOB_LOG_FIELD = 'request_id';

/** A logger whose every line names the job, so that one grep finds a job's whole story. */
export function jobLog(log: Logger, requestId: string): Logger {
  return log.child({ [JOB_LOG_FIELD]: requestId });
}
