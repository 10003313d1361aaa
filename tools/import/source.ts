/**
 * Rows that every import source yields: one per installation found in the
 * old store, in the shape of Bitbucket's `installed` payload, with the row's
 * location for the report. A row never carries its raw contents into the
 * report, because they include the shared secret.
 */
import type { InstallationState } from '../../src/connect/installations';

export const SOURCE_NAMES = ['ace-sqlite', 'ace-postgres', 'ace-redis', 'spring-postgres', 'jsonl'] as const;

export type SourceName = (typeof SOURCE_NAMES)[number];

/** A row that contains an installed payload, possibly still invalid. */
export interface PayloadRow {
  readonly kind: 'payload';
  readonly payload: unknown;
  readonly state: InstallationState;
  /** When the old store last changed this installation; undefined when it keeps no such time. */
  readonly updatedAt?: Date;
  /** When the old store first recorded this installation; undefined when it keeps no such time. */
  readonly installedAt?: Date;
  /** A fact the report adds to the row's line, such as a field the old store does not keep. */
  readonly note?: string;
}

/** A row that could not be read as a payload; the reason never quotes the row. */
export interface UnreadableRow {
  readonly kind: 'unreadable';
  readonly reason: string;
}

/** A row that is not a Bitbucket installation of this app and is left out on purpose. */
export interface IgnoredRow {
  readonly kind: 'ignored';
  readonly reason: string;
}

export interface SourceRow {
  /** Location of the row in the old store, such as `AddonSettings id 7` or `line 3`. */
  readonly location: string;
  /** The clientKey the store files the row under, when it has one; for the report only. */
  readonly clientKey: string | undefined;
  readonly content: PayloadRow | UnreadableRow | IgnoredRow;
}

export interface Source {
  /** Names the store for the report, without credentials. */
  readonly description: string;
  rows(): AsyncIterable<SourceRow>;
  close(): Promise<void>;
}

/**
 * Parses a stored JSON value. Parser messages are dropped because they quote
 * the input, which contains the shared secret. A value that decodes to a JSON
 * string is decoded once more, since some stores kept the payload as a JSON
 * string inside a JSON column.
 */
export function parseStoredJson(value: unknown, field: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  let decoded = value;
  for (let depth = 0; depth < 2 && typeof decoded === 'string'; depth += 1) {
    try {
      decoded = JSON.parse(decoded);
    } catch {
      return { ok: false, reason: `${field} is not valid JSON.` };
    }
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
    return { ok: false, reason: `${field} is not a JSON object.` };
  }
  return { ok: true, value: decoded };
}

/** Formats a database URL for the report without its password and query, which may hold one. */
export function describeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(an invalid URL)';
  }
  const user = parsed.username === '' ? '' : `${parsed.username}@`;
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
}

/** Quotes a table name such as `AddonSettings` or `public.atlassian_host` as an SQL identifier. */
export function quoteTableName(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((part) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(part))) {
    throw new Error(`--table "${name}" must be a table name such as AddonSettings or schema.table.`);
  }
  return parts.map((part) => `"${part}"`).join('.');
}
