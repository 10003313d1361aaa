/**
 * Imports from a real PostgreSQL server: atlassian-connect-express's table,
 * created and filled by ACE itself over HTTP installs, and
 * atlassian-connect-spring-boot's atlassian_host table with the columns of
 * its Liquibase changelog.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../src/connect/allow-list';
import { validateInstalledPayload } from '../../src/connect/installation-payload';
import { InstallationStore, recordFromPayload } from '../../src/connect/installations';
import { createSecretCipher } from '../../src/connect/secret-cipher';
import {
  ImportCommand,
  postInstalled,
  randomEncryptionKey,
  randomSecret,
  readLocalInstallations,
  reportLine,
  reportStatus,
  SAMPLE_APP_KEY,
  startAceApp,
  startPostgres,
  summaryLine,
  temporaryDirectory,
  tenantPayload,
  type Service,
} from './harness';

const ENCRYPTION_KEY = randomEncryptionKey();
const command = new ImportCommand(ENCRYPTION_KEY);
const directory = temporaryDirectory('postgres-test');
const secretsSeen: string[] = [];

let postgres: Service | undefined;

beforeAll(async () => {
  postgres = await startPostgres();
});

afterAll(async () => {
  await postgres?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('import from an ACE PostgreSQL store', () => {
  const persistTo = join(directory, 'ace-state');
  const tenants = [tenantPayload(21), tenantPayload(22)];
  const offList = tenantPayload(23, { baseApiUrl: 'https://api.bitbucket.example' });
  const args = () => ['--from', 'ace-postgres', '--url', postgres!.url, '--persist-to', persistTo];

  beforeAll(async () => {
    secretsSeen.push(...tenants.map((tenant) => tenant.sharedSecret), offList.sharedSecret);
    const ace = await startAceApp({ store: { adapter: 'sequelize', dialect: 'postgres', url: postgres!.url } });
    try {
      for (const payload of [...tenants, offList]) {
        expect(await postInstalled(ace.url, payload)).toBe(204);
      }
    } finally {
      await ace.stop();
    }
  });

  it('stores val as a json column', async () => {
    // Sequelize's JSON type: the driver returns objects, not text, so the import reads both.
    const client = new pg.Client({ connectionString: postgres!.url });
    await client.connect();
    try {
      const result = await client.query<{ data_type: string }>(
        `SELECT data_type FROM information_schema.columns WHERE table_name = 'AddonSettings' AND column_name = 'val'`,
      );
      expect(result.rows[0]?.data_type).toBe('json');
    } finally {
      await client.end();
    }
  });

  it('imports valid rows and skips invalid ones', async () => {
    const result = await command.run(args());
    expect(result.code).toBe(1);
    for (const tenant of tenants) {
      expect(reportStatus(result.stdout, tenant.clientKey)).toBe('imported');
    }
    expect(reportLine(result.stdout, offList.clientKey)).toMatch(/^skipped .*baseApiUrl origin https:\/\/api\.bitbucket\.example .*ALLOWED_BASE_URLS/);
    expect(summaryLine(result.stdout)).toBe('Summary: 3 rows: 2 imported, 0 unchanged, 0 kept, 0 ignored, 1 skipped.');

    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    expect(stored.size).toBe(2);
    for (const tenant of tenants) {
      expect(stored.get(tenant.clientKey)?.record.sharedSecret).toBe(tenant.sharedSecret);
      expect(stored.get(tenant.clientKey)?.record.principal).toEqual(tenant.principal);
    }
  });

  it('second run changes nothing', async () => {
    const result = await command.run(args());
    expect(summaryLine(result.stdout)).toBe('Summary: 3 rows: 0 imported, 2 unchanged, 0 kept, 0 ignored, 1 skipped.');
  });

  it('hides the password of an unreachable store', async () => {
    const password = 'pa55word-never-printed';
    const url = new URL(postgres!.url);
    url.password = password;
    url.port = '1';
    const result = await command.run(['--from', 'ace-postgres', '--url', url.toString(), '--persist-to', persistTo]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Opening the ace-postgres source failed');
    expect(`${result.stdout}${result.stderr}`).not.toContain(password);
  });
});

describe('import from a spring-boot PostgreSQL store', () => {
  const persistTo = join(directory, 'spring-state');
  const args = () => ['--from', 'spring-postgres', '--url', postgres!.url, '--persist-to', persistTo];
  // Timestamps without a time zone are read in the import's time zone, as the JVM wrote them in its own.
  const environment = { TZ: 'UTC' };

  const hosts = {
    installed: { client_key: 'connection:31', shared_secret: randomSecret(), product_type: 'bitbucket', addon_installed: true },
    uninstalled: { client_key: 'connection:32', shared_secret: randomSecret(), product_type: 'bitbucket', addon_installed: false },
    jira: { client_key: 'jira-site-1', shared_secret: randomSecret(), product_type: 'jira', addon_installed: true },
    shortSecret: { client_key: 'connection:34', shared_secret: 'too-short', product_type: 'bitbucket', addon_installed: true },
    otherHost: { client_key: 'connection:35', shared_secret: randomSecret(), product_type: 'bitbucket', addon_installed: true },
    reinstalled: { client_key: 'connection:36', shared_secret: randomSecret(), product_type: 'bitbucket', addon_installed: true },
  };
  const reinstalledSecret = randomSecret();

  async function query(sql: string, values: unknown[] = []): Promise<void> {
    const client = new pg.Client({ connectionString: postgres!.url });
    await client.connect();
    try {
      await client.query(sql, values);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    secretsSeen.push(...Object.values(hosts).map((host) => host.shared_secret), reinstalledSecret);

    // The columns of the changelog's createTable (changeset 1.0.1), where Liquibase's
    // datetime becomes PostgreSQL's timestamp without time zone, plus display_url
    // standing for a column added later.
    await query(`CREATE TABLE atlassian_host (
      client_key varchar(255) PRIMARY KEY NOT NULL,
      public_key varchar(255),
      shared_secret varchar(255) NOT NULL,
      base_url varchar(255) NOT NULL,
      product_type varchar(255),
      description varchar(255),
      service_entitlement_number varchar(255),
      addon_installed boolean,
      created_date timestamp,
      last_modified_date timestamp,
      created_by varchar(255),
      last_modified_by varchar(255),
      display_url varchar(255)
    )`);
    for (const host of Object.values(hosts)) {
      const baseUrl = host === hosts.otherHost ? 'https://bitbucket.example' : 'https://bitbucket.org';
      await query(
        `INSERT INTO atlassian_host (client_key, public_key, shared_secret, base_url, product_type, description,
           addon_installed, created_date, last_modified_date, display_url)
         VALUES ($1, 'public-key', $2, $3, $4, 'Bitbucket workspace', $5, '2025-01-02 03:04:05', '2025-06-01 12:00:00', $3)`,
        [host.client_key, host.shared_secret, baseUrl, host.product_type, host.addon_installed],
      );
    }
  });

  it('imports Bitbucket rows, ignores other products', async () => {
    const result = await command.run(args(), environment);
    expect(result.code).toBe(1);
    expect(reportLine(result.stdout, hosts.installed.client_key)).toMatch(/^imported .*principal unknown until the next re-install/);
    expect(reportLine(result.stdout, hosts.uninstalled.client_key)).toMatch(/^imported .*as uninstalled, secret kept/);
    expect(reportLine(result.stdout, hosts.jira.client_key)).toMatch(/^ignored .*product_type is "jira", not bitbucket\.$/);
    expect(reportLine(result.stdout, hosts.shortSecret.client_key)).toMatch(/^skipped .*sharedSecret must be at least 16 characters long\.$/);
    expect(reportLine(result.stdout, hosts.otherHost.client_key)).toMatch(/^skipped .*base_url is not https:\/\/bitbucket\.org/);
    expect(summaryLine(result.stdout)).toBe('Summary: 6 rows: 3 imported, 0 unchanged, 0 kept, 1 ignored, 2 skipped.');
  });

  it('derives the record from the row', async () => {
    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    const installed = stored.get(hosts.installed.client_key)!;
    expect(installed.record.sharedSecret).toBe(hosts.installed.shared_secret);
    expect(installed.record.key).toBe(SAMPLE_APP_KEY);
    expect(installed.record.baseUrl).toBe('https://bitbucket.org');
    expect(installed.record.baseApiUrl).toBe('https://api.bitbucket.org');
    expect(installed.record.publicKey).toBe('public-key');
    expect(installed.record.principal).toEqual({ uuid: '{00000000-0000-0000-0000-000000000000}', type: 'unknown' });
    expect(installed.record.extra).toEqual({ description: 'Bitbucket workspace', displayUrl: 'https://bitbucket.org' });
    expect(installed.record.state).toBe('installed');
    expect(installed.record.installedAt).toBe('2025-01-02T03:04:05.000Z');
    expect(installed.record.updatedAt).toBe('2025-06-01T12:00:00.000Z');
    expect(installed.metadata?.sourceUpdatedAt).toBe('2025-06-01T12:00:00.000Z');

    const uninstalled = stored.get(hosts.uninstalled.client_key)!;
    expect(uninstalled.record.state).toBe('uninstalled');
    expect(uninstalled.record.sharedSecret).toBe(hosts.uninstalled.shared_secret);
    expect(uninstalled.record.uninstalledAt).toBe('2025-06-01T12:00:00.000Z');
  });

  it('keeps a newer record the worker wrote', async () => {
    // What the worker's installed route stores for a re-install after the import: no import metadata.
    await writeAsWorker(persistTo, hosts.reinstalled.client_key, reinstalledSecret, new Date('2025-07-01T00:00:00Z'));

    const result = await command.run(args(), environment);
    expect(reportStatus(result.stdout, hosts.reinstalled.client_key)).toBe('kept');
    expect(reportLine(result.stdout, hosts.reinstalled.client_key)).toContain('the worker stored this installation at 2025-07-01T00:00:00.000Z');
    expect(reportStatus(result.stdout, hosts.installed.client_key)).toBe('unchanged');
    expect(summaryLine(result.stdout)).toBe('Summary: 6 rows: 0 imported, 2 unchanged, 1 kept, 1 ignored, 2 skipped.');

    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    expect(stored.get(hosts.reinstalled.client_key)?.record.sharedSecret).toBe(reinstalledSecret);
  });

  it('overwrites it once the source row is newer', async () => {
    await query(`UPDATE atlassian_host SET last_modified_date = '2025-08-01 00:00:00' WHERE client_key = $1`, [hosts.reinstalled.client_key]);

    const result = await command.run(args(), environment);
    expect(reportLine(result.stdout, hosts.reinstalled.client_key)).toMatch(
      /^imported .*the source row \(2025-08-01T00:00:00\.000Z\) is newer than the stored record \(2025-07-01T00:00:00\.000Z\)/,
    );
    const stored = await readLocalInstallations(persistTo, ENCRYPTION_KEY);
    expect(stored.get(hosts.reinstalled.client_key)?.record.sharedSecret).toBe(hosts.reinstalled.shared_secret);
  });

  it('keeps an import of a newer source row', async () => {
    // An older copy of the table, such as a backup, must not replace what a newer row gave.
    await query(`UPDATE atlassian_host SET last_modified_date = '2025-07-15 00:00:00', shared_secret = $2 WHERE client_key = $1`, [
      hosts.reinstalled.client_key,
      reinstalledSecret,
    ]);
    const result = await command.run(args(), environment);
    expect(reportLine(result.stdout, hosts.reinstalled.client_key)).toMatch(
      /^kept .*an earlier import stored a newer source row \(2025-08-01T00:00:00\.000Z\)/,
    );
  });
});

describe('import output', () => {
  it('prints no shared secret', () => {
    const output = command.outputs.join('\n');
    expect(output.length).toBeGreaterThan(0);
    for (const secret of secretsSeen) {
      expect(output.includes(secret), 'a shared secret appears in the output').toBe(false);
    }
  });
});

/** Writes a record the way the worker's lifecycle route does: InstallationStore.put, no KV metadata. */
async function writeAsWorker(persistTo: string, clientKey: string, sharedSecret: string, now: Date): Promise<void> {
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
      { ...tenantPayload(36), clientKey, sharedSecret },
      { appKey: SAMPLE_APP_KEY, allowList: parseAllowList(undefined) },
    );
    await new InstallationStore(kv, () => cipher).put(recordFromPayload(payload, null, now));
  } finally {
    await miniflare.dispose();
  }
}
