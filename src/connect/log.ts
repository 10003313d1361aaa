/**
 * Structured logging: one JSON line per event on the console, which Workers
 * Logs and `wrangler tail` collect. Callers pass ids and codes only. As a second
 * line of defence, fields whose names suggest a credential are replaced before
 * the line is written.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names that are never written, whatever value they carry. */
const REDACTED_FIELD_PATTERN = /secret|token|jwt|authorization|password|access_token/i;

/** Fields of a log line; values are plain ids, codes, numbers or booleans. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

let minimumLevel: LogLevel = 'info';

/** Sets the lowest level that is written; the `LOG_LEVEL` var feeds this. */
export function setLogLevel(level: string | undefined): void {
  if (level !== undefined && level in LEVEL_RANK) {
    minimumLevel = level as LogLevel;
  }
}

export function logEvent(level: LogLevel, event: string, fields: LogFields = {}): void {
  if (LEVEL_RANK[level] < LEVEL_RANK[minimumLevel]) {
    return;
  }

  const line: Record<string, unknown> = { level, event };
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || name === 'level' || name === 'event') {
      continue;
    }
    line[name] = REDACTED_FIELD_PATTERN.test(name) ? '[redacted]' : value;
  }

  const text = JSON.stringify(line);
  if (level === 'error') {
    console.error(text);
  } else if (level === 'warn') {
    console.warn(text);
  } else {
    console.log(text);
  }
}
