/**
 * The recorded token, KV, API and platform cases from public bug reports,
 * each as a test under its case id. Token and API cases run against the
 * local Bitbucket simulator; KV cases against the real local KV binding.
 */
import { env } from 'cloudflare:workers';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS,
  cacheKey,
  createAccessTokenMemoryCache,
  createAccessTokenProvider,
  normalizeRestriction,
} from '../../src/connect/access-tokens';
import {
  bitbucketPath,
  ConnectError,
  createBitbucketClient,
  InstallationStore,
  withQuery,
  type BitbucketClientOptions,
} from '../../src/connect';
import { kvExpirationTtl } from '../../src/connect/storage-keys';
import bugCases from '../fixtures/cases/bug-cases.json';
import moreCases from '../fixtures/cases/bug-cases-2.json';
import wranglerToml from '../../wrangler.toml?raw';
import {
  countingKv,
  createTestApp,
  installedPayload,
  nowSeconds,
  send,
  testBindings,
  testCipher,
  tokenFor,
  uniqueClientKey,
} from '../helpers';
import { captureLogs } from '../log-capture';
import { recordingFetch, recordingSleep, useSimulator, type SimulatorFixture } from '../simulator-control';

interface RecordedCase {
  id: string;
  input: Record<string, unknown>;
  expected: Record<string, unknown>;
}

function recordedCase(id: string): RecordedCase {
  const found = [...(bugCases as unknown as RecordedCase[]), ...(moreCases as unknown as RecordedCase[])].find(
    (entry) => entry.id === id,
  );
  if (found === undefined) {
    throw new Error(`case ${id} missing from fixtures`);
  }
  return found;
}

const logs = captureLogs();
let fixture: SimulatorFixture;

beforeAll(async () => {
  fixture = await useSimulator('recorded-cases');
});

beforeEach(async () => {
  await fixture.control.reset();
  await fixture.store.deleteCachedData(fixture.installation.clientKey);
});

function provider(overrides: { kv?: KVNamespace; fetch?: (request: Request) => Promise<Response> } = {}) {
  return createAccessTokenProvider({
    kv: overrides.kv ?? env.CONNECT_KV,
    cipher: testCipher(),
    allowList: fixture.allowList,
    memoryCache: createAccessTokenMemoryCache(),
    ...(overrides.fetch === undefined ? {} : { fetch: overrides.fetch }),
  });
}

function client(overrides: Partial<BitbucketClientOptions> = {}) {
  const sleeper = recordingSleep();
  return createBitbucketClient(fixture.installation, {
    allowList: fixture.allowList,
    tokens: provider(),
    sleep: sleeper.sleep,
    random: () => 0.5,
    ...overrides,
  });
}

/** Wraps KV so that a second write to one key within a second fails with 429, as in production KV. */
function rateLimitedKv(): KVNamespace {
  const lastWrite = new Map<string, number>();
  return new Proxy(env.CONNECT_KV, {
    get(target, property) {
      if (property === 'put') {
        return async (key: string, ...rest: unknown[]) => {
          const previous = lastWrite.get(key);
          lastWrite.set(key, Date.now());
          if (previous !== undefined && Date.now() - previous < 1000) {
            throw new Error('KV PUT failed: 429 Too Many Requests');
          }
          return (target.put as (...args: unknown[]) => Promise<void>)(key, ...rest);
        };
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('lifecycle cases', () => {
  it('B29 two uninstalls inside the KV write limit both succeed', async () => {
    const entry = recordedCase('B29');
    const app = createTestApp();
    const clientKey = uniqueClientKey();
    await send(app, 'POST', '/installed', { body: installedPayload(clientKey) });

    const bindings = testBindings({ CONNECT_KV: rateLimitedKv() });
    const token = await tokenFor('POST', '/uninstalled', { clientKey });
    const responses = await Promise.all([
      send(app, 'POST', '/uninstalled', { token, body: { clientKey }, bindings }),
      send(app, 'POST', '/uninstalled', { token, body: { clientKey }, bindings }),
    ]);

    expect(responses.map((response) => response.status)).toEqual(entry.expected.statuses);
    expect((await new InstallationStore(env.CONNECT_KV, testCipher).get(clientKey))?.state).toBe(entry.expected.finalState);
  });
});

describe('token cases', () => {
  it('B30 sends a form-encoded JWT grant', async () => {
    const entry = recordedCase('B30');
    const expected = entry.expected.request as { headers: Record<string, string>; body: string; bodyWithoutScope: string };
    const recorder = recordingFetch();

    await provider({ fetch: recorder.fetch }).getAccessToken(fixture.installation);
    await expect(
      provider({ fetch: recorder.fetch }).getAccessToken(fixture.installation, { scopes: [entry.input.scope as string] }),
    ).rejects.toBeInstanceOf(ConnectError);

    const [plain, scoped] = recorder.requests;
    expect(await plain?.text()).toBe(expected.bodyWithoutScope);
    expect(await scoped?.text()).toBe(expected.body);
    expect(plain?.headers.get('Content-Type')).toBe(expected.headers['Content-Type']);
    expect(plain?.headers.get('Authorization')).toMatch(/^JWT [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(new URL(plain?.url ?? '').pathname).toBe('/site/oauth2/access_token');
  });

  it('B30 keeps the status of a non-JSON token response', async () => {
    await fixture.control.addFailure({ path: '/site/oauth2/access_token', status: 502, body: '<html>Bad gateway</html>' });
    const failure = await provider().getAccessToken(fixture.installation).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe('token_exchange_failed');
    expect((failure as ConnectError).upstreamStatus).toBe(502);
  });

  it('B32 caches a 7200 s token with TTL 6900 and expiresAt', async () => {
    const before = nowSeconds();
    const token = await provider().getAccessToken(fixture.installation);
    const key = await cacheKey(fixture.installation.clientKey, normalizeRestriction());
    const listed = await env.CONNECT_KV.list({ prefix: key });

    expect(ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS).toBe(300);
    expect(token.expiresAt).toBeGreaterThanOrEqual(before + 7200);
    expect(listed.keys[0]?.expiration).toBeGreaterThanOrEqual(before + 6900);
    expect(listed.keys[0]?.expiration).toBeLessThanOrEqual(nowSeconds() + 6900);
  });

  it('B32 does not cache a 90 s token in KV', async () => {
    await fixture.control.setTokenLifetime(90);
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const token = await provider({ kv }).getAccessToken(fixture.installation);
    expect(token.accessToken).not.toBe('');
    expect(counts.put).toBe(0);
  });

  it('B33 renews once after a 401 and never loops', async () => {
    const bitbucket = client();
    await bitbucket.getJson('/2.0/user');
    await fixture.control.expireTokens();
    const before = await fixture.control.stats();

    await bitbucket.getJson('/2.0/user');
    const after = await fixture.control.stats();
    expect(after.tokenExchanges - before.tokenExchanges).toBe(1);
    expect(after.apiCalls.total - before.apiCalls.total).toBe(2);
  });

  it('B33 fails on a second 401', async () => {
    await fixture.control.addFailure({ path: '/2.0/user', status: 401, count: 2 });
    const failure = await client().getJson('/2.0/user').catch((error: unknown) => error);
    expect((failure as ConnectError).code).toBe('bitbucket_unauthorized');
    expect((await fixture.control.stats()).apiCalls.total).toBe(2);
  });
});

describe('KV cases', () => {
  it('B35 KV TTL below 60 s', async () => {
    const entry = recordedCase('B35');
    const puts = (entry.input.puts as Array<{ expirationTtl?: number }>).filter((put) => put.expirationTtl !== undefined);
    for (const put of puts) {
      const ttl = put.expirationTtl as number;
      const write = env.CONNECT_KV.put(`b35:${ttl}`, 'x', { expirationTtl: ttl });
      if (ttl < 60) {
        await expect(write).rejects.toThrow();
        expect(kvExpirationTtl(ttl)).toBeUndefined();
      } else {
        await expect(write).resolves.toBeUndefined();
        expect(kvExpirationTtl(ttl)).toBe(ttl);
      }
    }
  });

  it('B37 the framework reads KV without a cacheTtl', async () => {
    await expect(env.CONNECT_KV.get('b37', { cacheTtl: 10 })).rejects.toThrow();

    const options: unknown[] = [];
    const recordingKv = new Proxy(env.CONNECT_KV, {
      get(target, property) {
        const value = Reflect.get(target, property) as unknown;
        if (property === 'get') {
          return (key: string, option?: unknown) => {
            options.push(option);
            return (target.get as (...args: unknown[]) => unknown)(key, option);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const app = createTestApp();
    const clientKey = uniqueClientKey();
    await send(app, 'POST', '/installed', { body: installedPayload(clientKey) });
    await send(app, 'GET', '/config', {
      token: await tokenFor('GET', '/config', { clientKey }),
      bindings: testBindings({ CONNECT_KV: recordingKv }),
    });
    await provider({ kv: recordingKv }).getAccessToken(fixture.installation);

    expect(options.length).toBeGreaterThan(0);
    for (const option of options) {
      expect(JSON.stringify(option ?? {})).not.toContain('cacheTtl');
    }
  });

  it('B38 a rejected cache write still returns the token', async () => {
    const kv = new Proxy(env.CONNECT_KV, {
      get(target, property) {
        if (property === 'put') {
          return () => Promise.reject(new Error('KV PUT failed: 429 Too Many Requests'));
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const token = await provider({ kv }).getAccessToken(fixture.installation);
    expect(token.accessToken).not.toBe('');
    expect(logs.parsed().filter((line) => line.event === 'access_token_cache_write_failed')).toHaveLength(1);
  });

  it('B39 a stale KV read gives 401, then the installation is seen', async () => {
    const entry = recordedCase('B39');
    const app = createTestApp();
    const clientKey = uniqueClientKey();
    const writtenAt = new Map<string, number>();
    let clock = 0;
    // Location B reads a key only once the stale-read window has passed since it was written.
    const staleKv = new Proxy(env.CONNECT_KV, {
      get(target, property) {
        if (property === 'put') {
          return (key: string, ...rest: unknown[]) => {
            writtenAt.set(key, clock);
            return (target.put as (...args: unknown[]) => Promise<void>)(key, ...rest);
          };
        }
        if (property === 'get') {
          return (key: string, ...rest: unknown[]) => {
            const at = writtenAt.get(key);
            if (at !== undefined && clock - at < 60) {
              return Promise.resolve(null);
            }
            return (target.get as (...args: unknown[]) => unknown)(key, ...rest);
          };
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const bindings = testBindings({ CONNECT_KV: staleKv });

    const install = await send(app, 'POST', '/installed', { body: installedPayload(clientKey), bindings });
    clock = 1;
    const early = await send(app, 'POST', '/webhooks/repo-push', {
      token: await tokenFor('POST', '/webhooks/repo-push', { clientKey }),
      body: { event: 'repo:push', data: {} },
      bindings,
    });
    clock = 61;
    // The wall clock moves too, past the isolate's memory copy of the absent record.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    let late: Response;
    try {
      late = await send(app, 'POST', '/webhooks/repo-push', {
        token: await tokenFor('POST', '/webhooks/repo-push', { clientKey }),
        body: { event: 'repo:push', data: {} },
        bindings,
      });
    } finally {
      vi.useRealTimers();
    }

    const statuses = entry.expected.statuses as number[];
    expect(install.status).toBe(statuses[0]);
    expect(early.status).toBe(statuses[1]);
    expect(late.status).toBe(204);
  });
});

describe('API cases', () => {
  it('C05 sends braced UUIDs encoded in the path and the query', async () => {
    const entry = recordedCase('C05');
    const [pathLine, queryLine] = entry.expected.requestLines as string[];
    const workspace = entry.input.workspaceUuid as string;
    const repository = entry.input.repositoryUuid as string;

    expect(`GET ${bitbucketPath`/2.0/repositories/${workspace}/${repository}`}`).toBe(pathLine);
    expect(`GET ${withQuery('/2.0/repositories/test-workspace', { q: `uuid="${repository}"` })}`).toBe(queryLine);
  });

  it('C07 retries a plain-text 429 and then succeeds', async () => {
    await fixture.control.addFailure({ path: '/2.0/user', status: 429, count: 2 });
    const sleeper = recordingSleep();
    const user = await client({ sleep: sleeper.sleep }).getJson<{ uuid: string }>('/2.0/user');
    expect(typeof user.uuid).toBe('string');
    expect(sleeper.delays).toHaveLength(2);
  });

  it('C07 reports exhausted 429s as rate limited with the body text', async () => {
    await fixture.control.addFailure({ path: '/2.0/user', status: 429, count: 10 });
    const failure = (await client().getJson('/2.0/user').catch((error: unknown) => error)) as ConnectError;
    expect(failure.code).toBe('bitbucket_rate_limited');
    expect(failure.upstreamStatus).toBe(429);
    expect(failure.message).toContain('Rate limit for this resource has been exceeded');
  });

  it('C08 keeps the status and message of a 404', async () => {
    const failure = (await client()
      .getJson('/2.0/repositories/test-workspace/private-repo')
      .catch((error: unknown) => error)) as ConnectError;
    expect(failure.code).toBe('bitbucket_not_found');
    expect(failure.upstreamStatus).toBe(404);
    expect(failure.message.length).toBeGreaterThan(0);
  });
});

describe('iframe and platform cases', () => {
  it('C10 rejects a cookie in place of a token', async () => {
    const response = await send(createTestApp(), 'POST', '/api/settings', { headers: { Cookie: 'sid=x' }, body: { enabled: true } });
    expect(response.status).toBe(401);
  });

  it('C14 keeps the encryption key out of wrangler.toml vars', () => {
    expect(wranglerToml).not.toMatch(/^\s*CONNECT_ENCRYPTION_KEY\s*=/m);
  });

  it('C15 rejects a short signature without an exception', async () => {
    const app = createTestApp();
    const clientKey = uniqueClientKey();
    await send(app, 'POST', '/installed', { body: installedPayload(clientKey) });
    const valid = await tokenFor('POST', '/webhooks/repo-push', { clientKey });
    const forged = `${valid.slice(0, valid.lastIndexOf('.'))}.AAAA`;
    const response = await send(app, 'POST', '/webhooks/repo-push', { token: forged, body: { event: 'repo:push', data: {} } });
    expect(response.status).toBe(401);
    expect(logs.parsed().filter((line) => line.event === 'unhandled_error')).toEqual([]);
  });

  it('C15 builds without nodejs_compat', () => {
    // The request path uses WebCrypto only, so the worker needs no Node built-ins.
    expect(wranglerToml).not.toContain('nodejs_compat');
  });
});
