/**
 * Targets of the import:
 *
 * - `local`: the KV namespace that `wrangler dev --persist-to <dir>` serves,
 *   opened through Miniflare (the version wrangler 4.86 runs). wrangler keeps
 *   KV under `<dir>/v3/kv` and names the namespace by the `id` of its
 *   `kv_namespaces` entry in the wrangler configuration.
 * - `bulk-file`: a JSON file for `wrangler kv bulk put --remote`, the only
 *   way this tool reaches a deployed namespace. It cannot read that namespace,
 *   so it takes the output of `wrangler kv key list` to learn what is there.
 *
 * Values are built with the store module's own encoder, so the worker reads
 * them exactly like records written by its lifecycle routes.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isConnectError } from '../../src/connect/errors';
import { decodeInstallationRecord, encodeInstallationRecord, type InstallationRecord } from '../../src/connect/installations';
import type { SecretCipher } from '../../src/connect/secret-cipher';
import { installationKey, installationKeyPrefix } from '../../src/connect/storage-keys';
import { parseImportMetadata, type ExistingEntry, type ImportMetadata } from './decide';

export interface Target {
  readonly description: string;
  read(clientKey: string): Promise<ExistingEntry | null>;
  write(record: InstallationRecord, metadata: ImportMetadata): Promise<void>;
  /** Completes the run and returns the lines that tell the operator what to do next. */
  finish(written: number): Promise<string[]>;
  close(): Promise<void>;
}

/** The subset of the Workers KV API the local target uses. */
interface KvNamespaceLike {
  getWithMetadata(key: string, type: 'text'): Promise<{ value: string | null; metadata: unknown }>;
  put(key: string, value: string, options: { metadata: ImportMetadata }): Promise<void>;
}

export interface LocalTargetOptions {
  /** The directory given to `wrangler dev --persist-to`. */
  readonly persistTo: string;
  readonly namespaceId: string;
  readonly binding: string;
  readonly cipher: SecretCipher;
  readonly dryRun: boolean;
}

export async function openLocalTarget(options: LocalTargetOptions): Promise<Target> {
  const kvPersist = join(options.persistTo, 'v3', 'kv');
  const description = `local KV namespace ${options.namespaceId} (binding ${options.binding}) under ${options.persistTo}`;

  // A dry run must not create the directory, and a missing one contains no records.
  if (options.dryRun && !existsSync(kvPersist)) {
    return {
      description,
      read: async () => null,
      write: async () => undefined,
      finish: async () => [],
      close: async () => undefined,
    };
  }

  await mkdir(kvPersist, { recursive: true });
  const { Miniflare } = await import('miniflare');
  const miniflare = new Miniflare({
    modules: true,
    script: 'export default {}',
    kvNamespaces: { [options.binding]: options.namespaceId },
    kvPersist,
  });
  const kv = (await miniflare.getKVNamespace(options.binding)) as unknown as KvNamespaceLike;

  return {
    description,
    async read(clientKey) {
      const { value, metadata } = await kv.getWithMetadata(installationKey(clientKey), 'text');
      if (value === null) {
        return null;
      }
      const importMetadata = parseImportMetadata(metadata);
      try {
        const record = await decodeInstallationRecord(value, clientKey, () => options.cipher);
        return { importMetadata, updatedAt: record.updatedAt };
      } catch (error) {
        if (!isConnectError(error)) {
          throw error;
        }
        return { importMetadata, updatedAt: undefined, unreadable: error.message };
      }
    },
    async write(record, metadata) {
      const value = await encodeInstallationRecord(record, options.cipher);
      await kv.put(installationKey(record.clientKey), value, { metadata });
    },
    async finish(written) {
      if (written === 0) {
        return [];
      }
      return [`Start the worker on this data with: npx wrangler dev --persist-to ${quoteArgument(options.persistTo)}`];
    },
    async close() {
      await miniflare.dispose();
    },
  };
}

export interface BulkFileTargetOptions {
  readonly out: string;
  /** Output of `wrangler kv key list --remote --binding <binding> --prefix installation:`. */
  readonly existingKeysFile: string;
  readonly binding: string;
  readonly cipher: SecretCipher;
  readonly dryRun: boolean;
}

interface BulkEntry {
  readonly key: string;
  readonly value: string;
  readonly metadata: ImportMetadata;
}

export async function openBulkFileTarget(options: BulkFileTargetOptions): Promise<Target> {
  const existing = await readKeyList(options.existingKeysFile, options.binding);
  const entries: BulkEntry[] = [];

  return {
    description: `bulk file ${options.out} for the deployed namespace (binding ${options.binding})`,
    async read(clientKey) {
      const key = installationKey(clientKey);
      if (!existing.has(key)) {
        return null;
      }
      return { importMetadata: existing.get(key) ?? null, updatedAt: undefined };
    },
    async write(record, metadata) {
      const value = await encodeInstallationRecord(record, options.cipher);
      entries.push({ key: installationKey(record.clientKey), value, metadata });
    },
    async finish() {
      if (options.dryRun) {
        return [];
      }
      // The values are encrypted, but the file lists every clientKey: keep it private.
      await writeFile(options.out, `${JSON.stringify(entries, null, 2)}\n`, { mode: 0o600 });
      if (entries.length === 0) {
        return [`Wrote ${options.out} with no entries: there is nothing to upload.`];
      }
      return [
        `Wrote ${entries.length} entries to ${options.out}. Upload them with:`,
        `  npx wrangler kv bulk put --remote --binding ${options.binding} ${quoteArgument(options.out)}`,
        `Then delete ${options.out}.`,
      ];
    },
    async close() {},
  };
}

/** Reads `wrangler kv key list` JSON into a map from KV key to the import's metadata, if any. */
async function readKeyList(file: string, binding: string): Promise<Map<string, ImportMetadata | null>> {
  const howTo = `Create it with: npx wrangler kv key list --remote --binding ${binding} --prefix ${installationKeyPrefix()} > ${file}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : 'is not valid JSON';
    throw new Error(`The key list ${file} ${reason}. ${howTo}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((entry) => typeof (entry as { name?: unknown })?.name === 'string')) {
    throw new Error(`The key list ${file} is not a JSON array of {"name": ...} objects. ${howTo}`);
  }

  const keys = new Map<string, ImportMetadata | null>();
  for (const entry of parsed as Array<{ name: string; metadata?: unknown }>) {
    if (entry.name.startsWith(installationKeyPrefix())) {
      keys.set(entry.name, parseImportMetadata(entry.metadata));
    }
  }
  return keys;
}

function quoteArgument(text: string): string {
  return /^[\w./:@-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
