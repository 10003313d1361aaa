/**
 * Installation records in Workers KV: one per clientKey, written by the
 * lifecycle routes and read by request authentication. Key layout and TTLs
 * are documented in storage-keys.ts.
 *
 * Value shape of `installation:{clientKey}` (JSON, no TTL), version 2:
 * ```
 * { "version": 2, "clientKey", "key", "baseUrl", "baseApiUrl",
 *   "encryptedSharedSecret": { "kid", "iv", "ct" },
 *   "productType": "bitbucket", "principal": {...}, "user"?: {...}, "publicKey"?,
 *   "extra": {...unknown payload fields},
 *   "state": "installed" | "uninstalled",
 *   "installedAt", "updatedAt", "uninstalledAt"? (ISO 8601) }
 * ```
 * The sharedSecret is encrypted with AES-GCM (secret-cipher.ts), bound to the
 * record's KV key. Version 1 records, written before encryption existed,
 * contain `sharedSecret` in plain text. They are read as they are and
 * encrypted when the record is next written (re-install or uninstall).
 *
 * An uninstalled record keeps its sharedSecret: Bitbucket signs the next
 * install of the same clientKey with it.
 */
import { ConnectError } from './errors';
import { isRecord, type InstalledPayload, type Principal } from './installation-payload';
import { logEvent } from './log';
import { isEncryptedValue, type SecretCipher } from './secret-cipher';
import { installationCachePrefix, installationKey, installationKeyPrefix } from './storage-keys';

/** Version of the in-memory record shape. */
export const INSTALLATION_RECORD_VERSION = 1;

/** Version written to KV: 2 has the sharedSecret encrypted. */
export const STORED_RECORD_VERSION = 2;

/** Wait before the one retry of a failed KV write; KV allows one write per second per key. */
const KV_WRITE_RETRY_DELAY_MS = 1100;

export type InstallationState = 'installed' | 'uninstalled';

export interface InstallationRecord {
  readonly version: typeof INSTALLATION_RECORD_VERSION;
  readonly clientKey: string;
  readonly key: string;
  readonly sharedSecret: string;
  readonly baseUrl: string;
  readonly baseApiUrl: string;
  readonly productType: 'bitbucket';
  readonly principal: Principal;
  readonly user?: Readonly<Record<string, unknown>>;
  readonly publicKey?: string;
  readonly extra: Readonly<Record<string, unknown>>;
  readonly state: InstallationState;
  readonly installedAt: string;
  readonly updatedAt: string;
  readonly uninstalledAt?: string;
}

/** An installation that is currently installed; the only kind handlers see. */
export type Installation = InstallationRecord & { readonly state: 'installed' };

/** Builds the record for an install, keeping `installedAt` of an earlier one. */
export function recordFromPayload(
  payload: InstalledPayload,
  previous: InstallationRecord | null,
  now: Date,
): InstallationRecord {
  const timestamp = now.toISOString();
  return {
    version: INSTALLATION_RECORD_VERSION,
    clientKey: payload.clientKey,
    key: payload.key,
    sharedSecret: payload.sharedSecret,
    baseUrl: payload.baseUrl,
    baseApiUrl: payload.baseApiUrl,
    productType: payload.productType,
    principal: payload.principal,
    ...(payload.user === undefined ? {} : { user: payload.user }),
    ...(payload.publicKey === undefined ? {} : { publicKey: payload.publicKey }),
    extra: payload.extra,
    state: 'installed',
    installedAt: previous?.state === 'installed' ? previous.installedAt : timestamp,
    updatedAt: timestamp,
  };
}

/** Supplies the cipher when a secret is first read or written, so routes without secrets work without a key. */
export type CipherSource = () => SecretCipher;

/**
 * How long request authentication reuses a record read in this isolate, in
 * seconds. KV itself may serve a value up to 60 s old in other locations, so
 * a shorter memory copy adds no new kind of staleness, and it saves the KV
 * read on most requests. Writes through the store drop the copy in this isolate, and
 * the lifecycle routes always read KV.
 */
export const INSTALLATION_MEMORY_CACHE_SECONDS = 10;

/** Records kept in memory per KV namespace. */
const INSTALLATION_MEMORY_CACHE_SIZE = 1000;

interface MemoryEntry {
  readonly record: InstallationRecord | null;
  readonly expiresAtMs: number;
}

/**
 * Per-isolate copies, keyed by the KV binding so that separate namespaces
 * never share entries. NOTE: an app that wraps `env.CONNECT_KV` in a new
 * object per request gets a new, empty cache each time; wrap it once.
 * Concurrent misses each read KV: sharing one read promise across requests
 * made some waiting requests fail with workerd's own 500 under load.
 */
const memoryCaches = new WeakMap<KVNamespace, Map<string, MemoryEntry>>();

export class InstallationStore {
  constructor(
    private readonly kv: KVNamespace,
    private readonly cipher: CipherSource,
  ) {}

  /**
   * Reads a record. A stored value that is not a valid record, or whose
   * secret fails to decrypt, is an error rather than "absent": treating it as
   * absent would let an unsigned first install replace it.
   */
  async get(clientKey: string): Promise<InstallationRecord | null> {
    let text: string | null;
    try {
      text = await this.kv.get(installationKey(clientKey), 'text');
    } catch (error) {
      throw new ConnectError('storage_failed', 'Reading the installation from KV failed.', {
        clientKey,
        cause: error,
        reason: `kv_read:${errorName(error)}`,
      });
    }

    if (text === null) {
      return null;
    }
    return decodeInstallationRecord(text, clientKey, this.cipher);
  }

  /**
   * Reads a record through this isolate's memory copy, for request
   * authentication. Absent records are remembered as well, so a flood of
   * tokens naming an unknown clientKey costs one KV read per interval.
   */
  async getCached(clientKey: string): Promise<InstallationRecord | null> {
    const cache = this.memoryCache();
    const entry = cache.get(clientKey);
    const now = Date.now();
    if (entry !== undefined && entry.expiresAtMs > now) {
      return entry.record;
    }

    const record = await this.get(clientKey);
    if (cache.size >= INSTALLATION_MEMORY_CACHE_SIZE) {
      cache.clear();
    }
    cache.set(clientKey, { record, expiresAtMs: now + INSTALLATION_MEMORY_CACHE_SECONDS * 1000 });
    return record;
  }

  async put(record: InstallationRecord): Promise<void> {
    this.memoryCache().delete(record.clientKey);
    await this.write(record.clientKey, await encodeInstallationRecord(record, this.cipher()));
    this.memoryCache().delete(record.clientKey);
  }

  private memoryCache(): Map<string, MemoryEntry> {
    let cache = memoryCaches.get(this.kv);
    if (cache === undefined) {
      cache = new Map();
      memoryCaches.set(this.kv, cache);
    }
    return cache;
  }

  /** Marks an installation uninstalled, keeping its secret, and deletes its cached data. */
  async markUninstalled(record: InstallationRecord, now: Date): Promise<InstallationRecord> {
    const timestamp = now.toISOString();
    const uninstalled: InstallationRecord = {
      ...record,
      state: 'uninstalled',
      updatedAt: timestamp,
      uninstalledAt: timestamp,
    };
    await this.put(uninstalled);
    await this.deleteCachedData(record.clientKey);
    return uninstalled;
  }

  /**
   * Deletes everything stored under the installation's cache prefix (access
   * tokens and other derived data). Failures are logged: stale cache entries
   * expire by their TTL and are unusable once the installation is uninstalled.
   */
  async deleteCachedData(clientKey: string): Promise<number> {
    const prefix = installationCachePrefix(clientKey);
    let deleted = 0;
    try {
      let cursor: string | undefined;
      do {
        const page = await this.kv.list({ prefix, ...(cursor === undefined ? {} : { cursor }) });
        await Promise.all(page.keys.map((entry) => this.kv.delete(entry.name)));
        deleted += page.keys.length;
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor !== undefined);
    } catch (error) {
      logEvent('warn', 'cache_delete_failed', { clientKey, reason: errorName(error) });
    }
    return deleted;
  }

  /** Lists the clientKeys of all stored records, for tooling. */
  async listClientKeys(): Promise<string[]> {
    const clientKeys: string[] = [];
    const prefix = installationKeyPrefix();
    let cursor: string | undefined;
    do {
      const page = await this.kv.list({ prefix, ...(cursor === undefined ? {} : { cursor }) });
      for (const entry of page.keys) {
        clientKeys.push(decodeURIComponent(entry.name.slice(prefix.length)));
      }
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor !== undefined);
    return clientKeys;
  }

  /** Writes with one delayed retry, since KV rejects a second write to a key within a second. */
  private async write(clientKey: string, value: string): Promise<void> {
    const key = installationKey(clientKey);
    try {
      await this.kv.put(key, value);
      return;
    } catch (error) {
      logEvent('warn', 'kv_write_retry', { clientKey, reason: errorName(error) });
    }

    await new Promise((resolve) => setTimeout(resolve, KV_WRITE_RETRY_DELAY_MS));
    try {
      await this.kv.put(key, value);
    } catch (error) {
      throw new ConnectError('storage_failed', 'Writing the installation to KV failed; Bitbucket will retry.', {
        clientKey,
        cause: error,
        reason: `kv_write:${errorName(error)}`,
      });
    }
  }
}

export function isInstalled(record: InstallationRecord | null): record is Installation {
  return record?.state === 'installed';
}

/** Serializes a record for KV with its sharedSecret encrypted; also used for bulk files. */
export async function encodeInstallationRecord(record: InstallationRecord, cipher: SecretCipher): Promise<string> {
  const { sharedSecret, version: _version, ...rest } = record;
  const encryptedSharedSecret = await cipher.encrypt(sharedSecret, installationKey(record.clientKey));
  return JSON.stringify({ ...rest, version: STORED_RECORD_VERSION, encryptedSharedSecret });
}

/** Parses a stored record of version 1 (plain secret) or 2 (encrypted secret). */
export async function decodeInstallationRecord(
  text: string,
  clientKey: string,
  cipher: CipherSource,
): Promise<InstallationRecord> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!isRecord(value) || !hasRecordFields(value, clientKey)) {
    throw new ConnectError('storage_failed', 'The stored installation record is invalid.', {
      clientKey,
      reason: 'record_invalid',
    });
  }

  if (value.version === INSTALLATION_RECORD_VERSION && typeof value.sharedSecret === 'string') {
    return value as unknown as InstallationRecord;
  }
  if (value.version === STORED_RECORD_VERSION && isEncryptedValue(value.encryptedSharedSecret)) {
    const { encryptedSharedSecret, ...rest } = value;
    let sharedSecret: string;
    try {
      sharedSecret = await cipher().decrypt(encryptedSharedSecret, installationKey(clientKey));
    } catch (error) {
      if (error instanceof ConnectError) {
        throw new ConnectError(error.code, error.message, { clientKey, cause: error, reason: 'secret_unreadable' });
      }
      throw error;
    }
    return { ...rest, version: INSTALLATION_RECORD_VERSION, sharedSecret } as unknown as InstallationRecord;
  }

  throw new ConnectError('storage_failed', 'The stored installation record has an unknown version.', {
    clientKey,
    reason: 'record_version',
  });
}

function hasRecordFields(value: Record<string, unknown>, clientKey: string): boolean {
  return (
    value.clientKey === clientKey &&
    typeof value.baseUrl === 'string' &&
    typeof value.baseApiUrl === 'string' &&
    (value.state === 'installed' || value.state === 'uninstalled')
  );
}

/** Names an error for a log line without its message, which may echo input. */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
