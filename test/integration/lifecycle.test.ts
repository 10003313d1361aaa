import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { InstallationStore } from '../../src/connect';
import { accessTokenKey } from '../../src/connect/storage-keys';
import {
  APP_KEY,
  SECRET_NEW,
  SECRET_OLD,
  countingKv,
  createTestApp,
  installedPayload,
  nowSeconds,
  send,
  signToken,
  testBindings,
  tokenFor,
  testCipher,
  uniqueClientKey,
} from '../helpers';
import { captureLogs } from '../log-capture';

const app = createTestApp();
const store = new InstallationStore(env.CONNECT_KV, testCipher);

const logs = captureLogs();

function rejectionLines(): Array<Record<string, unknown>> {
  return logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.event === 'request_rejected');
}

async function install(clientKey: string, overrides: Record<string, unknown> = {}, token?: string) {
  return send(app, 'POST', '/installed', {
    body: installedPayload(clientKey, overrides),
    ...(token === undefined ? {} : { token }),
  });
}

describe('first install', () => {
  it('stores the installation and answers 204', async () => {
    const clientKey = uniqueClientKey();
    const response = await install(clientKey);
    expect(response.status).toBe(204);

    const record = await store.get(clientKey);
    expect(record?.sharedSecret).toBe(SECRET_OLD);
    expect(record?.state).toBe('installed');
    expect(record?.baseApiUrl).toBe('https://api.bitbucket.org');
    expect(record?.principal.uuid).toBe('{00000000-0000-0000-0000-0000000000aa}');
  });

  it('keeps unknown payload fields', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey, { description: 'workspace app', newField: { a: 1 } });
    const record = await store.get(clientKey);
    expect(record?.extra).toEqual({ description: 'workspace app', newField: { a: 1 } });
  });

  it('records timestamps', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const record = await store.get(clientKey);
    expect(Date.parse(record?.installedAt ?? '')).toBeGreaterThan(0);
    expect(record?.updatedAt).toBe(record?.installedAt);
  });
});

describe('installed payload validation', () => {
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['missing clientKey', { clientKey: undefined }, 400],
    ['numeric clientKey', { clientKey: 42 }, 400],
    ['clientKey with spaces', { clientKey: 'connection: 1' }, 400],
    ['overlong clientKey', { clientKey: `connection:${'x'.repeat(200)}` }, 400],
    ['missing sharedSecret', { sharedSecret: undefined }, 400],
    ['numeric sharedSecret', { sharedSecret: 12345678901234567890 }, 400],
    ['short sharedSecret', { sharedSecret: 'short' }, 400],
    ['overlong sharedSecret', { sharedSecret: 's'.repeat(129) }, 400],
    ['missing baseUrl', { baseUrl: undefined }, 400],
    ['array baseUrl', { baseUrl: ['https://bitbucket.org'] }, 400],
    ['relative baseUrl', { baseUrl: '/bitbucket' }, 400],
    ['baseUrl with a path', { baseUrl: 'https://bitbucket.org/evil' }, 400],
    ['baseUrl with credentials', { baseUrl: 'https://user:pw@bitbucket.org' }, 400],
    ['missing key', { key: undefined }, 400],
    ['another app key', { key: 'someone-elses-app' }, 400],
    ['missing productType', { productType: undefined }, 400],
    ['jira productType', { productType: 'jira' }, 400],
    ['principal uuid without braces', { principal: { type: 'team', uuid: '00000000-0000-0000-0000-0000000000aa' } }, 400],
    ['missing principal', { principal: undefined }, 400],
    ['non-object user', { user: 'admin' }, 400],
    ['baseUrl off the allow-list', { baseUrl: 'https://evil.example.com' }, 403],
    ['baseApiUrl off the allow-list', { baseApiUrl: 'http://127.0.0.1:9999' }, 403],
  ];

  it.each(cases)('rejects %s', async (_name, overrides, status) => {
    const clientKey = uniqueClientKey();
    const response = await install(clientKey, overrides);
    expect(response.status).toBe(status);
    expect(await store.get(clientKey)).toBeNull();
  });

  it('names the failed field in the message', async () => {
    const response = await install(uniqueClientKey(), { sharedSecret: 7 });
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_payload');
    expect(body.error.message).toContain('sharedSecret');
  });

  it('rejects a body that is not JSON', async () => {
    const response = await send(app, 'POST', '/installed', { rawBody: '{"clientKey": ', headers: { 'Content-Type': 'application/json' } });
    expect(response.status).toBe(400);
  });

  it('names an empty body', async () => {
    const response = await send(app, 'POST', '/installed', { rawBody: '' });
    const body = (await response.json()) as { error: { message: string } };
    expect(response.status).toBe(400);
    expect(body.error.message).toContain('empty');
  });

  it.each(['GET', 'PUT', 'DELETE'])('answers %s with 405 and Allow', async (method) => {
    const response = await send(app, method, '/installed');
    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')).toBe('POST');
  });

  it('cuts long input quoted in messages', async () => {
    const response = await install(uniqueClientKey(), { key: 'k'.repeat(2000) });
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message.length).toBeLessThan(300);
  });

  it('does not list the allowed origins', async () => {
    const response = await install(uniqueClientKey(), { baseUrl: 'https://evil.example.com' });
    const text = await response.text();
    expect(text).toContain('https://evil.example.com');
    expect(text).not.toContain('https://api.bitbucket.org');
  });

  it('rejects a JSON array body', async () => {
    const response = await send(app, 'POST', '/installed', { body: [installedPayload(uniqueClientKey())] });
    expect(response.status).toBe(400);
  });

  it('rejects a body over 64 KiB', async () => {
    const clientKey = uniqueClientKey();
    const response = await install(clientKey, { padding: 'x'.repeat(70 * 1024) });
    expect(response.status).toBe(413);
    expect(await store.get(clientKey)).toBeNull();
  });

  it('accepts a loopback origin added to the allow-list', async () => {
    const clientKey = uniqueClientKey();
    const response = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { baseUrl: 'http://127.0.0.1:9999', baseApiUrl: 'http://127.0.0.1:9999' }),
      bindings: testBindings({ ALLOWED_BASE_URLS: 'http://127.0.0.1:9999' }),
    });
    expect(response.status).toBe(204);
  });

  it('logs one line without the secret', async () => {
    await install(uniqueClientKey(), { key: 'other-app' });
    const lines = rejectionLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.code).toBe('wrong_app_key');
    expect(logs.lines.join('\n')).not.toContain(SECRET_OLD);
  });
});

describe('re-install', () => {
  async function installedClient() {
    const clientKey = uniqueClientKey();
    expect((await install(clientKey)).status).toBe(204);
    return clientKey;
  }

  it('accepts a JWT signed with the stored secret and stores the new one', async () => {
    const clientKey = await installedClient();
    const token = await tokenFor('POST', '/installed', { clientKey, secret: SECRET_OLD });
    const response = await install(clientKey, { sharedSecret: SECRET_NEW }, token);
    expect(response.status).toBe(204);
    expect((await store.get(clientKey))?.sharedSecret).toBe(SECRET_NEW);
  });

  it('keeps installedAt and moves updatedAt', async () => {
    const clientKey = await installedClient();
    const before = await store.get(clientKey);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const token = await tokenFor('POST', '/installed', { clientKey });
    await install(clientKey, { sharedSecret: SECRET_NEW }, token);
    const after = await store.get(clientKey);
    expect(after?.installedAt).toBe(before?.installedAt);
    expect(after?.updatedAt).not.toBe(before?.updatedAt);
  });

  it('is harmless when repeated identically', async () => {
    const clientKey = await installedClient();
    const token = await tokenFor('POST', '/installed', { clientKey });
    expect((await install(clientKey, {}, token)).status).toBe(204);
    expect((await install(clientKey, {}, token)).status).toBe(204);
    expect((await store.get(clientKey))?.sharedSecret).toBe(SECRET_OLD);
  });

  const attacks: Array<[string, (clientKey: string) => Promise<string | undefined>, number]> = [
    ['without a JWT', async () => undefined, 401],
    ['signed with the new secret from the body', (clientKey) => tokenFor('POST', '/installed', { clientKey, secret: SECRET_NEW }), 401],
    ['with another issuer', () => tokenFor('POST', '/installed', { clientKey: 'connection:someone-else' }), 401],
    [
      'with HS512',
      async (clientKey) =>
        signToken({
          header: { typ: 'JWT', alg: 'HS512' },
          hash: 'SHA-512',
          claims: { iss: clientKey, iat: nowSeconds(), exp: nowSeconds() + 180, qsh: 'x' },
        }),
      401,
    ],
    ['with alg none', async (clientKey) => `${btoa('{"alg":"none","typ":"JWT"}').replace(/=+$/, '')}.${btoa(JSON.stringify({ iss: clientKey, exp: nowSeconds() + 100 })).replace(/=+$/, '')}.`, 401],
    ['expired', (clientKey) => tokenFor('POST', '/installed', { clientKey, claims: { iat: nowSeconds() - 600, exp: nowSeconds() - 300 } }), 401],
    ['with the qsh of another route', (clientKey) => tokenFor('POST', '/uninstalled', { clientKey }), 401],
  ];

  it.each(attacks)('rejects a re-install %s and keeps the old secret', async (_name, makeToken, status) => {
    const clientKey = await installedClient();
    const before = await store.get(clientKey);
    const token = await makeToken(clientKey);
    const response = await install(clientKey, { sharedSecret: 'attacker-secret-000000000000' }, token);
    expect(response.status).toBe(status);
    expect(await store.get(clientKey)).toEqual(before);
  });

  it('writes nothing to KV when the JWT is rejected', async () => {
    const clientKey = await installedClient();
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const token = await tokenFor('POST', '/installed', { clientKey: 'connection:other' });
    const response = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { sharedSecret: SECRET_NEW }),
      token,
      bindings: testBindings({ CONNECT_KV: kv }),
    });
    expect(response.status).toBe(401);
    expect(counts.put).toBe(0);
  });
});

describe('uninstall', () => {
  it('marks the installation uninstalled and keeps the secret', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    const response = await send(app, 'POST', '/uninstalled', { body: installedPayload(clientKey, { eventType: 'uninstalled' }), token });
    expect(response.status).toBe(204);

    const record = await store.get(clientKey);
    expect(record?.state).toBe('uninstalled');
    expect(record?.sharedSecret).toBe(SECRET_OLD);
    expect(record?.uninstalledAt).toBeDefined();
  });

  it('deletes the installation cached data', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    await env.CONNECT_KV.put(accessTokenKey(clientKey, 'a'.repeat(64)), '{}');
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    await send(app, 'POST', '/uninstalled', { body: { clientKey }, token });
    expect(await env.CONNECT_KV.get(accessTokenKey(clientKey, 'a'.repeat(64)))).toBeNull();
  });

  it('rejects a non-string body clientKey with 400', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    const response = await send(app, 'POST', '/uninstalled', { body: { clientKey: 1 }, token });
    expect(response.status).toBe(400);
  });

  it('rejects an unknown clientKey', async () => {
    const clientKey = uniqueClientKey();
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    const response = await send(app, 'POST', '/uninstalled', { body: { clientKey }, token });
    expect(response.status).toBe(401);
  });

  it('rejects an unsigned uninstall', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const response = await send(app, 'POST', '/uninstalled', { body: { clientKey } });
    expect(response.status).toBe(401);
    expect((await store.get(clientKey))?.state).toBe('installed');
  });

  it('rejects a body clientKey that differs from the issuer', async () => {
    const clientKey = uniqueClientKey();
    const victim = uniqueClientKey();
    await install(clientKey);
    await install(victim);
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    const response = await send(app, 'POST', '/uninstalled', { body: { clientKey: victim }, token });
    expect(response.status).toBe(401);
    expect((await store.get(victim))?.state).toBe('installed');
  });

  it('is harmless when repeated', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    expect((await send(app, 'POST', '/uninstalled', { body: { clientKey }, token })).status).toBe(204);
    expect((await send(app, 'POST', '/uninstalled', { body: { clientKey }, token })).status).toBe(204);
  });

  it('lets the next install be signed with the kept secret', async () => {
    const clientKey = uniqueClientKey();
    await install(clientKey);
    await send(app, 'POST', '/uninstalled', { body: { clientKey }, token: await tokenFor('POST', '/uninstalled', { clientKey }) });

    const unsigned = await install(clientKey, { sharedSecret: SECRET_NEW });
    expect(unsigned.status).toBe(401);

    const signed = await install(clientKey, { sharedSecret: SECRET_NEW }, await tokenFor('POST', '/installed', { clientKey }));
    expect(signed.status).toBe(204);
    const record = await store.get(clientKey);
    expect(record?.state).toBe('installed');
    expect(record?.sharedSecret).toBe(SECRET_NEW);
  });
});

describe('descriptor route', () => {
  it('serves the descriptor with APP_BASE_URL', async () => {
    const response = await send(app, 'GET', '/atlassian-connect.json');
    const descriptor = (await response.json()) as Record<string, unknown>;
    expect(descriptor.baseUrl).toBe('https://app.example.com');
    expect(descriptor.key).toBe(APP_KEY);
    expect(descriptor.authentication).toEqual({ type: 'jwt' });
    expect(descriptor.scopes).toEqual(['account', 'repository']);
  });

  it('falls back to the request origin', async () => {
    const response = await app.request('http://localhost:8787/atlassian-connect.json', {}, testBindings({ APP_BASE_URL: '' }));
    const descriptor = (await response.json()) as Record<string, unknown>;
    expect(descriptor.baseUrl).toBe('http://localhost:8787');
  });

  it('refuses a plain-http public base URL', async () => {
    const response = await app.request('http://app.example.com/atlassian-connect.json', {}, testBindings({ APP_BASE_URL: '' }));
    expect(response.status).toBe(500);
    const body = (await response.json()) as { error: { code: string } };
    expect(body.error.code).toBe('configuration_error');
  });
});
