/**
 * atlassian-connect-express (ACE) stores, as written by its store adapters
 * (checked against atlassian-connect-express 11.5.3, lib/store):
 *
 * - Sequelize (SQLite, PostgreSQL): table `AddonSettings` with columns `id`,
 *   `clientKey`, `key` and `val`; the row with key `clientInfo` contains the
 *   whole `installed` body as JSON. ACE keeps no timestamps (the model has
 *   `timestamps: false`) and no uninstalled state.
 * - Redis: string key `<clientKey>:clientInfo` holding the same body as a
 *   JSON string.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { createClient } from 'redis';
import { describeUrl, parseStoredJson, quoteTableName, type Source, type SourceRow } from '../source';

/** ACE's settings key for the stored `installed` body. */
export const ACE_CLIENT_INFO_KEY = 'clientInfo';

/** ACE's default Sequelize table: the model `AddonSetting`, pluralised. */
export const ACE_DEFAULT_TABLE = 'AddonSettings';

const REDIS_KEY_SUFFIX = `:${ACE_CLIENT_INFO_KEY}`;
const REDIS_SCAN_BATCH = 200;
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

interface SettingsRow {
  readonly id?: unknown;
  readonly clientKey?: unknown;
  readonly val?: unknown;
}

export function openAceSqlite(file: string, table: string): Source {
  const tableName = quoteTableName(table);
  const database = new Database(file, { readonly: true, fileMustExist: true });
  return {
    description: `ACE SQLite store ${file}, table ${table}`,
    async *rows() {
      const rows = database.prepare(`SELECT * FROM ${tableName} WHERE "key" = ?`).all(ACE_CLIENT_INFO_KEY) as SettingsRow[];
      yield* settingsRows(rows, table);
    },
    async close() {
      database.close();
    },
  };
}

export async function openAcePostgres(url: string, table: string): Promise<Source> {
  const tableName = quoteTableName(table);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    description: `ACE PostgreSQL store ${describeUrl(url)}, table ${table}`,
    async *rows() {
      const result = await client.query<SettingsRow>(`SELECT * FROM ${tableName} WHERE "key" = $1`, [ACE_CLIENT_INFO_KEY]);
      yield* settingsRows(result.rows, table);
    },
    async close() {
      await client.end();
    },
  };
}

/** Orders rows by `id`, as ACE's lookups find the oldest row of a duplicated clientKey first. */
function* settingsRows(rows: SettingsRow[], table: string): Generator<SourceRow> {
  const ordered = [...rows].sort((left, right) => Number(left.id ?? 0) - Number(right.id ?? 0));
  for (const [index, row] of ordered.entries()) {
    const location = row.id === undefined ? `${table} row ${index + 1}` : `${table} id ${String(row.id)}`;
    const clientKey = typeof row.clientKey === 'string' ? row.clientKey : undefined;
    yield clientInfoRow(location, clientKey, row.val, 'val');
  }
}

export async function openAceRedis(url: string): Promise<Source> {
  const client = createClient({
    url,
    socket: { connectTimeout: REDIS_CONNECT_TIMEOUT_MS, reconnectStrategy: false },
  });
  // Without a listener, a connection error would be thrown from an event emitter; connect() rejects instead.
  client.on('error', () => undefined);
  await client.connect();
  return {
    description: `ACE Redis store ${describeUrl(url)}`,
    async *rows() {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: `*${REDIS_KEY_SUFFIX}`, COUNT: REDIS_SCAN_BATCH })) {
        keys.push(...batch.map(String));
      }
      keys.sort();

      for (const key of keys) {
        const clientKey = key.slice(0, -REDIS_KEY_SUFFIX.length);
        let value: string | null;
        try {
          value = await client.get(key);
        } catch {
          yield { location: `key ${key}`, clientKey, content: { kind: 'unreadable', reason: 'the key does not hold a string value.' } };
          continue;
        }
        yield clientInfoRow(`key ${key}`, clientKey, value, 'the value');
      }
    },
    async close() {
      client.destroy();
    },
  };
}

function clientInfoRow(location: string, clientKey: string | undefined, value: unknown, field: string): SourceRow {
  const parsed = parseStoredJson(value, field);
  if (!parsed.ok) {
    return { location, clientKey, content: { kind: 'unreadable', reason: parsed.reason } };
  }

  const payloadClientKey = (parsed.value as { clientKey?: unknown }).clientKey;
  if (clientKey !== undefined && typeof payloadClientKey === 'string' && payloadClientKey !== clientKey) {
    return {
      location,
      clientKey,
      content: { kind: 'unreadable', reason: `the row is filed under clientKey "${clientKey}" but its payload names "${payloadClientKey}".` },
    };
  }
  return { location, clientKey, content: { kind: 'payload', payload: parsed.value, state: 'installed' } };
}
