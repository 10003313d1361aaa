/**
 * Runs one import: reads every row of the source, validates it as the
 * `installed` route would, decides against what the target holds, writes,
 * and reports one line per row. One bad row never stops the others. No line
 * contains a payload, so no line can contain a shared secret.
 */
import { dirname, join } from 'node:path';
import { isConnectError } from '../../src/connect/errors';
import type { InstallationRecord } from '../../src/connect/installations';
import { createSecretCipher, DEVELOPMENT_ENCRYPTION_KEY, type SecretCipher } from '../../src/connect/secret-cipher';
import { buildRecord, decide, fingerprintRecord, type ImportMetadata } from './decide';
import { DEFAULT_PERSIST_TO, UsageError, type ImportOptions } from './options';
import type { PayloadRow, Source, SourceRow } from './source';
import { openBulkFileTarget, openLocalTarget, type Target } from './targets';

export type RowStatus = 'imported' | 'unchanged' | 'kept' | 'ignored' | 'skipped';

export interface ImportSummary {
  readonly counts: Readonly<Record<RowStatus, number>>;
  readonly rows: number;
  /** 0: no row skipped; 1: a row was skipped as invalid or unwritable. */
  readonly exitCode: 0 | 1;
}

export interface ImportOutput {
  /** One report line (stdout). */
  line(text: string): void;
  /** One warning line (stderr). */
  warn(text: string): void;
}

/** Maximum length of a clientKey or location in a report line, in characters. */
const MAX_SHOWN_LENGTH = 160;

/**
 * The module that exports the worker's descriptor, relative to this file. It
 * is imported at run time by name, so the Node type check does not follow it
 * into the Workers-typed framework modules.
 */
const DESCRIPTOR_MODULE = '../../src/app/descriptor';
const DESCRIPTOR_EXPORT = 'sampleDescriptor';

export async function runImport(options: ImportOptions, output: ImportOutput, now: () => Date = () => new Date()): Promise<ImportSummary> {
  const cipher = createCipher(options);
  const appKey = options.appKey ?? (await readDescriptorAppKey());
  const appKeyOrigin = options.appKey === undefined ? 'src/app/descriptor.ts' : '--app-key';
  if (options.encryptionKey === DEVELOPMENT_ENCRYPTION_KEY) {
    if (options.target === 'bulk-file') {
      throw new UsageError(
        'The encryption key is the public development key from .dev.vars.example. A deployed namespace needs the key ' +
          'the worker has from `wrangler secret put CONNECT_ENCRYPTION_KEY`.',
      );
    }
    output.warn('warning: the encryption key is the public development key; use it for local data only.');
  }

  const source = await openSource(options, appKey);
  let target: Target | undefined;
  try {
    target = await openTarget(options, cipher);
    output.line(`Reading ${source.description}`);
    output.line(`Writing ${options.dryRun ? 'nothing (dry run); comparing with ' : ''}${target.description}`);
    output.line(
      `App key ${appKey} (${appKeyOrigin}); allowed base URLs ${[...options.allowList.origins].join(', ')}; ` +
        `encryption key id ${cipher.currentKeyId} (${options.encryptionKeyOrigin})`,
    );
    return await importRows(source, target, { ...options, appKey }, cipher, output, now);
  } catch (error) {
    if (error instanceof UsageError) {
      throw error;
    }
    // As in openSource, only the error's name and code: driver messages can quote data.
    throw new UsageError(
      `The import stopped (${errorName(error)}); the rows reported above were handled. ` +
        'Check --table and that the store and the target are reachable, then run it again.',
    );
  } finally {
    await target?.close();
    await source.close();
  }
}

async function importRows(
  source: Source,
  target: Target,
  options: ImportOptions & { readonly appKey: string },
  cipher: SecretCipher,
  output: ImportOutput,
  now: () => Date,
): Promise<ImportSummary> {
  const counts: Record<RowStatus, number> = { imported: 0, unchanged: 0, kept: 0, ignored: 0, skipped: 0 };
  const firstLocationByClientKey = new Map<string, string>();
  const importTime = now();
  let rows = 0;

  const report = (status: RowStatus, row: SourceRow, clientKey: string | undefined, detail?: string) => {
    counts[status] += 1;
    const label = status === 'imported' && options.dryRun ? 'would import' : status;
    const shownKey = clientKey === undefined ? '(no clientKey)' : printable(clientKey);
    output.line(`${label.padEnd(12)} ${shownKey}  [${printable(row.location)}]${detail === undefined ? '' : `: ${detail}`}`);
  };

  for await (const row of source.rows()) {
    rows += 1;
    const content = row.content;
    if (content.kind === 'ignored') {
      report('ignored', row, row.clientKey, content.reason);
      continue;
    }
    if (content.kind === 'unreadable') {
      report('skipped', row, row.clientKey, content.reason);
      continue;
    }

    let record: InstallationRecord;
    try {
      record = buildRecord(content, { appKey: options.appKey, allowList: options.allowList }, importTime);
    } catch (error) {
      if (!isConnectError(error)) {
        throw error;
      }
      report('skipped', row, row.clientKey, error.message);
      continue;
    }

    const clientKey = record.clientKey;
    const firstLocation = firstLocationByClientKey.get(clientKey);
    if (firstLocation !== undefined) {
      report('skipped', row, clientKey, `duplicate clientKey: ${printable(firstLocation)} already provided it; remove one of the two from the source.`);
      continue;
    }
    firstLocationByClientKey.set(clientKey, row.location);

    const outcome = await importRecord(record, content, target, options, cipher, importTime);
    report(outcome.status, row, clientKey, joinDetails(outcome.detail, outcome.status === 'imported' ? content.note : undefined));
  }

  const written = options.dryRun ? 0 : counts.imported;
  for (const line of await target.finish(written)) {
    output.line(line);
  }

  const imported = options.dryRun ? `${counts.imported} would be imported` : `${counts.imported} imported`;
  output.line(
    `Summary${options.dryRun ? ' (dry run, nothing written)' : ''}: ${rows} rows: ${imported}, ${counts.unchanged} unchanged, ` +
      `${counts.kept} kept, ${counts.ignored} ignored, ${counts.skipped} skipped.`,
  );
  return { counts, rows, exitCode: counts.skipped > 0 ? 1 : 0 };
}

async function importRecord(
  record: InstallationRecord,
  row: PayloadRow,
  target: Target,
  options: ImportOptions,
  cipher: SecretCipher,
  importTime: Date,
): Promise<{ status: RowStatus; detail?: string }> {
  const fingerprint = await fingerprintRecord(record, options.encryptionKey);
  let existing;
  try {
    existing = await target.read(record.clientKey);
  } catch (error) {
    return { status: 'skipped', detail: `reading the stored record failed (${errorName(error)}).` };
  }

  const decision = decide(existing, { fingerprint, sourceUpdatedAt: row.updatedAt }, options.force);
  switch (decision.action) {
    case 'unchanged':
      return { status: 'unchanged' };
    case 'keep':
      return { status: 'kept', detail: decision.reason };
    case 'fail':
      return { status: 'skipped', detail: decision.reason };
    case 'write':
      break;
  }

  if (!options.dryRun) {
    const metadata: ImportMetadata = {
      importedFrom: options.source,
      sourceUpdatedAt: row.updatedAt?.toISOString() ?? null,
      importedAt: importTime.toISOString(),
      fingerprint,
    };
    try {
      await target.write(record, metadata);
    } catch (error) {
      return { status: 'skipped', detail: `writing the record failed (${errorName(error)}).` };
    }
  }
  const state = record.state === 'uninstalled' ? 'as uninstalled, secret kept' : undefined;
  return { status: 'imported', ...withDetail(joinDetails(state, decision.reason)) };
}

function createCipher(options: ImportOptions): SecretCipher {
  try {
    return createSecretCipher(options.encryptionKey, options.oldEncryptionKeys);
  } catch (error) {
    if (isConnectError(error)) {
      throw new UsageError(error.message);
    }
    throw error;
  }
}

async function openSource(options: ImportOptions, appKey: string): Promise<Source> {
  const file = options.file ?? '';
  const url = options.url ?? '';
  try {
    switch (options.source) {
      case 'ace-sqlite': {
        const { openAceSqlite } = await import('./sources/ace');
        return openAceSqlite(file, options.table);
      }
      case 'ace-postgres': {
        const { openAcePostgres } = await import('./sources/ace');
        return await openAcePostgres(url, options.table);
      }
      case 'ace-redis': {
        const { openAceRedis } = await import('./sources/ace');
        return await openAceRedis(url);
      }
      case 'spring-postgres': {
        const { openSpringPostgres } = await import('./sources/spring');
        return await openSpringPostgres(url, options.table, appKey);
      }
      case 'jsonl': {
        const { openJsonl } = await import('./sources/jsonl');
        return await openJsonl(file);
      }
    }
  } catch (error) {
    if (error instanceof UsageError) {
      throw error;
    }
    // Driver messages can quote a connection string, so only the error's name and code are shown.
    throw new UsageError(`Opening the ${options.source} source failed (${errorName(error)}). Check --file or --url and that the store is reachable.`);
  }
}

async function openTarget(options: ImportOptions, cipher: SecretCipher): Promise<Target> {
  if (options.target === 'bulk-file') {
    return openBulkFileTarget({
      out: options.out ?? '',
      existingKeysFile: options.existingKeysFile ?? '',
      binding: options.binding,
      cipher,
      dryRun: options.dryRun,
    });
  }

  const { namespaceId, configDirectory } = await readNamespaceId(options);
  return openLocalTarget({
    persistTo: options.persistTo ?? join(configDirectory, DEFAULT_PERSIST_TO),
    namespaceId,
    binding: options.binding,
    cipher,
    dryRun: options.dryRun,
  });
}

/** Reads the namespace id with wrangler's own configuration reader, as wrangler dev does. */
async function readNamespaceId(options: ImportOptions): Promise<{ namespaceId: string; configDirectory: string }> {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig(options.configPath === undefined ? {} : { config: options.configPath });
  if (config.configPath === undefined) {
    throw new UsageError('No wrangler configuration found; run from the project directory or pass --config <path>.');
  }
  const namespaces: ReadonlyArray<{ binding: string; id?: string }> = config.kv_namespaces;
  const namespace = namespaces.find((entry) => entry.binding === options.binding);
  if (namespace?.id === undefined) {
    throw new UsageError(`${config.configPath} has no kv_namespaces entry with binding ${options.binding} and an id.`);
  }
  return { namespaceId: namespace.id, configDirectory: dirname(config.configPath) };
}

async function readDescriptorAppKey(): Promise<string> {
  const specifier = DESCRIPTOR_MODULE;
  const module = (await import(specifier)) as Record<string, { key?: unknown } | undefined>;
  const key = module[DESCRIPTOR_EXPORT]?.key;
  if (typeof key !== 'string' || key === '') {
    throw new UsageError(`src/app/descriptor.ts exports no ${DESCRIPTOR_EXPORT} with a key; pass --app-key <key>.`);
  }
  return key;
}

function joinDetails(...details: Array<string | undefined>): string | undefined {
  const present = details.filter((detail): detail is string => detail !== undefined);
  return present.length === 0 ? undefined : present.join('; ');
}

function withDetail(detail: string | undefined): { detail?: string } {
  return detail === undefined ? {} : { detail };
}

/** Replaces control and non-ASCII characters, so a crafted clientKey cannot rewrite the terminal. */
function printable(text: string): string {
  const cleaned = text.replace(/[^\x20-\x7e]/g, '?');
  return cleaned.length > MAX_SHOWN_LENGTH ? `${cleaned.slice(0, MAX_SHOWN_LENGTH)}...` : cleaned;
}

function errorName(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.name} ${code}` : error.name;
  }
  return typeof error;
}
