/**
 * Imports from a real Redis server holding atlassian-connect-express's Redis
 * store format: string key `<clientKey>:clientInfo` with the installed body
 * as JSON, written as ACE 11.5.3's adapter writes it (JSON.stringify).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImportCommand,
  randomEncryptionKey,
  randomSecret,
  readLocalInstallations,
  reportLine,
  reportStatus,
  startRedis,
  summaryLine,
  temporaryDirectory,
  tenantPayload,
  type Service,
} from './harness';

const ENCRYPTION_KEY = randomEncryptionKey();
const command = new ImportCommand(ENCRYPTION_KEY);
const directory = temporaryDirectory('redis-test');
const persistTo = join(directory, 'state');

// A clientKey with colons of its own, to show that only the `:clientInfo` suffix is cut off.
const tenants = [
  tenantPayload(41),
  tenantPayload(42, { clientKey: 'ari:cloud:bitbucket::app/{8a1f1f8e-4e4b-4ad8-9d3e-0f5c2f1c3b11}/sample' }),
];
const mismatched = tenantPayload(43);
const notJsonSecret = randomSecret();

let redis: Service | undefined;

beforeAll(async () => {
  redis = await startRedis();
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    for (const tenant of tenants) {
      await client.set(`${tenant.clientKey}:clientInfo`, JSON.stringify(tenant));
    }
    // Filed under another clientKey than its payload names.
    await client.set('connection:4300:clientInfo', JSON.stringify(mismatched));
    await client.set('connection:44:clientInfo', `{"sharedSecret":"${notJsonSecret}"`);
    // Not a string value, so GET fails with WRONGTYPE.
    await client.hSet('connection:45:clientInfo', { sharedSecret: randomSecret() });
    // ACE's other keys: another setting of a tenant and a Forge installation mapping.
    await client.set(`${tenants[0]!.clientKey}:colour`, JSON.stringify('blue'));
    await client.set('installation:forge-1;', tenants[0]!.clientKey);
  } finally {
    client.destroy();
  }
});

afterAll(async () => {
  await redis?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('import from an ACE Redis store', () => {
  const args = () => ['--from', 'ace-redis', '--url', redis!.url, '--persist-to', persistTo];

  it('imports valid keys and skips invalid ones', async () => {
    const result = await command.run(args());
    expect(result.code).toBe(1);
    for (const tenant of tenants) {
      expect(reportStatus(result.stdout, tenant.clientKey)).toBe('imported');
    }
    expect(reportLine(result.stdout, 'connection:4300')).toMatch(
      /^skipped .*the row is filed under clientKey "connection:4300" but its payload names "connection:1043"\.$/,
    );
    expect(reportLine(result.stdout, 'connection:44')).toMatch(/^skipped .*the value is not valid JSON\.$/);
    expect(reportLine(result.stdout, 'connection:45')).toMatch(/^skipped .*the key does not hold a string value\.$/);
    expect(summaryLine(result.stdout)).toBe('Summary: 5 rows: 2 imported, 0 unchanged, 0 kept, 0 ignored, 3 skipped.');
  });

  it('stores the payloads with their secrets', async () => {
    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    expect([...stored.keys()].sort()).toEqual(tenants.map((tenant) => tenant.clientKey).sort());
    for (const tenant of tenants) {
      expect(stored.get(tenant.clientKey)?.record.sharedSecret).toBe(tenant.sharedSecret);
      expect(stored.get(tenant.clientKey)?.metadata?.importedFrom).toBe('ace-redis');
    }
  });

  it('second run changes nothing', async () => {
    const result = await command.run(args());
    expect(summaryLine(result.stdout)).toBe('Summary: 5 rows: 0 imported, 2 unchanged, 0 kept, 0 ignored, 3 skipped.');
  });

  it('prints no shared secret', () => {
    const output = command.outputs.join('\n');
    const secrets = [...tenants, mismatched].map((tenant) => tenant.sharedSecret).concat(notJsonSecret);
    for (const secret of secrets) {
      expect(output.includes(secret), 'a shared secret appears in the output').toBe(false);
    }
  });
});
