import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { InstallationStore } from '../../src/connect';
import { createSecretCipher, DEVELOPMENT_ENCRYPTION_KEY, ENCRYPTION_KEY_BYTES } from '../../src/connect/secret-cipher';
import { installationKey } from '../../src/connect/storage-keys';
import wranglerToml from '../../wrangler.toml?raw';
import {
  SECRET_NEW,
  SECRET_OLD,
  createTestApp,
  installedPayload,
  send,
  testBindings,
  testCipher,
  tokenFor,
  uniqueClientKey,
} from '../helpers';
import { captureLogs } from '../log-capture';

const app = createTestApp();
const logs = captureLogs();

function keySpec(id: string, fill: string): string {
  return `${id}:${btoa(fill.repeat(ENCRYPTION_KEY_BYTES).slice(0, ENCRYPTION_KEY_BYTES))}`;
}
const KEY_ONE = keySpec('k1', 'a');
const KEY_TWO = keySpec('k2', 'b');

async function rawRecord(clientKey: string): Promise<Record<string, unknown>> {
  return JSON.parse((await env.CONNECT_KV.get(installationKey(clientKey), 'text')) ?? 'null') as Record<string, unknown>;
}

async function install(clientKey: string, bindings = testBindings()) {
  return send(app, 'POST', '/installed', { body: installedPayload(clientKey), bindings });
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe('secrets at rest', () => {
  it('stores no plaintext secret in KV', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const raw = (await env.CONNECT_KV.get(installationKey(clientKey), 'text')) ?? '';
    expect(raw).not.toContain(SECRET_OLD);
    expect(raw).toContain('encryptedSharedSecret');
  });

  it('reads the secret back through the store', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const record = await new InstallationStore(env.CONNECT_KV, testCipher).get(clientKey);
    expect(record?.sharedSecret).toBe(SECRET_OLD);
  });

  it('rejects a ciphertext swapped in from another installation', async () => {
    const victim = uniqueClientKey();
    const attacker = uniqueClientKey();
    await install(victim);
    await send(app, 'POST', '/installed', { body: installedPayload(attacker, { sharedSecret: SECRET_NEW }) });

    const victimRecord = await rawRecord(victim);
    const attackerRecord = await rawRecord(attacker);
    await env.CONNECT_KV.put(installationKey(victim), JSON.stringify({ ...victimRecord, encryptedSharedSecret: attackerRecord.encryptedSharedSecret }));

    const token = await tokenFor('GET', '/config', { clientKey: victim, secret: SECRET_NEW });
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(503);
    expect(await errorCode(response)).toBe('storage_failed');
  });

  it('never lets an unsigned install replace an unreadable record', async () => {
    const clientKey = uniqueClientKey();
    await env.CONNECT_KV.put(installationKey(clientKey), '{"not":"a record"');
    const response = await install(clientKey);
    expect(response.status).toBe(503);
    expect(await env.CONNECT_KV.get(installationKey(clientKey), 'text')).toBe('{"not":"a record"');
  });
});

describe('records written before encryption', () => {
  async function writeLegacyRecord(clientKey: string): Promise<void> {
    const now = new Date().toISOString();
    const legacy = {
      ...installedPayload(clientKey),
      version: 1,
      extra: {},
      state: 'installed',
      installedAt: now,
      updatedAt: now,
    };
    await env.CONNECT_KV.put(installationKey(clientKey), JSON.stringify(legacy));
  }

  it('authenticates with a plaintext version 1 record', async () => {
    const clientKey = uniqueClientKey();
    await writeLegacyRecord(clientKey);
    const response = await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }) });
    expect(response.status).toBe(200);
  });

  it('encrypts a version 1 record on its next write', async () => {
    const clientKey = uniqueClientKey();
    await writeLegacyRecord(clientKey);
    const token = await tokenFor('POST', '/installed', { clientKey });
    const response = await send(app, 'POST', '/installed', { body: installedPayload(clientKey, { sharedSecret: SECRET_NEW }), token });
    expect(response.status).toBe(204);

    const stored = await rawRecord(clientKey);
    expect(stored.version).toBe(2);
    expect(stored.sharedSecret).toBeUndefined();
    expect(JSON.stringify(stored)).not.toContain(SECRET_NEW);
  });
});

describe('key rotation', () => {
  it('decrypts with an old key and re-encrypts with the current one', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey, testBindings({ CONNECT_ENCRYPTION_KEY: KEY_ONE }));
    expect((await rawRecord(clientKey)).encryptedSharedSecret).toMatchObject({ kid: 'k1' });

    const rotated = testBindings({ CONNECT_ENCRYPTION_KEY: KEY_TWO, CONNECT_ENCRYPTION_OLD_KEYS: KEY_ONE });
    const page = await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }), bindings: rotated });
    expect(page.status).toBe(200);

    const reinstall = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey),
      token: await tokenFor('POST', '/installed', { clientKey }),
      bindings: rotated,
    });
    expect(reinstall.status).toBe(204);
    expect((await rawRecord(clientKey)).encryptedSharedSecret).toMatchObject({ kid: 'k2' });
  });

  it('fails loudly when the old key is missing', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey, testBindings({ CONNECT_ENCRYPTION_KEY: KEY_ONE }));
    const response = await send(app, 'GET', '/config', {
      token: await tokenFor('GET', '/config', { clientKey }),
      bindings: testBindings({ CONNECT_ENCRYPTION_KEY: KEY_TWO }),
    });
    expect(response.status).toBe(500);
    expect(await errorCode(response)).toBe('configuration_error');
  });
});

describe('missing key', () => {
  it.each([undefined, '', '   '])('rejects an install when the key is %j', async (key) => {
    const clientKey = uniqueClientKey();
    const response = await install(clientKey, testBindings({ CONNECT_ENCRYPTION_KEY: key }));
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(response.status).toBe(500);
    expect(body.error.message).toContain('wrangler secret put CONNECT_ENCRYPTION_KEY');
    expect(await env.CONNECT_KV.get(installationKey(clientKey))).toBeNull();
  });

  it('still serves the descriptor', async () => {
    const response = await send(app, 'GET', '/atlassian-connect.json', { bindings: testBindings({ CONNECT_ENCRYPTION_KEY: undefined }) });
    expect(response.status).toBe(200);
  });

  it.each(['k1', 'k1:not base64!', `k1:${btoa('short')}`, `bad id:${btoa('a'.repeat(32))}`])('rejects the malformed key %j', (spec) => {
    expect(() => createSecretCipher(spec)).toThrow(/CONNECT_ENCRYPTION_KEY/);
  });

  it('logs the development key once', async () => {
    const bindings = testBindings({ CONNECT_ENCRYPTION_KEY: DEVELOPMENT_ENCRYPTION_KEY });
    await install(uniqueClientKey(), bindings);
    await install(uniqueClientKey(), bindings);
    const warnings = logs.parsed().filter((line) => line.event === 'development_encryption_key');
    expect(warnings).toHaveLength(1);
  });

  it('keeps the key out of wrangler.toml vars', () => {
    expect(wranglerToml).not.toMatch(/^\s*CONNECT_ENCRYPTION_KEY\s*=/m);
  });
});
