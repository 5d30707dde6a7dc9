import pino, { type DestinationStream, type Logger } from 'pino';

export interface LoggerSettings {
  level: string;
  /** Human-readable lines (pino-pretty) instead of JSON, for development. */
  pretty: boolean;
}

/**
 * JSON lines for production (one object per line, for a log shipper). Pretty lines only
 * when asked for and pino-pretty is installed: it is a devDependency, so a production
 * install that sets NODE_ENV=development still starts, logging JSON, and says why.
 */
export function createLogger(settings: LoggerSettings, destination?: DestinationStream): Logger {
  if (settings.pretty && destination === undefined) {
    if (prettyInstalled()) {
      return pino({
        level: settings.level,
        transport: {
          target: 'pino-pretty',
          options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
        },
      });
    }
    const log = pino({ level: settings.level });
    log.warn('NODE_ENV=development but pino-pretty is not installed: logging JSON');
    return log;
  }
  return destination === undefined
    ? pino({ level: settings.level })
    : pino({ level: settings.level }, destination);
}

function prettyInstalled(): boolean {
  try {
    import.meta.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
