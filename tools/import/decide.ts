/**
 * Turns a source row into the installation record the lifecycle would store,
 * and decides whether to write it over what the target already holds.
 *
 * Every record the import writes carries KV metadata (ImportMetadata). The
 * worker's lifecycle routes write records without metadata, and a KV put
 * without metadata clears it. So a record without import metadata was
 * written by the worker after any import, by a re-install or uninstall that
 * Bitbucket sent to the new base URL. Such a record is overwritten only with
 * --force or when the source row carries a later timestamp.
 */
import type { PayloadRules } from '../../src/connect/installation-payload';
import { validateInstalledPayload } from '../../src/connect/installation-payload';
import { recordFromPayload, type InstallationRecord } from '../../src/connect/installations';
import type { PayloadRow } from './source';

/** Metadata stored with every imported record; none of it is secret. */
export interface ImportMetadata {
  /** The source kind, such as `ace-sqlite`. */
  readonly importedFrom: string;
  /** When the source row last changed, or null when the source keeps no such time. */
  readonly sourceUpdatedAt: string | null;
  readonly importedAt: string;
  /** HMAC-SHA256 of the record without timestamps, keyed with the encryption key, as hex. */
  readonly fingerprint: string;
}

/** The target's stored record for a clientKey, as far as the target can read it. */
export interface ExistingEntry {
  /** The import's metadata, or null when the worker wrote the record last. */
  readonly importMetadata: ImportMetadata | null;
  /** `updatedAt` of the stored record; undefined when the target lists only keys (bulk files). */
  readonly updatedAt: string | undefined;
  /** The reason the stored record cannot be read, when it cannot. */
  readonly unreadable?: string;
}

export type Decision =
  | { readonly action: 'write'; readonly reason?: string }
  | { readonly action: 'unchanged' }
  | { readonly action: 'keep'; readonly reason: string }
  | { readonly action: 'fail'; readonly reason: string };

export interface Candidate {
  readonly fingerprint: string;
  /** When the source row last changed; undefined when the source keeps no such time. */
  readonly sourceUpdatedAt: Date | undefined;
}

/**
 * Validates a payload exactly as the `installed` route does and builds its
 * record. Timestamps come from the source row when it has them, otherwise
 * from `importTime`. Throws ConnectError naming the first failed check.
 */
export function buildRecord(row: PayloadRow, rules: PayloadRules, importTime: Date): InstallationRecord {
  const payload = validateInstalledPayload(row.payload, rules);
  const installed = recordFromPayload(payload, null, row.updatedAt ?? importTime);
  const record: InstallationRecord =
    row.installedAt === undefined ? installed : { ...installed, installedAt: row.installedAt.toISOString() };
  if (row.state === 'uninstalled') {
    return { ...record, state: 'uninstalled', uninstalledAt: record.updatedAt };
  }
  return record;
}

export function decide(existing: ExistingEntry | null, candidate: Candidate, force: boolean): Decision {
  if (existing === null) {
    return { action: 'write' };
  }
  if (existing.importMetadata?.fingerprint === candidate.fingerprint) {
    return { action: 'unchanged' };
  }
  if (existing.unreadable !== undefined) {
    return force
      ? { action: 'write', reason: 'replaced an unreadable record (--force)' }
      : { action: 'fail', reason: `the stored record cannot be read: ${existing.unreadable} --force replaces it.` };
  }
  if (force) {
    return { action: 'write', reason: 'overwrote the stored record (--force)' };
  }

  const sourceTime = candidate.sourceUpdatedAt;
  if (existing.importMetadata === null) {
    if (sourceTime !== undefined && existing.updatedAt !== undefined && sourceTime.getTime() > Date.parse(existing.updatedAt)) {
      return { action: 'write', reason: `the source row (${sourceTime.toISOString()}) is newer than the stored record (${existing.updatedAt})` };
    }
    const when = existing.updatedAt === undefined ? '' : ` at ${existing.updatedAt}`;
    return {
      action: 'keep',
      reason: `the worker stored this installation${when} after a lifecycle call, and the source row is not known to be newer; --force overwrites it.`,
    };
  }

  const importedTime = existing.importMetadata.sourceUpdatedAt;
  if (sourceTime !== undefined && importedTime !== null && sourceTime.getTime() < Date.parse(importedTime)) {
    return {
      action: 'keep',
      reason: `an earlier import stored a newer source row (${importedTime}); --force overwrites it.`,
    };
  }
  return { action: 'write', reason: 'the source row changed since the last import' };
}

/** Checks metadata read back from KV; anything else counts as "not written by the import". */
export function parseImportMetadata(value: unknown): ImportMetadata | null {
  if (typeof value !== 'object' || value === null) {
    return null;
  }
  const { importedFrom, sourceUpdatedAt, importedAt, fingerprint } = value as Record<string, unknown>;
  if (
    typeof importedFrom !== 'string' ||
    (sourceUpdatedAt !== null && typeof sourceUpdatedAt !== 'string') ||
    typeof importedAt !== 'string' ||
    typeof fingerprint !== 'string'
  ) {
    return null;
  }
  return { importedFrom, sourceUpdatedAt, importedAt, fingerprint };
}

/**
 * Fingerprints a record without its timestamps, so a re-run over the same
 * source finds it unchanged. The HMAC key is the encryption key, so the
 * fingerprint in plain-text KV metadata reveals nothing about the secret.
 */
export async function fingerprintRecord(record: InstallationRecord, encryptionKey: string): Promise<string> {
  const { installedAt: _installedAt, updatedAt: _updatedAt, uninstalledAt: _uninstalledAt, ...content } = record;
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(encryptionKey), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = await crypto.subtle.sign('HMAC', key, encoder.encode(`installation-import\n${canonicalJson(content)}`));
  return [...new Uint8Array(signature)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** JSON with object keys sorted at every level, so equal records give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(',')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, entry]) => entry !== undefined);
    entries.sort(([left], [right]) => compareCodeUnits(left, right));
    return `{${entries.map(([name, entry]) => `${JSON.stringify(name)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Orders strings by UTF-16 code units, independent of the locale. */
function compareCodeUnits(left: string, right: string): number {
  if (left === right) {
    return 0;
  }
  return left < right ? -1 : 1;
}
