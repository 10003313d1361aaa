import { env } from 'cloudflare:workers';
import { verify } from 'hono/jwt';
import { describe, expect, it, vi } from 'vitest';
import { Hono } from 'hono';
import {
  CLOCK_SKEW_LEEWAY_SECONDS,
  INSTALLATION_MEMORY_CACHE_SECONDS,
  InstallationStore,
  MAX_TOKEN_LENGTH,
  createQueryStringHash,
  createSessionToken,
} from '../../src/connect';
import bugCases from '../fixtures/cases/bug-cases.json';
import {
  ACCOUNT_UUID,
  APP_KEY,
  SECRET_NEW,
  SECRET_OLD,
  base64UrlJson,
  countingKv,
  createTestApp,
  installedPayload,
  nowSeconds,
  send,
  seedInstallation,
  signToken,
  testBindings,
  tokenFor,
  testCipher,
  uniqueClientKey,
} from '../helpers';
import { captureLogs } from '../log-capture';

const app = createTestApp();
const CONFIG_QSH = '4110f6b968be70bb3e689493228875290dae22004f6145b5fe186d4564baf649';

interface BugCase {
  id: string;
  kind: string;
  input: Record<string, unknown>;
  expected: Record<string, unknown>;
}
const cases = bugCases as unknown as BugCase[];
function bugCase(id: string): BugCase {
  const found = cases.find((entry) => entry.id === id);
  if (found === undefined) {
    throw new Error(`bug case ${id} missing from fixtures`);
  }
  return found;
}

/** Resolves "now", "now+5" and "now-30" in fixture claims. */
function resolveClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const resolved: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(claims)) {
    const match = typeof value === 'string' ? /^now([+-]\d+)?$/.exec(value) : null;
    resolved[name] = match === null ? value : nowSeconds() + Number(match[1] ?? '0');
  }
  return resolved;
}

const logs = captureLogs();

async function installed(secret = SECRET_OLD): Promise<string> {
  const clientKey = uniqueClientKey();
  await seedInstallation(clientKey, secret);
  return clientKey;
}

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { code: string } };
  return body.error.code;
}

describe('valid requests', () => {
  it('accepts a page load with the token in the query', async () => {
    const clientKey = await installed();
    const path = '/pr-panel?repoUuid=%7B11111111-2222-3333-4444-555555555555%7D';
    const token = await tokenFor('GET', path, { clientKey });
    const response = await send(app, 'GET', path, { token, tokenInQuery: true });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { clientKey: string }).clientKey).toBe(clientKey);
  });

  it('sets the acting account from sub', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'GET', '/config', { token });
    expect(await response.json()).toEqual({ clientKey, accountId: ACCOUNT_UUID });
  });

  it('accepts a webhook with the token in the header', async () => {
    const clientKey = await installed();
    const token = await tokenFor('POST', '/webhooks/repo-push', { clientKey });
    const response = await send(app, 'POST', '/webhooks/repo-push', { token, body: { event: 'repo:push', data: {} } });
    expect(response.status).toBe(204);
  });

  it('reads the installation with one KV read and no write', async () => {
    const clientKey = await installed();
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'GET', '/config', { token, bindings: testBindings({ CONNECT_KV: kv }) });
    expect(response.status).toBe(200);
    expect(counts.get).toBe(1);
    expect(counts.put).toBe(0);
  });
});

describe('installation memory copy', () => {
  it('serves a repeat request without a KV read', async () => {
    const clientKey = await installed();
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const bindings = testBindings({ CONNECT_KV: kv });
    await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }), bindings });
    await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }), bindings });
    expect(counts.get).toBe(1);
  });

  it('reads KV again once the copy is older than its lifetime', async () => {
    const clientKey = await installed();
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const bindings = testBindings({ CONNECT_KV: kv });
    await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }), bindings });

    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + (INSTALLATION_MEMORY_CACHE_SECONDS + 1) * 1000);
      await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }), bindings });
    } finally {
      vi.useRealTimers();
    }
    expect(counts.get).toBe(2);
  });

  it('drops the copy when this isolate uninstalls', async () => {
    const clientKey = await installed();
    expect((await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }) })).status).toBe(200);
    await send(app, 'POST', '/uninstalled', { token: await tokenFor('POST', '/uninstalled', { clientKey }), body: { clientKey } });
    const response = await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }) });
    expect(await errorCode(response)).toBe('installation_uninstalled');
  });

  it('drops the copy when this isolate rotates the secret', async () => {
    const clientKey = await installed();
    await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey }) });
    await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { sharedSecret: SECRET_NEW }),
      token: await tokenFor('POST', '/installed', { clientKey }),
    });
    const response = await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey, secret: SECRET_NEW }) });
    expect(response.status).toBe(200);
  });
});

describe('token transport', () => {
  it('rejects a request without a token', async () => {
    const response = await send(app, 'GET', '/config');
    expect(response.status).toBe(401);
    expect(await errorCode(response)).toBe('missing_token');
  });

  it('rejects the Bearer scheme', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'GET', '/config', { authorization: `Bearer ${token}` });
    expect(response.status).toBe(401);
  });

  it('rejects two different tokens', async () => {
    const clientKey = await installed();
    const first = await tokenFor('GET', '/config', { clientKey });
    const second = await tokenFor('GET', '/config', { clientKey, claims: { iat: nowSeconds() - 1 } });
    const response = await send(app, 'GET', `/config?jwt=${second}`, { token: first });
    expect(response.status).toBe(401);
    expect(await errorCode(response)).toBe('conflicting_tokens');
  });

  it('accepts the same token in header and query', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'GET', `/config?jwt=${token}`, { token });
    expect(response.status).toBe(200);
  });

  it('rejects a token only in a form body', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'POST', '/api/settings', {
      rawBody: `jwt=${token}&name=x`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(response.status).toBe(401);
  });

  it('rejects a cookie in place of a token', async () => {
    const response = await send(app, 'POST', '/api/settings', { headers: { Cookie: 'sid=abc' }, body: { enabled: true } });
    expect(response.status).toBe(401);
  });

  it('rejects an oversized token before decoding', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey, claims: { padding: 'x'.repeat(MAX_TOKEN_LENGTH) } });
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(401);
    expect(await errorCode(response)).toBe('token_too_large');
  });

  it('names an empty jwt parameter', async () => {
    const response = await send(app, 'GET', '/config?jwt=');
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toBe('The jwt query parameter is empty.');
  });

  it('rejects a token that is not three segments', async () => {
    const response = await send(app, 'GET', '/config', { token: 'abc.def' });
    expect(await errorCode(response)).toBe('malformed_token');
  });

  it('rejects segments that are not JSON', async () => {
    const response = await send(app, 'GET', '/config', { token: 'YWJj.ZGVm.Z2hp' });
    expect(await errorCode(response)).toBe('malformed_token');
  });
});

describe('algorithm and signature', () => {
  async function claimsFor(clientKey: string) {
    return { iss: clientKey, sub: ACCOUNT_UUID, iat: nowSeconds(), exp: nowSeconds() + 180, qsh: CONFIG_QSH };
  }

  it('rejects alg none', async () => {
    const clientKey = await installed();
    const token = `${base64UrlJson({ typ: 'JWT', alg: 'none' })}.${base64UrlJson(await claimsFor(clientKey))}.`;
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(401);
  });

  it('rejects HS512 signed with the secret', async () => {
    const clientKey = await installed();
    const token = await signToken({ header: { typ: 'JWT', alg: 'HS512' }, hash: 'SHA-512', claims: await claimsFor(clientKey) });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('unsupported_algorithm');
  });

  it('rejects RS256 with the secret as key', async () => {
    const clientKey = await installed();
    const token = await signToken({ header: { typ: 'JWT', alg: 'RS256', kid: 'x' }, claims: await claimsFor(clientKey) });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('unsupported_algorithm');
  });

  it('rejects a forged signature', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey });
    const forged = `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(43)}`;
    const response = await send(app, 'GET', '/config', { token: forged });
    expect(await errorCode(response)).toBe('bad_signature');
  });

  it('rejects claims changed after signing', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey });
    const [header, , signature] = token.split('.');
    const changed = `${header}.${base64UrlJson({ ...(await claimsFor(clientKey)), sub: 'someone-else' })}.${signature}`;
    const response = await send(app, 'GET', '/config', { token: changed });
    expect(await errorCode(response)).toBe('bad_signature');
  });

  it('rejects a token signed with another secret', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey, secret: SECRET_NEW });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('bad_signature');
  });

  it('rejects a crit header', async () => {
    const clientKey = await installed();
    const token = await signToken({ header: { typ: 'JWT', alg: 'HS256', crit: ['exp'] }, claims: await claimsFor(clientKey) });
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(401);
  });
});

describe('time claims', () => {
  const leeway = CLOCK_SKEW_LEEWAY_SECONDS;
  const table: Array<[string, (now: number) => Record<string, unknown>, number]> = [
    ['expired beyond the leeway', (now) => ({ iat: now - 600, exp: now - leeway - 1 }), 401],
    ['expired inside the leeway', (now) => ({ iat: now - 600, exp: now - leeway + 5 }), 200],
    ['future iat inside the leeway', (now) => ({ iat: now + leeway - 5, exp: now + 180 }), 200],
    ['future iat beyond the leeway', (now) => ({ iat: now + leeway + 5, exp: now + 180 }), 401],
    ['nbf inside the leeway', (now) => ({ nbf: now + leeway - 5, exp: now + 180 }), 200],
    ['nbf beyond the leeway', (now) => ({ nbf: now + leeway + 5, exp: now + 180 }), 401],
    ['string exp', (now) => ({ exp: String(now + 180) }), 401],
    ['huge exp', () => ({ exp: 1e400 }), 401],
  ];

  it.each(table)('answers %s', async (_name, timeClaims, status) => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey, claims: timeClaims(nowSeconds()) });
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(status);
  });
});

describe('required claims', () => {
  it.each(['exp', 'iss', 'qsh'])('rejects a token without %s', async (claim) => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/config', { clientKey, claims: { [claim]: undefined } });
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(401);
  });

  it('rejects a non-string iss', async () => {
    const token = await signToken({ claims: { iss: 42, exp: nowSeconds() + 60, qsh: CONFIG_QSH } });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('missing_claim');
  });
});

describe('query string hash', () => {
  it('rejects a qsh for another path', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/other', { clientKey });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('qsh_mismatch');
  });

  it('rejects a qsh for another method', async () => {
    const clientKey = await installed();
    const token = await tokenFor('POST', '/config', { clientKey });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('qsh_mismatch');
  });

  it('rejects a qsh for another query', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/pr-panel?repoUuid=a', { clientKey });
    const response = await send(app, 'GET', '/pr-panel?repoUuid=b', { token, tokenInQuery: true });
    expect(await errorCode(response)).toBe('qsh_mismatch');
  });

  it('rejects a page token replayed to another route', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/pr-panel', { clientKey });
    const response = await send(app, 'POST', '/api/settings', { token, body: {} });
    expect(await errorCode(response)).toBe('qsh_mismatch');
  });

  it('rejects a context-qsh token', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/pr-panel', { clientKey, claims: { qsh: 'context-qsh' } });
    const response = await send(app, 'GET', '/pr-panel', { token, tokenInQuery: true });
    expect(response.status).toBe(401);
  });

  it('checks the qsh relative to a base URL path', async () => {
    const clientKey = await installed();
    const mounted = new Hono().route('/live', app);
    const bindings = testBindings({ APP_BASE_URL: 'https://app.example.com/live' });
    const now = nowSeconds();
    const relativeQsh = await createQueryStringHash('GET', '/config');
    const absoluteQsh = await createQueryStringHash('GET', '/live/config');
    const relative = await signToken({ claims: { iss: clientKey, iat: now, exp: now + 60, qsh: relativeQsh } });
    const absolute = await signToken({ claims: { iss: clientKey, iat: now, exp: now + 60, qsh: absoluteQsh } });

    const accepted = await mounted.request('https://app.example.com/live/config', { headers: { Authorization: `JWT ${relative}` } }, bindings);
    const rejected = await mounted.request('https://app.example.com/live/config', { headers: { Authorization: `JWT ${absolute}` } }, bindings);
    expect(accepted.status).toBe(200);
    expect(rejected.status).toBe(401);
  });
});

describe('installation state', () => {
  it('rejects an unknown clientKey', async () => {
    const token = await tokenFor('GET', '/config', { clientKey: uniqueClientKey() });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('unknown_installation');
  });

  it('rejects an uninstalled installation', async () => {
    const clientKey = await installed();
    const uninstall = await tokenFor('POST', '/uninstalled', { clientKey });
    await send(app, 'POST', '/uninstalled', { token: uninstall, body: { clientKey } });
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'GET', '/config', { token });
    expect(await errorCode(response)).toBe('installation_uninstalled');
  });
});

describe('session tokens', () => {
  async function pageSession(clientKey: string): Promise<string> {
    const token = await tokenFor('GET', '/pr-panel', { clientKey });
    const response = await send(app, 'GET', '/pr-panel', { token, tokenInQuery: true });
    return ((await response.json()) as { sessionToken: string }).sessionToken;
  }

  it('is accepted on a route that allows it', async () => {
    const clientKey = await installed();
    const session = await pageSession(clientKey);
    const response = await send(app, 'POST', '/api/settings', { token: session, body: {} });
    expect(await response.json()).toEqual({ clientKey, kind: 'session', accountId: ACCOUNT_UUID });
  });

  it('is rejected on a route of another scope', async () => {
    const clientKey = await installed();
    const session = await pageSession(clientKey);
    const response = await send(app, 'POST', '/api/admin', { token: session, body: {} });
    expect(await errorCode(response)).toBe('session_token_not_allowed');
  });

  it('is accepted on a route of its own scope', async () => {
    const clientKey = await installed();
    const page = await send(app, 'GET', '/admin-page', { token: await tokenFor('GET', '/admin-page', { clientKey }) });
    const { sessionToken } = (await page.json()) as { sessionToken: string };
    const response = await send(app, 'POST', '/api/admin', { token: sessionToken, body: {} });
    expect(response.status).toBe(200);
  });

  it('is rejected in the query string', async () => {
    const clientKey = await installed();
    const session = await pageSession(clientKey);
    const response = await send(app, 'POST', '/api/settings', { token: session, tokenInQuery: true, body: {} });
    expect(await errorCode(response)).toBe('session_token_not_allowed');
  });

  it('marks authenticated responses as not cacheable', async () => {
    const clientKey = await installed();
    const response = await send(app, 'GET', '/pr-panel', { token: await tokenFor('GET', '/pr-panel', { clientKey }), tokenInQuery: true });
    expect(response.headers.get('Cache-Control')).toBe('private, no-store');
  });

  it('is rejected on a route that does not allow it', async () => {
    const clientKey = await installed();
    const session = await pageSession(clientKey);
    const response = await send(app, 'GET', '/config', { token: session });
    expect(await errorCode(response)).toBe('session_token_not_allowed');
  });

  it('is rejected after expiry', async () => {
    const clientKey = await installed();
    const issuedAt = nowSeconds() - 3600;
    const session = await createSessionToken({ clientKey, sharedSecret: SECRET_OLD, appKey: APP_KEY, accountId: undefined }, issuedAt);
    const response = await send(app, 'POST', '/api/settings', { token: session, body: {} });
    expect(await errorCode(response)).toBe('token_expired');
  });

  it('is rejected for another installation', async () => {
    const clientKey = await installed();
    const other = await installed(SECRET_NEW);
    const session = await pageSession(clientKey);
    const [header, claims, signature] = session.split('.');
    const decoded = JSON.parse(atob((claims ?? '').replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    const swapped = `${header}.${base64UrlJson({ ...decoded, iss: other })}.${signature}`;
    const response = await send(app, 'POST', '/api/settings', { token: swapped, body: {} });
    expect(await errorCode(response)).toBe('bad_signature');
  });

  it('stops working when the installation is uninstalled', async () => {
    const clientKey = await installed();
    const session = await pageSession(clientKey);
    await send(app, 'POST', '/uninstalled', { token: await tokenFor('POST', '/uninstalled', { clientKey }), body: {} });
    const response = await send(app, 'POST', '/api/settings', { token: session, body: {} });
    expect(response.status).toBe(401);
  });
});

describe('rejections leak nothing', () => {
  it('keeps the token and secret out of responses and logs', async () => {
    const clientKey = await installed();
    const token = await tokenFor('GET', '/other', { clientKey });
    const responses = await Promise.all([
      send(app, 'GET', '/config', { token }),
      send(app, 'GET', '/config', { token: `${token}x` }),
      send(app, 'GET', '/config', { token: token.replace('.', '.x') }),
      send(app, 'GET', '/config', { authorization: `Bearer ${token}` }),
    ]);
    for (const response of responses) {
      const text = await response.text();
      expect(response.status).toBe(401);
      expect(text).not.toContain(token.split('.')[1]);
      expect(text).not.toContain(SECRET_OLD);
    }
    const written = logs.lines.join('\n');
    expect(written).not.toContain(token.split('.')[1]);
    expect(written).not.toContain(SECRET_OLD);
  });

  it('logs one line per rejection with code and clientKey', async () => {
    const clientKey = await installed();
    logs.lines = [];
    const token = await tokenFor('GET', '/other', { clientKey });
    await send(app, 'GET', '/config', { token });
    const lines = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      {
        level: 'warn',
        event: 'request_rejected',
        code: 'qsh_mismatch',
        status: 401,
        clientKey,
        message: 'The JWT "qsh" claim does not match this request\'s method, path and query.',
        method: 'GET',
        path: '/config',
      },
    ]);
  });

  it('answers a browser with short text', async () => {
    const response = await send(app, 'GET', '/config', { headers: { Accept: 'text/html' } });
    expect(response.headers.get('Content-Type')).toContain('text/plain');
  });
});

describe('recorded jwt bug cases', () => {
  async function installFixture(): Promise<string> {
    return installed();
  }

  it('B15 accepts iat a few seconds in the future', async () => {
    const entry = bugCase('B15');
    const clientKey = await installFixture();
    const spec = entry.input.token as { claims: Record<string, unknown> };
    const token = await signToken({ claims: resolveClaims({ ...spec.claims, iss: clientKey }) });
    const response = await send(app, 'GET', '/config', { token });
    expect(response.status).toBe(entry.expected.status);
  });

  it('B17 rejects alg none and HS512', async () => {
    const entry = bugCase('B17');
    const clientKey = await installFixture();
    const variants = entry.input.variants as Record<string, { header: Record<string, unknown>; claims: Record<string, unknown> }>;
    const none = variants.algNone!;
    const noneToken = `${base64UrlJson(none.header)}.${base64UrlJson(resolveClaims({ ...none.claims, iss: clientKey }))}.`;
    expect((await send(app, 'GET', '/config', { token: noneToken })).status).toBe(401);

    const hs512 = variants.hs512!;
    const hs512Token = await signToken({ header: hs512.header, hash: 'SHA-512', claims: resolveClaims({ ...hs512.claims, iss: clientKey }) });
    expect((await send(app, 'GET', '/config', { token: hs512Token })).status).toBe(401);
  });

  it.each([
    ['jwtScheme', 'JWT {token}', 200],
    ['lowerScheme', 'jwt {token}', 200],
    ['bearer', 'Bearer {token}', 401],
    ['jwtTokenEquals', 'JWT token={token}', 401],
  ])('B18 %s answers as expected', async (variant, template, status) => {
    const entry = bugCase('B18');
    expect((entry.expected[variant] as { status: number }).status).toBe(status);
    const clientKey = await installFixture();
    const token = await tokenFor('GET', '/config', { clientKey });
    const response = await send(app, 'GET', '/config', { authorization: template.replace('{token}', token) });
    expect(response.status).toBe(status);
  });

  it('B19 accepts a query token and rejects a different header token', async () => {
    const clientKey = await installFixture();
    const path = '/pr-panel?repoUuid=%7B11111111-2222-3333-4444-555555555555%7D';
    const queryToken = await tokenFor('GET', path, { clientKey });
    expect((await send(app, 'GET', path, { token: queryToken, tokenInQuery: true })).status).toBe(200);

    const headerToken = await tokenFor('GET', path, { clientKey, claims: { iat: nowSeconds() - 2 } });
    const response = await send(app, 'GET', `${path}&jwt=${queryToken}`, { authorization: `JWT ${headerToken}` });
    expect(response.status).toBe(401);
  });

  it('B20 rejects unknown and missing iss without KV writes', async () => {
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const bindings = testBindings({ CONNECT_KV: kv });
    const unknown = await signToken({ claims: { iss: 'unknown-client-key', iat: nowSeconds(), exp: nowSeconds() + 180, qsh: CONFIG_QSH } });
    const missing = await signToken({ claims: { iat: nowSeconds(), exp: nowSeconds() + 180, qsh: CONFIG_QSH } });
    expect((await send(app, 'GET', '/config', { token: unknown, bindings })).status).toBe(401);
    expect((await send(app, 'GET', '/config', { token: missing, bindings })).status).toBe(401);
    expect(counts.put).toBe(0);
  });

  it('B22 hono verify without an algorithm throws, so the framework always passes HS256', async () => {
    const token = await signToken({ claims: { iss: 'x', exp: nowSeconds() + 60 } });
    await expect(verify(token, SECRET_OLD, undefined as unknown as 'HS256')).rejects.toThrow();
  });

  it('B23 the middleware accepts the JWT scheme and the query, unlike hono/jwt', async () => {
    const clientKey = await installFixture();
    const token = await tokenFor('GET', '/config', { clientKey });
    expect((await send(app, 'GET', '/config', { authorization: `JWT ${token}` })).status).toBe(200);
    expect((await send(app, 'GET', '/config', { token, tokenInQuery: true })).status).toBe(200);
  });

  it('B24 rejects an unsigned re-install and one signed with the body secret', async () => {
    const clientKey = await installFixture();
    const store = new InstallationStore(env.CONNECT_KV, testCipher);
    const unsigned = await send(app, 'POST', '/installed', { body: installedPayload(clientKey, { sharedSecret: 'attacker-secret-0000000' }) });
    expect(unsigned.status).toBe(401);
    const bodySigned = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { sharedSecret: 'attacker-secret-0000000' }),
      token: await tokenFor('POST', '/installed', { clientKey, secret: 'attacker-secret-0000000' }),
    });
    expect(bodySigned.status).toBe(401);
    expect((await store.get(clientKey))?.sharedSecret).toBe(SECRET_OLD);
  });

  it('B25 rotates the secret on a signed re-install', async () => {
    const clientKey = await installFixture();
    const reinstall = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { sharedSecret: SECRET_NEW }),
      token: await tokenFor('POST', '/installed', { clientKey, secret: SECRET_OLD }),
    });
    const withNew = await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey, secret: SECRET_NEW }) });
    const withOld = await send(app, 'GET', '/config', { token: await tokenFor('GET', '/config', { clientKey, secret: SECRET_OLD }) });
    expect([reinstall.status, withNew.status, withOld.status]).toEqual([204, 200, 401]);
  });

  it('B27 rejects a missing clientKey and an issuer mismatch without writes', async () => {
    const { kv, counts } = countingKv(env.CONNECT_KV);
    const bindings = testBindings({ CONNECT_KV: kv });
    const clientKey = await installFixture();
    const missing = await send(app, 'POST', '/installed', { body: installedPayload('x', { clientKey: undefined }), bindings });
    expect(missing.status).toBe(400);
    const mismatch = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { sharedSecret: SECRET_NEW }),
      token: await tokenFor('POST', '/installed', { clientKey: 'test-client-key-2' }),
      bindings,
    });
    expect(mismatch.status).toBe(401);
    expect(counts.put).toBe(0);
  });
});
