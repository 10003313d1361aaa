/**
 * The bulk-file target for deployed namespaces, checked against the real
 * wrangler CLI on local storage: the file that `wrangler kv bulk put`
 * uploads, and the `wrangler kv key list` output from which a re-run learns
 * what the namespace already contains. Also the JSON Lines source and the usage errors.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../src/connect/allow-list';
import { validateInstalledPayload } from '../../src/connect/installation-payload';
import { InstallationStore, recordFromPayload } from '../../src/connect/installations';
import { createSecretCipher, DEVELOPMENT_ENCRYPTION_KEY } from '../../src/connect/secret-cipher';
import {
  ImportCommand,
  randomEncryptionKey,
  randomSecret,
  readLocalInstallations,
  reportLine,
  reportStatus,
  runWrangler,
  SAMPLE_APP_KEY,
  summaryLine,
  temporaryDirectory,
  tenantPayload,
} from './harness';

const ENCRYPTION_KEY = randomEncryptionKey();
const command = new ImportCommand(ENCRYPTION_KEY);
const directory = temporaryDirectory('bulk-test');
const jsonlFile = join(directory, 'installations.jsonl');
const bulkFile = join(directory, 'bulk.json');
const keyListFile = join(directory, 'keys.json');
const persistTo = join(directory, 'state');
const keyFile = join(directory, 'encryption.key');

const tenants = [tenantPayload(51), tenantPayload(52), tenantPayload(53)];
const rotatedSecret = randomSecret();
const args = ['--from', 'jsonl', '--file', jsonlFile, '--target', 'bulk-file', '--out', bulkFile, '--existing', keyListFile];

beforeAll(() => {
  writeFileSync(jsonlFile, `${tenants.map((tenant) => JSON.stringify(tenant)).join('\n')}\n\n`);
  writeFileSync(keyListFile, '[]\n');
  writeFileSync(keyFile, `${ENCRYPTION_KEY}\n`);
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('bulk-file target', () => {
  it('writes a private file and prints the upload command', async () => {
    const result = await command.run(args);
    expect(result.code).toBe(0);
    expect(summaryLine(result.stdout)).toBe('Summary: 3 rows: 3 imported, 0 unchanged, 0 kept, 0 ignored, 0 skipped.');
    expect(result.stdout).toContain(`npx wrangler kv bulk put --remote --binding CONNECT_KV ${bulkFile}`);
    expect(statSync(bulkFile).mode & 0o777).toBe(0o600);

    const entries = JSON.parse(readFileSync(bulkFile, 'utf8')) as Array<{ key: string; value: string; metadata: unknown }>;
    expect(entries.map((entry) => entry.key).sort()).toEqual(tenants.map((tenant) => `installation:${encodeURIComponent(tenant.clientKey)}`).sort());
  });

  it('keeps secrets encrypted in the file', () => {
    const text = readFileSync(bulkFile, 'utf8');
    for (const tenant of tenants) {
      expect(text.includes(tenant.sharedSecret)).toBe(false);
    }
  });

  it('uploads with wrangler kv bulk put', async () => {
    await runWrangler(['kv', 'bulk', 'put', '--local', '--persist-to', persistTo, '--binding', 'CONNECT_KV', bulkFile]);
    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    expect(stored.size).toBe(3);
    for (const tenant of tenants) {
      expect(stored.get(tenant.clientKey)?.record.sharedSecret).toBe(tenant.sharedSecret);
      expect(stored.get(tenant.clientKey)?.metadata?.importedFrom).toBe('jsonl');
    }
  });

  it('re-run with the key list changes nothing', async () => {
    await listKeysInto(keyListFile);
    const result = await command.run(args);
    expect(summaryLine(result.stdout)).toBe('Summary: 3 rows: 0 imported, 3 unchanged, 0 kept, 0 ignored, 0 skipped.');
    expect(JSON.parse(readFileSync(bulkFile, 'utf8'))).toEqual([]);
  });

  it('keeps a key the worker wrote', async () => {
    await writeAsWorker(tenants[0]!.clientKey, rotatedSecret);
    await listKeysInto(keyListFile);

    const result = await command.run(args);
    expect(result.code).toBe(0);
    expect(reportStatus(result.stdout, tenants[0]!.clientKey)).toBe('kept');
    expect(reportLine(result.stdout, tenants[0]!.clientKey)).toContain('--force overwrites it');
    expect(JSON.parse(readFileSync(bulkFile, 'utf8'))).toEqual([]);
  });

  it('--force writes it into the file', async () => {
    const result = await command.run([...args, '--force']);
    expect(reportStatus(result.stdout, tenants[0]!.clientKey)).toBe('imported');
    const entries = JSON.parse(readFileSync(bulkFile, 'utf8')) as Array<{ key: string }>;
    expect(entries.map((entry) => entry.key)).toEqual([`installation:${encodeURIComponent(tenants[0]!.clientKey)}`]);
  });

  it('reads the key from --encryption-key-file', async () => {
    const result = await command.run([...args, '--dry-run', '--encryption-key-file', keyFile], { CONNECT_ENCRYPTION_KEY: '' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('encryption key id test (--encryption-key-file)');
  });
});

describe('JSON Lines source', () => {
  it('skips bad lines and goes on', async () => {
    const file = join(directory, 'mixed.jsonl');
    const good = tenantPayload(61);
    const lines = [
      JSON.stringify(good),
      '{"clientKey": "connection:62", "sharedSecret": ',
      JSON.stringify(tenantPayload(63, { baseUrl: 'https://bitbucket.example' })),
      JSON.stringify([good]),
      JSON.stringify({ ...tenantPayload(64), clientKey: good.clientKey }),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);

    const result = await command.run(['--from', 'jsonl', '--file', file, '--target', 'bulk-file', '--out', join(directory, 'mixed.json'), '--existing', keyListFile, '--dry-run']);
    expect(result.code).toBe(1);
    const report = result.stdout.split('\n');
    expect(report.find((line) => line.includes('[line 1]'))).toMatch(/^would import/);
    expect(report.find((line) => line.includes('[line 2]'))).toMatch(/^skipped .*the line is not valid JSON\.$/);
    expect(report.find((line) => line.includes('[line 3]'))).toMatch(/^skipped .*baseUrl origin https:\/\/bitbucket\.example .*ALLOWED_BASE_URLS/);
    expect(report.find((line) => line.includes('[line 4]'))).toMatch(/^skipped .*the line is not a JSON object\.$/);
    expect(report.find((line) => line.includes('[line 5]'))).toMatch(/^skipped .*duplicate clientKey: line 1 already provided it/);
  });
});

describe('usage errors', () => {
  it('requires the key list for bulk files', async () => {
    const result = await command.run(['--from', 'jsonl', '--file', jsonlFile, '--target', 'bulk-file', '--out', bulkFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--target bulk-file needs --out <file> and --existing <file>');
  });

  it('rejects the development key for bulk files', async () => {
    const result = await command.run(args, { CONNECT_ENCRYPTION_KEY: DEVELOPMENT_ENCRYPTION_KEY });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the public development key');
  });

  it('requires an encryption key', async () => {
    const result = await command.run(args, { CONNECT_ENCRYPTION_KEY: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('CONNECT_ENCRYPTION_KEY is not set');
  });

  it('rejects a malformed encryption key', async () => {
    const result = await command.run(args, { CONNECT_ENCRYPTION_KEY: 'k1:c2hvcnQ=' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('must be 32 bytes, not 5');
  });

  it('reports a missing table', async () => {
    const file = join(directory, 'other.sqlite');
    const database = new Database(file);
    database.exec('CREATE TABLE unrelated (id INTEGER)');
    database.close();

    const result = await command.run(['--from', 'ace-sqlite', '--file', file, '--target', 'bulk-file', '--out', bulkFile, '--existing', keyListFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('The import stopped (SqliteError SQLITE_ERROR)');
    expect(result.stderr).toContain('Check --table');
  });

  it('rejects an unknown source', async () => {
    const result = await command.run(['--from', 'mongodb']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--from "mongodb" is not one of ace-sqlite, ace-postgres, ace-redis, spring-postgres, jsonl.');
  });
});

describe('import output', () => {
  it('prints no shared secret', () => {
    const output = command.outputs.join('\n');
    for (const secret of [...tenants.map((tenant) => tenant.sharedSecret), rotatedSecret]) {
      expect(output.includes(secret), 'a shared secret appears in the output').toBe(false);
    }
  });
});

async function listKeysInto(file: string): Promise<void> {
  const listing = await runWrangler(['kv', 'key', 'list', '--local', '--persist-to', persistTo, '--binding', 'CONNECT_KV', '--prefix', 'installation:']);
  writeFileSync(file, listing);
}

/** Writes a record the way the worker's lifecycle route does: InstallationStore.put, no KV metadata. */
async function writeAsWorker(clientKey: string, sharedSecret: string): Promise<void> {
  const miniflare = new Miniflare({
    modules: true,
    script: 'export default {}',
    kvNamespaces: { CONNECT_KV: '00000000000000000000000000000000' },
    kvPersist: join(persistTo, 'v3', 'kv'),
  });
  try {
    const kv = (await miniflare.getKVNamespace('CONNECT_KV')) as unknown as KVNamespace;
    const cipher = createSecretCipher(ENCRYPTION_KEY);
    const payload = validateInstalledPayload(
      { ...tenants[0], clientKey, sharedSecret },
      { appKey: SAMPLE_APP_KEY, allowList: parseAllowList(undefined) },
    );
    await new InstallationStore(kv, () => cipher).put(recordFromPayload(payload, null, new Date()));
  } finally {
    await miniflare.dispose();
  }
}
