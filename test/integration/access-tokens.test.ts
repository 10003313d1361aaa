/**
 * The JWT grant and the access token cache against the Bitbucket simulator,
 * with real KV. Exchange counts come from the simulator's own counters.
 */
import { env } from 'cloudflare:workers';
import { decode } from 'hono/jwt';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS,
  cacheKey,
  createAccessTokenMemoryCache,
  createAccessTokenProvider,
  forgetAccessTokens,
  normalizeRestriction,
  type AccessTokenProviderOptions,
  type CachedAccessToken,
} from '../../src/connect/access-tokens';
import { parseAllowList } from '../../src/connect/allow-list';
import { ConnectError } from '../../src/connect/errors';
import { currentTimeSeconds } from '../../src/connect/jwt';
import { sha256Hex } from '../../src/connect/qsh';
import { installationCachePrefix } from '../../src/connect/storage-keys';
import { pause, recordingFetch, useSimulator, type SimulatorFixture } from '../simulator-control';
import type { EncryptedValue } from '../../src/connect/secret-cipher';
import { testCipher } from '../helpers';
import { captureLogs } from '../log-capture';

const TOKEN_PATH = '/site/oauth2/access_token';

let fixture: SimulatorFixture;
const logs = captureLogs();
let demoRepositoryUuid: string;

beforeAll(async () => {
  fixture = await useSimulator('access-tokens');
  demoRepositoryUuid = await fetchDemoRepositoryUuid();
});

beforeEach(async () => {
  await fixture.control.reset();
  await fixture.store.deleteCachedData(fixture.installation.clientKey);

});

/** Builds a provider with its own memory cache, as a fresh isolate would have. */
function provider(overrides: Partial<AccessTokenProviderOptions> = {}) {
  return createAccessTokenProvider({
    kv: env.CONNECT_KV,
    cipher: testCipher(),
    allowList: fixture.allowList,
    memoryCache: createAccessTokenMemoryCache(),
    ...overrides,
  });
}

async function exchanges(): Promise<number> {
  return (await fixture.control.stats()).tokenExchanges;
}

async function cachedKeys(): Promise<string[]> {
  const listed = await env.CONNECT_KV.list({ prefix: installationCachePrefix(fixture.installation.clientKey) });
  return listed.keys.map((entry) => entry.name);
}

/** Reads demo-repo's UUID from the simulator with a workspace-wide token. */
async function fetchDemoRepositoryUuid(): Promise<string> {
  const token = await provider().getAccessToken(fixture.installation);
  const response = await fetch(`${fixture.control.url}/2.0/repositories/test-workspace/demo-repo`, {
    headers: { Authorization: `Bearer ${token.accessToken}` },
  });
  const repository = (await response.json()) as { uuid: string };
  return repository.uuid;
}

/** Reads a form body as text; Request.text() would warn about the form content type. */
async function formBody(request: Request): Promise<string> {
  return new TextDecoder().decode(await request.arrayBuffer());
}

function parsedLogLines(): Array<Record<string, unknown>> {
  return logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('token exchange', () => {
  it('exchanges once for concurrent misses', async () => {
    const tokens = provider();

    const results = await Promise.all(Array.from({ length: 25 }, () => tokens.getAccessToken(fixture.installation)));

    expect(await exchanges()).toBe(1);
    expect(new Set(results.map((token) => token.accessToken)).size).toBe(1);
  });

  it('sends the grant form body', async () => {
    const recorder = recordingFetch();

    await provider({ fetch: recorder.fetch }).getAccessToken(fixture.installation);

    const request = recorder.requests[0]!;
    expect(recorder.requests).toHaveLength(1);
    expect(request.method).toBe('POST');
    expect(request.url).toBe(`${fixture.control.url}${TOKEN_PATH}`);
    expect(request.headers.get('Content-Type')).toBe('application/x-www-form-urlencoded');
    expect(await formBody(request)).toBe('grant_type=urn%3Abitbucket%3Aoauth2%3Ajwt');
  });

  it('signs the grant JWT', async () => {
    const recorder = recordingFetch();

    await provider({ fetch: recorder.fetch }).getAccessToken(fixture.installation);

    const authorization = recorder.requests[0]!.headers.get('Authorization') ?? '';
    expect(authorization.startsWith('JWT ')).toBe(true);
    const { header, payload } = decode(authorization.slice('JWT '.length));
    expect(header.alg).toBe('HS256');
    expect(payload.iss).toBe('test-app-key');
    expect(payload.sub).toBe(fixture.installation.clientKey);
    expect(Number(payload.exp) - Number(payload.iat)).toBe(180);
    expect(payload.qsh).toBe(await sha256Hex(`POST&${TOKEN_PATH}&`));
  });

  it('sends the scope restriction', async () => {
    const recorder = recordingFetch();

    const token = await provider({ fetch: recorder.fetch }).getAccessToken(fixture.installation, {
      scopes: ['repository', 'account', 'repository'],
    });

    expect(await formBody(recorder.requests[0]!)).toBe('grant_type=urn%3Abitbucket%3Aoauth2%3Ajwt&scope=account+repository');
    expect(token.scopes).toEqual(['account', 'repository']);
  });

  it('reports an OAuth error with its code', async () => {
    const recorder = recordingFetch();
    const request = provider({ fetch: recorder.fetch }).getAccessToken(fixture.installation, { scopes: ['repository:write'] });

    await expect(request).rejects.toHaveProperty('code', 'token_exchange_failed');
    await expect(request).rejects.toHaveProperty('upstreamStatus', 400);
    await expect(request).rejects.toThrow(/invalid_scope/);
    await expect(request).rejects.toThrow(/repository:write/);
    expect(await formBody(recorder.requests[0]!)).toBe('grant_type=urn%3Abitbucket%3Aoauth2%3Ajwt&scope=repository%3Awrite');
  });

  it('reports a non-JSON response with its status', async () => {
    await fixture.control.addFailure({ path: TOKEN_PATH, status: 502, body: '<html><body>Bad gateway</body></html>' });

    const request = provider().getAccessToken(fixture.installation);

    await expect(request).rejects.toBeInstanceOf(ConnectError);
    await expect(request).rejects.toHaveProperty('code', 'token_exchange_failed');
    await expect(request).rejects.toHaveProperty('upstreamStatus', 502);
    await expect(request).rejects.toThrow(/not JSON/);
  });

  it('does not cache a failed exchange', async () => {
    await fixture.control.addFailure({ path: TOKEN_PATH, status: 503 });
    const tokens = provider();

    await expect(tokens.getAccessToken(fixture.installation)).rejects.toMatchObject({ code: 'token_exchange_failed' });
    const token = await tokens.getAccessToken(fixture.installation);

    expect(token.accessToken).not.toBe('');
    expect(await exchanges()).toBe(1);
  });

  it('times out a hanging exchange', async () => {
    const delayMs = 600;
    await fixture.control.addFailure({ path: TOKEN_PATH, status: 503, delayMs });

    const request = provider({ timeoutMs: 100 }).getAccessToken(fixture.installation);

    await expect(request).rejects.toMatchObject({ code: 'bitbucket_timeout' });
    // Let the delayed response finish before the next test resets the counters.
    await pause(delayMs);
  });

  it('rejects a token endpoint outside the allow-list', async () => {
    const tokens = provider({ allowList: parseAllowList('https://bitbucket.org') });

    await expect(tokens.getAccessToken(fixture.installation)).rejects.toMatchObject({ code: 'forbidden_host' });
    expect((await fixture.control.stats()).tokenExchangeFailures).toBe(0);
    expect(await exchanges()).toBe(0);
  });

  it('never logs the token or secret', async () => {
    const token = await provider().getAccessToken(fixture.installation);
    await fixture.control.addFailure({ path: TOKEN_PATH, status: 500 });
    await expect(provider().getAccessToken(fixture.installation, { scopes: ['account'] })).rejects.toThrow();

    const output = logs.lines.join('\n');
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(output).not.toContain(token.accessToken);
    expect(output).not.toContain(fixture.installation.sharedSecret);
  });
});

describe('token cache', () => {
  it('stores the token in KV', async () => {
    const before = currentTimeSeconds();
    const token = await provider().getAccessToken(fixture.installation);

    const key = await cacheKey(fixture.installation.clientKey, normalizeRestriction());
    const raw = (await env.CONNECT_KV.get(key, 'text')) ?? '';
    const stored = JSON.parse(raw) as Omit<CachedAccessToken, 'accessToken'> & { encryptedAccessToken: EncryptedValue };
    expect(raw).not.toContain(token.accessToken);
    expect(await testCipher().decrypt(stored.encryptedAccessToken, key)).toBe(token.accessToken);
    expect(stored.expiresAt).toBe(token.expiresAt);
    expect(stored.expiresAt).toBeGreaterThanOrEqual(before + 7200);
    expect(stored.restriction).toEqual({ scopes: [], repositoryUuid: null });
  });

  it('cannot decrypt a token copied to another key', async () => {
    await provider().getAccessToken(fixture.installation);
    const key = await cacheKey(fixture.installation.clientKey, normalizeRestriction());
    const other = await cacheKey(fixture.installation.clientKey, normalizeRestriction({ scopes: ['account'] }));
    const stored = JSON.parse((await env.CONNECT_KV.get(key, 'text')) ?? '{}') as { encryptedAccessToken: EncryptedValue };
    await expect(testCipher().decrypt(stored.encryptedAccessToken, other)).rejects.toThrow(ConnectError);
  });

  it('sets the KV TTL to lifetime minus margin', async () => {
    const before = currentTimeSeconds();
    await provider().getAccessToken(fixture.installation);

    const listed = await env.CONNECT_KV.list({ prefix: installationCachePrefix(fixture.installation.clientKey) });
    const expiration = listed.keys[0]?.expiration ?? 0;
    expect(listed.keys).toHaveLength(1);
    expect(expiration).toBeGreaterThanOrEqual(before + 7200 - ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS);
    expect(expiration).toBeLessThanOrEqual(currentTimeSeconds() + 7200 - ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS);
  });

  it('shares the KV copy across isolates', async () => {
    const first = await provider().getAccessToken(fixture.installation);
    const second = await provider().getAccessToken(fixture.installation);

    expect(second.accessToken).toBe(first.accessToken);
    expect(await exchanges()).toBe(1);
  });

  it('exchanges again once the margin is reached', async () => {
    let now = currentTimeSeconds();
    const memoryCache = createAccessTokenMemoryCache();
    const first = await provider({ memoryCache, now: () => now }).getAccessToken(fixture.installation);

    now = first.expiresAt - ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS;
    const second = await provider({ memoryCache, now: () => now }).getAccessToken(fixture.installation);
    const third = await provider({ now: () => now }).getAccessToken(fixture.installation);

    expect(second.accessToken).not.toBe(first.accessToken);
    expect(third.accessToken).toBe(second.accessToken);
    expect(await exchanges()).toBe(2);
  });

  it('ignores an expired KV entry', async () => {
    let now = currentTimeSeconds();
    const first = await provider({ now: () => now }).getAccessToken(fixture.installation);
    const key = await cacheKey(fixture.installation.clientKey, normalizeRestriction());

    // KV still returns the entry, because its TTL runs on the real clock.
    now = first.expiresAt;
    expect(await env.CONNECT_KV.get(key)).not.toBeNull();
    const second = await provider({ now: () => now }).getAccessToken(fixture.installation);

    expect(second.accessToken).not.toBe(first.accessToken);
    expect(await exchanges()).toBe(2);
  });

  it('keeps short-lived tokens out of KV', async () => {
    await fixture.control.setTokenLifetime(ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS + 59);
    const tokens = provider();

    const first = await tokens.getAccessToken(fixture.installation);
    const second = await tokens.getAccessToken(fixture.installation);

    const writeFailures = parsedLogLines().filter((line) => line.event === 'access_token_cache_write_failed');
    expect(await cachedKeys()).toEqual([]);
    expect(writeFailures).toEqual([]);
    expect(second.accessToken).toBe(first.accessToken);
    expect(await exchanges()).toBe(1);
  });

  it('writes KV at the 60 s minimum TTL', async () => {
    await fixture.control.setTokenLifetime(ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS + 61);

    await provider().getAccessToken(fixture.installation);

    expect(await cachedKeys()).toHaveLength(1);
  });

  it('does not cache tokens within the margin', async () => {
    await fixture.control.setTokenLifetime(ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS);
    const tokens = provider();

    await tokens.getAccessToken(fixture.installation);
    await tokens.getAccessToken(fixture.installation);

    expect(await cachedKeys()).toEqual([]);
    expect(await exchanges()).toBe(2);
  });

  it('tolerates a failed KV write', async () => {
    const kv = env.CONNECT_KV;
    // Stands in for KV rejecting a write, as it does with 429 for more than one write per second to a key.
    const failingKv = {
      get: kv.get.bind(kv),
      list: kv.list.bind(kv),
      delete: kv.delete.bind(kv),
      put: async () => {
        throw new Error('KV PUT failed: 429 Too Many Requests');
      },
    } as unknown as KVNamespace;
    const tokens = provider({ kv: failingKv });

    const first = await tokens.getAccessToken(fixture.installation);
    const second = await tokens.getAccessToken(fixture.installation);

    const failures = parsedLogLines().filter((line) => line.event === 'access_token_cache_write_failed');
    expect(second.accessToken).toBe(first.accessToken);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.clientKey).toBe(fixture.installation.clientKey);
    expect(await exchanges()).toBe(1);
  });

  it('keeps restricted tokens apart', async () => {
    const tokens = provider();

    const workspaceWide = await tokens.getAccessToken(fixture.installation);
    const restricted = await tokens.getAccessToken(fixture.installation, { repositoryUuid: demoRepositoryUuid });
    const again = await tokens.getAccessToken(fixture.installation);

    expect(restricted.accessToken).not.toBe(workspaceWide.accessToken);
    expect(again.accessToken).toBe(workspaceWide.accessToken);
    expect(restricted.restriction.repositoryUuid).toBe(demoRepositoryUuid);
    expect(await cachedKeys()).toHaveLength(2);
    expect(await exchanges()).toBe(2);
  });

  it('normalises the repository UUID', async () => {
    const tokens = provider();
    const bare = demoRepositoryUuid.slice(1, -1);

    const braced = await tokens.getAccessToken(fixture.installation, { repositoryUuid: demoRepositoryUuid.toUpperCase() });
    const unbraced = await tokens.getAccessToken(fixture.installation, { repositoryUuid: bare });

    expect(unbraced.accessToken).toBe(braced.accessToken);
    expect(await exchanges()).toBe(1);
  });

  it('rejects an invalid repository UUID', async () => {
    const request = provider().getAccessToken(fixture.installation, { repositoryUuid: 'demo-repo' });

    await expect(request).rejects.toMatchObject({ code: 'invalid_request' });
    expect(await exchanges()).toBe(0);
  });

  it('invalidate drops only the same token', async () => {
    const tokens = provider();
    const first = await tokens.getAccessToken(fixture.installation);

    await tokens.invalidate(fixture.installation, undefined, 'some-other-token');
    const unchanged = await tokens.getAccessToken(fixture.installation);
    await tokens.invalidate(fixture.installation, undefined, first.accessToken);
    const renewed = await tokens.getAccessToken(fixture.installation);

    expect(unchanged.accessToken).toBe(first.accessToken);
    expect(renewed.accessToken).not.toBe(first.accessToken);
    expect(await exchanges()).toBe(2);
  });

  it('uninstall deletes the cached tokens', async () => {
    const tokens = provider();
    await tokens.getAccessToken(fixture.installation);
    await tokens.getAccessToken(fixture.installation, { repositoryUuid: demoRepositoryUuid });

    expect(await cachedKeys()).toHaveLength(2);
    const deleted = await fixture.store.deleteCachedData(fixture.installation.clientKey);

    expect(deleted).toBe(2);
    expect(await cachedKeys()).toEqual([]);
    expect(await fixture.store.get(fixture.installation.clientKey)).not.toBeNull();
  });

  it('never serves a rejected token still in KV', async () => {
    // A KV binding whose deletes have not landed yet, as another request may see it.
    const kv = new Proxy(env.CONNECT_KV, {
      get(target, property) {
        if (property === 'delete') {
          return () => Promise.resolve();
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const tokens = provider({ kv });
    const first = await tokens.getAccessToken(fixture.installation);
    await tokens.invalidate(fixture.installation, undefined, first.accessToken);

    const second = await tokens.getAccessToken(fixture.installation);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(await exchanges()).toBe(2);
  });

  it('uninstall forgets the tokens held in memory', async () => {
    const memoryCache = createAccessTokenMemoryCache();
    const tokens = provider({ memoryCache });
    await tokens.getAccessToken(fixture.installation);
    expect(memoryCache.tokens.size).toBe(1);

    forgetAccessTokens(fixture.installation.clientKey, memoryCache);
    expect(memoryCache.tokens.size).toBe(0);
  });

  it('forgets only the uninstalled installation', async () => {
    const memoryCache = createAccessTokenMemoryCache();
    await provider({ memoryCache }).getAccessToken(fixture.installation);
    forgetAccessTokens(`${fixture.installation.clientKey}0`, memoryCache);
    expect(memoryCache.tokens.size).toBe(1);
  });
});
