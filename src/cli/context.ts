import type { Env } from './options.js';

/** What a command reads and writes besides the network: its environment and its output. */
export interface Context {
  env: Env;
  /** Results: request ids, summaries, status, help. */
  stdout: NodeJS.WriteStream;
  /** Progress, errors and hints, so stdout can be captured or piped on its own. */
  stderr: NodeJS.WriteStream;
}

export const println = (out: NodeJS.WriteStream, ...lines: string[]): void => {
  out.write(lines.map((line) => `${line}\n`).join(''));
};
