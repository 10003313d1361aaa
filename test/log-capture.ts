/**
 * Captures the framework's JSON log lines for the tests of one file: each
 * test starts with an empty list, and console is restored after it.
 */
import { afterEach, beforeEach, vi } from 'vitest';

export interface CapturedLogs {
  /** Raw lines written in the current test. */
  lines: string[];
  /** The lines parsed as JSON objects. */
  parsed(): Array<Record<string, unknown>>;
}

export function captureLogs(): CapturedLogs {
  const captured: CapturedLogs = {
    lines: [],
    parsed: () => captured.lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };

  beforeEach(() => {
    captured.lines = [];
    for (const method of ['log', 'warn', 'error'] as const) {
      vi.spyOn(console, method).mockImplementation((line: unknown) => {
        captured.lines.push(String(line));
      });
    }
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return captured;
}
