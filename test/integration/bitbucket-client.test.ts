/**
 * The REST client against the Bitbucket simulator, with real KV: bearer and
 * JWT auth, token renewal after a 401, retries, timeouts, pagination and
 * error mapping. Request counts come from the simulator's own counters.
 */
import { env } from 'cloudflare:workers';
import { decode } from 'hono/jwt';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccessTokenMemoryCache, createAccessTokenProvider } from '../../src/connect/access-tokens';
import {
  bitbucketPath,
  createBitbucketClient,
  withQuery,
  type BitbucketClientOptions,
} from '../../src/connect/bitbucket-client';
import { ConnectError } from '../../src/connect/errors';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, parseRetryAfterMs } from '../../src/connect/http-retry';
import { createQueryStringHash } from '../../src/connect/qsh';
import { pause, recordingFetch, recordingSleep, useSimulator, type SimulatorFixture } from '../simulator-control';
import { testCipher } from '../helpers';
import { captureLogs } from '../log-capture';

const USER_PATH = '/2.0/user';
const DEMO_REPOSITORY_PATH = '/2.0/repositories/test-workspace/demo-repo';
const COMMITS_PATH = `${DEMO_REPOSITORY_PATH}/commits`;
const DEMO_COMMIT_COUNT = 25;
const RATE_LIMIT_TEXT = 'Rate limit for this resource has been exceeded';

let fixture: SimulatorFixture;
const logs = captureLogs();
let demoRepositoryUuid: string;

beforeAll(async () => {
  fixture = await useSimulator('bitbucket-client');
  const repository = await client().bitbucket.getJson<{ uuid: string }>(DEMO_REPOSITORY_PATH);
  demoRepositoryUuid = repository.uuid;
});

beforeEach(async () => {
  await fixture.control.reset();
  await fixture.store.deleteCachedData(fixture.installation.clientKey);

});

/**
 * Builds a client whose token provider has its own memory cache, as in a
 * fresh isolate. Jitter is fixed at half the backoff ceiling and sleeps are
 * recorded instead of waited.
 */
function client(overrides: Partial<BitbucketClientOptions> = {}) {
  const sleeper = recordingSleep();
  const tokens = createAccessTokenProvider({
    kv: env.CONNECT_KV,
    cipher: testCipher(),
    allowList: fixture.allowList,
    memoryCache: createAccessTokenMemoryCache(),
  });
  const bitbucket = createBitbucketClient(fixture.installation, {
    allowList: fixture.allowList,
    tokens,
    sleep: sleeper.sleep,
    random: () => 0.5,
    ...overrides,
  });
  return { bitbucket, tokens, delays: sleeper.delays };
}

async function stats() {
  return fixture.control.stats();
}

function parsedLogLines(): Array<Record<string, unknown>> {
  return logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('bearer auth', () => {
  it('exchanges once for 25 concurrent calls', async () => {
    const { bitbucket } = client();

    const users = await Promise.all(
      Array.from({ length: 25 }, () => bitbucket.getJson<{ nickname: string }>(USER_PATH)),
    );

    const counters = await stats();
    expect(users.every((user) => user.nickname === 'alex-admin')).toBe(true);
    expect(counters.tokenExchanges).toBe(1);
    expect(counters.apiCalls.byStatus['200']).toBe(25);
  });

  it('sends the access token as Bearer', async () => {
    const recorder = recordingFetch();
    const { bitbucket, tokens } = client({ fetch: recorder.fetch });

    await bitbucket.get(USER_PATH);

    const token = await tokens.getAccessToken(fixture.installation);
    expect(recorder.requests[0]?.headers.get('Authorization')).toBe(`Bearer ${token.accessToken}`);
  });

  it('renews an expired token once', async () => {
    const { bitbucket } = client();
    await bitbucket.get(USER_PATH);

    await fixture.control.expireTokens();
    for (let call = 0; call < 5; call += 1) {
      await bitbucket.get(USER_PATH);
    }

    const counters = await stats();
    expect(counters.tokenExchanges).toBe(2);
    expect(counters.apiCalls.byStatus['401']).toBe(1);
    expect(counters.apiCalls.byStatus['200']).toBe(6);
  });

  it('renews once for concurrent 401s', async () => {
    const { bitbucket } = client();
    await bitbucket.get(USER_PATH);

    await fixture.control.expireTokens();
    await Promise.all(Array.from({ length: 10 }, () => bitbucket.get(USER_PATH)));

    const counters = await stats();
    expect(counters.tokenExchanges).toBe(2);
    expect(counters.apiCalls.byStatus['200']).toBe(11);
  });

  it('fails on a second 401 without looping', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 401, count: 5 });
    const { bitbucket } = client();

    const request = bitbucket.get(USER_PATH);

    await expect(request).rejects.toHaveProperty('code', 'bitbucket_unauthorized');
    await expect(request).rejects.toHaveProperty('upstreamStatus', 401);
    await expect(request).rejects.toThrow(/also after a new token exchange/);
    const counters = await stats();
    expect(counters.apiCalls.byStatus['401']).toBe(2);
    expect(counters.tokenExchanges).toBe(2);
  });

  it('uses a repository-restricted token only for it', async () => {
    const restricted = client({ restriction: { repositoryUuid: demoRepositoryUuid } }).bitbucket;
    const workspaceWide = client().bitbucket;

    await restricted.get(DEMO_REPOSITORY_PATH);
    const otherRepository = restricted.get('/2.0/repositories/test-workspace/api-service');
    await expect(otherRepository).rejects.toHaveProperty('code', 'bitbucket_error');
    await expect(otherRepository).rejects.toHaveProperty('upstreamStatus', 403);
    await workspaceWide.get('/2.0/repositories/test-workspace/api-service');

    expect((await stats()).tokenExchanges).toBe(2);
  });
});

describe('jwt auth', () => {
  it('signs each request with a valid qsh', async () => {
    const recorder = recordingFetch();
    const { bitbucket } = client({ auth: 'jwt', fetch: recorder.fetch });

    const repository = await bitbucket.getJson<{ slug: string }>(DEMO_REPOSITORY_PATH);

    const authorization = recorder.requests[0]?.headers.get('Authorization') ?? '';
    const { payload } = decode(authorization.slice('JWT '.length));
    expect(repository.slug).toBe('demo-repo');
    expect(authorization.startsWith('JWT ')).toBe(true);
    expect(payload.iss).toBe('test-app-key');
    expect(payload.sub).toBe(fixture.installation.clientKey);
    expect(payload.qsh).toBe(await createQueryStringHash('GET', `${fixture.control.url}${DEMO_REPOSITORY_PATH}`));
    expect((await stats()).tokenExchanges).toBe(0);
  });

  it('signs every page', async () => {
    const recorder = recordingFetch();
    const { bitbucket } = client({ auth: 'jwt', fetch: recorder.fetch });

    const commits = [];
    for await (const commit of bitbucket.paginate(COMMITS_PATH, { query: { pagelen: 10 } })) {
      commits.push(commit);
    }

    const tokens = recorder.requests.map((request) => request.headers.get('Authorization'));
    expect(commits).toHaveLength(DEMO_COMMIT_COUNT);
    expect(new Set(tokens).size).toBe(3);
    expect((await stats()).apiCalls.byStatus['200']).toBe(3);
  });

  it('fails at once on a 401', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 401, count: 2 });

    const request = client({ auth: 'jwt' }).bitbucket.get(USER_PATH);

    await expect(request).rejects.toMatchObject({ code: 'bitbucket_unauthorized' });
    expect((await stats()).apiCalls.byStatus['401']).toBe(1);
  });
});

describe('retries', () => {
  it('retries a 429 without Retry-After', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 429, count: 2 });
    const { bitbucket, delays } = client();

    const response = await bitbucket.get(USER_PATH);

    expect(response.status).toBe(200);
    expect(delays).toEqual([500, 1000]);
    expect((await stats()).apiCalls.byStatus['429']).toBe(2);
  });

  it('waits for Retry-After', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 429, count: 1, retryAfterSeconds: 2 });
    const { bitbucket, delays } = client();

    const response = await bitbucket.get(USER_PATH);

    expect(response.status).toBe(200);
    expect(delays).toEqual([2000]);
  });

  it('fails after three 429 retries', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 429, count: 4 });
    const { bitbucket, delays } = client();

    const request = bitbucket.get(USER_PATH);

    await expect(request).rejects.toHaveProperty('code', 'bitbucket_rate_limited');
    await expect(request).rejects.toHaveProperty('upstreamStatus', 429);
    await expect(request).rejects.toThrow(RATE_LIMIT_TEXT);
    expect(delays).toHaveLength(3);
    expect((await stats()).apiCalls.byStatus['429']).toBe(4);
  });

  it('fails at once on a long Retry-After', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 429, count: 1, retryAfterSeconds: 3600 });
    const { bitbucket, delays } = client();

    await expect(bitbucket.get(USER_PATH)).rejects.toMatchObject({ code: 'bitbucket_rate_limited' });
    expect(delays).toEqual([]);
  });

  it('retries a 500 then succeeds', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 500, count: 1 });
    const { bitbucket, delays } = client();

    const response = await bitbucket.get(USER_PATH);

    expect(response.status).toBe(200);
    expect(delays).toHaveLength(1);
    expect((await stats()).apiCalls.byStatus['500']).toBe(1);
  });

  it('fails after repeated 503s', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 503, count: 4 });

    const request = client().bitbucket.get(USER_PATH);

    await expect(request).rejects.toHaveProperty('code', 'bitbucket_unavailable');
    await expect(request).rejects.toHaveProperty('upstreamStatus', 503);
    await expect(request).rejects.toThrow('Service Unavailable');
  });

  it('does not retry a POST after a 500', async () => {
    await fixture.control.addFailure({ path: USER_PATH, status: 500, count: 1 });
    const { bitbucket, delays } = client();

    await expect(bitbucket.post(USER_PATH, { body: '{}' })).rejects.toMatchObject({ code: 'bitbucket_unavailable' });
    expect(delays).toEqual([]);
  });

  it('times out a hanging response', async () => {
    const delayMs = 600;
    await fixture.control.addFailure({ path: USER_PATH, status: 503, delayMs });
    const { bitbucket, delays } = client({ timeoutMs: 100 });

    await expect(bitbucket.get(USER_PATH)).rejects.toMatchObject({ code: 'bitbucket_timeout' });
    expect(delays).toEqual([]);
    // Let the delayed response finish before the next test resets the counters.
    await pause(delayMs);
  });
});

describe('retry timing', () => {
  const nowMs = Date.parse('2026-03-01T12:00:00Z');

  it('reads Retry-After in seconds', () => {
    expect(parseRetryAfterMs('7', nowMs)).toBe(7000);
  });

  it('reads Retry-After as an HTTP date', () => {
    expect(parseRetryAfterMs('Sun, 01 Mar 2026 12:00:30 GMT', nowMs)).toBe(30_000);
  });

  it('treats a past Retry-After date as zero', () => {
    expect(parseRetryAfterMs('Sun, 01 Mar 2026 11:00:00 GMT', nowMs)).toBe(0);
  });

  it('ignores a malformed Retry-After', () => {
    expect(parseRetryAfterMs('soon', nowMs)).toBeUndefined();
  });

  it('caps the backoff ceiling', () => {
    const almostOne = () => 0.999;

    expect(backoffDelayMs(0, DEFAULT_RETRY_POLICY, almostOne)).toBeLessThan(DEFAULT_RETRY_POLICY.baseDelayMs);
    expect(backoffDelayMs(10, DEFAULT_RETRY_POLICY, almostOne)).toBeLessThan(DEFAULT_RETRY_POLICY.maxDelayMs);
    expect(backoffDelayMs(10, DEFAULT_RETRY_POLICY, almostOne)).toBeGreaterThan(DEFAULT_RETRY_POLICY.maxDelayMs * 0.99);
  });

  it('draws full jitter from zero', () => {
    expect(backoffDelayMs(2, DEFAULT_RETRY_POLICY, () => 0)).toBe(0);
  });
});

describe('pagination', () => {
  it('follows next to the end', async () => {
    const recorder = recordingFetch();
    const { bitbucket } = client({ fetch: recorder.fetch });

    const hashes: string[] = [];
    for await (const commit of bitbucket.paginate<{ hash: string }>(COMMITS_PATH, { query: { pagelen: 10 } })) {
      hashes.push(commit.hash);
    }

    const apiUrls = recorder.requests.map((request) => request.url).filter((url) => url.includes('/2.0/'));
    expect(hashes).toHaveLength(DEMO_COMMIT_COUNT);
    expect(new Set(hashes).size).toBe(DEMO_COMMIT_COUNT);
    expect(apiUrls).toEqual([
      `${fixture.control.url}${COMMITS_PATH}?pagelen=10`,
      `${fixture.control.url}${COMMITS_PATH}?pagelen=10&page=2`,
      `${fixture.control.url}${COMMITS_PATH}?pagelen=10&page=3`,
    ]);
  });

  it('rejects a next link off the allow-list', async () => {
    // Rewrites the first page's next link, which the simulator always puts on its own origin.
    const foreignNext = async (request: Request): Promise<Response> => {
      const response = await fetch(request);
      if (!request.url.includes('/commits')) {
        return response;
      }
      const page = (await response.json()) as Record<string, unknown>;
      return Response.json({ ...page, next: 'https://attacker.example/2.0/repositories?page=2' });
    };
    const { bitbucket } = client({ fetch: foreignNext });

    const pages = async () => {
      for await (const commit of bitbucket.paginate(COMMITS_PATH)) {
        void commit;
      }
    };

    await expect(pages()).rejects.toMatchObject({ code: 'forbidden_host' });
    expect((await stats()).apiCalls.total).toBe(1);
  });
});

describe('errors and URLs', () => {
  it('maps a 404 to bitbucket_not_found', async () => {
    const request = client().bitbucket.get('/2.0/repositories/test-workspace/missing-repo');

    await expect(request).rejects.toBeInstanceOf(ConnectError);
    await expect(request).rejects.toHaveProperty('code', 'bitbucket_not_found');
    await expect(request).rejects.toHaveProperty('upstreamStatus', 404);
    await expect(request).rejects.toThrow('Repository test-workspace/missing-repo not found.');
  });

  it('logs one line per failure', async () => {
    const { bitbucket, tokens } = client();
    const token = await tokens.getAccessToken(fixture.installation);

    await expect(bitbucket.get('/2.0/repositories/test-workspace/missing-repo?q=secret-term')).rejects.toThrow();

    const failures = parsedLogLines().filter((line) => line.event === 'bitbucket_request_failed');
    expect(failures).toEqual([
      {
        level: 'warn',
        event: 'bitbucket_request_failed',
        code: 'bitbucket_not_found',
        clientKey: fixture.installation.clientKey,
        method: 'GET',
        path: '/2.0/repositories/test-workspace/missing-repo',
        status: 404,
      },
    ]);
    expect(logs.lines.join('\n')).not.toContain(token.accessToken);
  });

  it('rejects a URL off the allow-list', async () => {
    const recorder = recordingFetch();
    const { bitbucket } = client({ fetch: recorder.fetch });

    await expect(bitbucket.get('https://attacker.example/2.0/user')).rejects.toMatchObject({ code: 'forbidden_host' });
    expect(recorder.requests).toHaveLength(0);
  });

  it('rejects a protocol-relative path', async () => {
    await expect(client().bitbucket.get('//attacker.example/2.0/user')).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('encodes a braced UUID path segment', async () => {
    const uuid = demoRepositoryUuid;
    const { bitbucket } = client();

    const path = bitbucketPath`/2.0/repositories/test-workspace/${uuid}`;
    const repository = await bitbucket.getJson<{ slug: string }>(path);

    expect(path).toBe(`/2.0/repositories/test-workspace/%7B${uuid.slice(1, -1)}%7D`);
    expect(repository.slug).toBe('demo-repo');
  });

  it('encodes query values', async () => {
    const uuid = '{01234567-89ab-cdef-0123-456789abcdef}';
    const recorder = recordingFetch();
    const { bitbucket } = client({ fetch: recorder.fetch });

    await bitbucket.get(DEMO_REPOSITORY_PATH, { query: { q: `uuid="${uuid}"` } });

    const apiUrl = recorder.requests.map((request) => request.url).find((url) => url.includes('/2.0/'));
    expect(withQuery('/2.0/x', { q: `uuid="${uuid}"` })).toBe(`/2.0/x?q=uuid%3D%22%7B${uuid.slice(1, -1)}%7D%22`);
    expect(apiUrl).toBe(`${fixture.control.url}${DEMO_REPOSITORY_PATH}?q=uuid%3D%22%7B${uuid.slice(1, -1)}%7D%22`);
  });
});
