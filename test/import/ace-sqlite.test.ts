/**
 * End to end from atlassian-connect-express to the worker: tenants installed
 * into a real ACE app (SQLite store) are imported into wrangler dev's local
 * KV, and the worker then accepts requests and re-installs signed with the
 * secrets ACE held.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTALLATION_MEMORY_CACHE_SECONDS } from '../../src/connect/installations';
import { DEVELOPMENT_ENCRYPTION_KEY } from '../../src/connect/secret-cipher';
import { startDevStack, type DevStack } from '../../tools/dev-stack';
import {
  getSigned,
  ImportCommand,
  postInstalled,
  randomSecret,
  readLocalInstallations,
  reportLine,
  reportStatus,
  signRequestToken,
  startAceApp,
  summaryLine,
  temporaryDirectory,
  tenantPayload,
  type Service,
  type TenantPayload,
} from './harness';

// wrangler dev under tools/dev-stack.ts runs with the public development key,
// so the records it reads must be encrypted with that key.
const ENCRYPTION_KEY = DEVELOPMENT_ENCRYPTION_KEY;

const directory = temporaryDirectory('ace-sqlite');
const sqliteFile = join(directory, 'ace.sqlite');
const persistTo = join(directory, 'state');
const command = new ImportCommand(ENCRYPTION_KEY);
const importArgs = ['--from', 'ace-sqlite', '--file', sqliteFile, '--persist-to', persistTo];

const tenants: TenantPayload[] = [tenantPayload(1), tenantPayload(2), tenantPayload(3)];
const secretBeforeRotation = tenants[0]!.sharedSecret;

/** Rows ACE stores without complaint but the framework's install checks reject, with the reason expected. */
const badTenants: Array<{ payload: Record<string, unknown>; reason: string }> = [
  { payload: withoutField(tenantPayload(11), 'sharedSecret'), reason: 'sharedSecret is missing' },
  { payload: tenantPayload(12, { key: 'another-app' }), reason: 'is not this app\'s key "bitbucket-connect-workers-sample"' },
  { payload: tenantPayload(13, { clientKey: 'connection 13' }), reason: 'clientKey may contain only printable ASCII characters without spaces' },
  { payload: tenantPayload(14, { baseApiUrl: 'https://api.bitbucket.example' }), reason: 'baseApiUrl origin https://api.bitbucket.example' },
];
const brokenJsonSecret = randomSecret();
const secretsSeen: string[] = [secretBeforeRotation, brokenJsonSecret];

let ace: Service | undefined;

function withoutField(payload: TenantPayload, field: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...payload };
  delete copy[field];
  return copy;
}

beforeAll(async () => {
  ace = await startAceApp({ store: { adapter: 'sequelize', dialect: 'sqlite', storage: sqliteFile } });

  for (const tenant of tenants) {
    expect(await postInstalled(ace.url, tenant)).toBe(204);
  }

  // A re-install on ACE, signed with the old secret, rotates the first tenant's secret in ACE's store.
  tenants[0] = { ...tenants[0]!, sharedSecret: randomSecret() };
  expect(await postInstalled(ace.url, tenants[0], secretBeforeRotation)).toBe(204);

  for (const bad of badTenants) {
    expect(await postInstalled(ace.url, bad.payload)).toBe(204);
  }
  await ace.stop();
  ace = undefined;

  // Rows ACE itself never writes: a clientInfo value that is not JSON, and another app setting.
  const database = new Database(sqliteFile);
  const insert = database.prepare('INSERT INTO "AddonSettings" ("clientKey", "key", "val") VALUES (?, ?, ?)');
  insert.run('connection:broken', 'clientInfo', `{"sharedSecret": "${brokenJsonSecret}"`);
  insert.run(tenants[1]!.clientKey, 'colour', JSON.stringify('blue'));
  database.close();

  secretsSeen.push(...tenants.map((tenant) => tenant.sharedSecret));
  secretsSeen.push(...badTenants.map((bad) => bad.payload.sharedSecret).filter((secret): secret is string => typeof secret === 'string'));
});

afterAll(async () => {
  await ace?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('import from an ACE SQLite store', () => {
  it('ACE verifies its rotated secret', async () => {
    // Sanity check of the source: ACE itself now accepts only the new secret.
    const started = await startAceApp({ store: { adapter: 'sequelize', dialect: 'sqlite', storage: sqliteFile } });
    try {
      const tenant = tenants[0]!;
      expect((await getSigned(started.url, '/whoami', tenant.clientKey, tenant.sharedSecret)).status).toBe(200);
      // ACE 11.5.3 responds to a token with a bad signature with 400.
      expect((await getSigned(started.url, '/whoami', tenant.clientKey, secretBeforeRotation)).status).toBe(400);
    } finally {
      await started.stop();
    }
  });

  it('dry run reports rows and writes nothing', async () => {
    const result = await command.run([...importArgs, '--dry-run']);
    expect(result.code).toBe(1);
    for (const tenant of tenants) {
      expect(reportLine(result.stdout, tenant.clientKey)).toMatch(/^would import/);
    }
    expect(summaryLine(result.stdout)).toBe(
      'Summary (dry run, nothing written): 8 rows: 3 would be imported, 0 unchanged, 0 kept, 0 ignored, 5 skipped.',
    );
    expect(existsSync(persistTo)).toBe(false);
  });

  it('imports valid rows and skips invalid ones', async () => {
    const result = await command.run(importArgs);
    expect(result.code).toBe(1);
    for (const tenant of tenants) {
      expect(reportStatus(result.stdout, tenant.clientKey)).toBe('imported');
    }
    for (const bad of badTenants) {
      const line = result.stdout.split('\n').find((candidate) => candidate.includes(bad.reason));
      expect(line, bad.reason).toMatch(/^skipped/);
    }
    expect(reportLine(result.stdout, 'connection:broken')).toMatch(/^skipped .*: val is not valid JSON\.$/);
    expect(summaryLine(result.stdout)).toBe('Summary: 8 rows: 3 imported, 0 unchanged, 0 kept, 0 ignored, 5 skipped.');
  });

  it('stores the records ACE held', async () => {
    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    expect([...stored.keys()].sort()).toEqual(tenants.map((tenant) => tenant.clientKey).sort());
    for (const tenant of tenants) {
      const entry = stored.get(tenant.clientKey)!;
      expect(entry.record.sharedSecret).toBe(tenant.sharedSecret);
      expect(entry.record.state).toBe('installed');
      expect(entry.record.principal).toEqual(tenant.principal);
      expect(entry.record.baseApiUrl).toBe('https://api.bitbucket.org');
      expect(entry.metadata?.importedFrom).toBe('ace-sqlite');
      expect(entry.metadata?.sourceUpdatedAt).toBeNull();
    }
  });

  it('second run changes nothing', async () => {
    const result = await command.run(importArgs);
    expect(result.code).toBe(1);
    for (const tenant of tenants) {
      expect(reportStatus(result.stdout, tenant.clientKey)).toBe('unchanged');
    }
    expect(summaryLine(result.stdout)).toBe('Summary: 8 rows: 0 imported, 3 unchanged, 0 kept, 0 ignored, 5 skipped.');
  });

  describe('on the worker', () => {
    let stack: DevStack | undefined;
    const workerLines: string[] = [];

    beforeAll(async () => {
      stack = await startDevStack({ persistTo, log: (line) => workerLines.push(line), showWorkerOutput: true });
    });

    afterAll(async () => {
      await stack?.stop();
    });

    it('accepts tokens signed with imported secrets', async () => {
      for (const tenant of tenants) {
        const response = await getSigned(stack!.appUrl, '/configure', tenant.clientKey, tenant.sharedSecret);
        expect(response.status, tenant.clientKey).toBe(200);
        expect(await response.text()).toContain(tenant.principal.username);
      }
    });

    it('rejects the secret ACE rotated away', async () => {
      const response = await getSigned(stack!.appUrl, '/configure', tenants[0]!.clientKey, secretBeforeRotation);
      expect(response.status).toBe(401);
    });

    it('re-install signed with an imported secret rotates it', async () => {
      const tenant = tenants[1]!;
      const rotated = { ...tenant, sharedSecret: randomSecret() };
      secretsSeen.push(rotated.sharedSecret);

      expect(await postInstalled(stack!.appUrl, rotated, tenant.sharedSecret)).toBe(204);
      expect((await getSigned(stack!.appUrl, '/configure', tenant.clientKey, tenant.sharedSecret)).status).toBe(401);
      expect((await getSigned(stack!.appUrl, '/configure', tenant.clientKey, rotated.sharedSecret)).status).toBe(200);
      await expect.poll(() => workerLines.some((line) => line.includes('"event":"installed"') && line.includes('"kind":"reinstall"'))).toBe(true);
      tenants[1] = rotated;
    });

    it('rejects a re-install signed with the wrong secret', async () => {
      const tenant = tenants[2]!;
      const forged = { ...tenant, sharedSecret: randomSecret() };
      secretsSeen.push(forged.sharedSecret);
      expect(await postInstalled(stack!.appUrl, forged, forged.sharedSecret)).toBe(401);
      expect((await getSigned(stack!.appUrl, '/configure', tenant.clientKey, tenant.sharedSecret)).status).toBe(200);
    });

    it('re-run keeps the record the worker wrote', async () => {
      const result = await command.run(importArgs);
      expect(result.code).toBe(1);
      expect(reportStatus(result.stdout, tenants[1]!.clientKey)).toBe('kept');
      expect(reportLine(result.stdout, tenants[1]!.clientKey)).toContain('--force overwrites it');
      expect(reportStatus(result.stdout, tenants[0]!.clientKey)).toBe('unchanged');
      expect(summaryLine(result.stdout)).toBe('Summary: 8 rows: 0 imported, 2 unchanged, 1 kept, 0 ignored, 5 skipped.');

      const tenant = tenants[1]!;
      expect((await getSigned(stack!.appUrl, '/configure', tenant.clientKey, tenant.sharedSecret)).status).toBe(200);
    });

    it('--force puts the source row back', async () => {
      const result = await command.run([...importArgs, '--force']);
      expect(result.code).toBe(1);
      expect(reportLine(result.stdout, tenants[1]!.clientKey)).toMatch(/^imported .*overwrote the stored record \(--force\)/);

      // ACE's store still contains the secret from before the worker's re-install.
      const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
      expect(stored.get(tenants[1]!.clientKey)?.record.sharedSecret).not.toBe(tenants[1]!.sharedSecret);
      // The worker keeps a record it read for up to INSTALLATION_MEMORY_CACHE_SECONDS, so the
      // import, which writes KV from outside, shows within that time.
      const status = async () => {
        const token = signRequestToken(tenants[1]!.clientKey, tenants[1]!.sharedSecret, 'GET', '/configure');
        return (await fetch(`${stack!.appUrl}/configure?jwt=${token}`)).status;
      };
      await expect.poll(status, { timeout: (INSTALLATION_MEMORY_CACHE_SECONDS + 5) * 1000, interval: 500 }).toBe(401);
    });
  });

  it('prints no shared secret', () => {
    const output = command.outputs.join('\n');
    expect(output.length).toBeGreaterThan(0);
    for (const secret of secretsSeen) {
      expect(output.includes(secret), 'a shared secret appears in the output').toBe(false);
    }
  });
});
