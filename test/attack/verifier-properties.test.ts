/**
 * Property-based attacks on request verification. Every change to a valid
 * token is rejected with 401. Generated junk in the token, the Authorization
 * header, the installed payload or a webhook body gets a 4xx response (or 204
 * where the input is acceptable), never a 5xx or an unhandled exception.
 */
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { InstallationStore } from '../../src/connect';
import {
  ACCOUNT_UUID,
  SECRET_NEW,
  SECRET_OLD,
  base64UrlJson,
  createTestApp,
  installedPayload,
  nowSeconds,
  send,
  seedInstallation,
  signToken,
  testBindings,
  testCipher,
  tokenFor,
  uniqueClientKey,
} from '../helpers';
import { captureLogs } from '../log-capture';
import {
  applyCharacterEdit,
  applyClaimChange,
  applyEncodingChange,
  characterEdit,
  decodeClaims,
  claimChange,
  encodingChange,
  expectNothingConfidential,
  fitsInHeader,
  otherSecret,
  pathWithToken,
  transport,
  type Transport,
} from './token-mutations';

const app = createTestApp();
const logs = captureLogs();

/** Time limit of each property test, in milliseconds. */
const PROPERTY_TIMEOUT_MS = 30_000;

const ROUTE = '/config';

/** A seeded installation, a second one with another secret, and a valid token for ROUTE. */
interface Fixture {
  clientKey: string;
  otherClientKey: string;
  claims: Record<string, unknown>;
  token: string;
  signature: string;
}

let fixture: Fixture;

beforeAll(async () => {
  const clientKey = uniqueClientKey('attack');
  const otherClientKey = uniqueClientKey('attack-other');
  await seedInstallation(clientKey, SECRET_OLD);
  await seedInstallation(otherClientKey, SECRET_NEW);

  const now = nowSeconds();
  const token = await tokenFor('GET', ROUTE, { clientKey, claims: { iat: now, exp: now + 600 } });
  fixture = { clientKey, otherClientKey, claims: decodeClaims(token), token, signature: token.split('.')[2] ?? '' };
});

async function sendToken(token: string, via: Transport): Promise<Response> {
  if (via === 'header' && fitsInHeader(token)) {
    return send(app, 'GET', ROUTE, { authorization: `JWT ${token}` });
  }
  return send(app, 'GET', pathWithToken(ROUTE, token));
}

/** Asserts a 401 whose body repeats nothing confidential. */
async function expectRejected(response: Response, sentToken: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(401);
  expectNothingConfidential(text, { token: sentToken, signature: fixture.signature, secrets: [SECRET_OLD, SECRET_NEW] });
}

/** Asserts that the current test logged no unhandled error, no 5xx rejection and nothing confidential. */
function expectCleanLogs(): void {
  const unhandled = logs.parsed().filter((line) => line.event === 'unhandled_error' || Number(line.status) >= 500);
  expect(unhandled).toEqual([]);
  expectNothingConfidential(logs.lines.join('\n'), { token: fixture.token, signature: fixture.signature, secrets: [SECRET_OLD, SECRET_NEW] });
}

describe('valid token fixture', () => {
  it('is accepted in the header and the query', async () => {
    expect((await sendToken(fixture.token, 'header')).status).toBe(200);
    expect((await sendToken(fixture.token, 'query')).status).toBe(200);
  });
});

describe('single mutations of a valid token', () => {
  it('rejects any one-character edit', async () => {
    await fc.assert(
      fc.asyncProperty(characterEdit, transport, async (edit, via) => {
        const mutated = applyCharacterEdit(fixture.token, edit);
        fc.pre(mutated !== fixture.token);
        // HTTP strips whitespace around a header value, so such an edit does not reach the token.
        fc.pre(via === 'query' || mutated.trim() !== fixture.token);
        await expectRejected(await sendToken(mutated, via), mutated);
      }),
      { numRuns: 1000 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects a changed claim without re-signing', async () => {
    await fc.assert(
      fc.asyncProperty(claimChange(fixture.otherClientKey, nowSeconds()), transport, async (change, via) => {
        const mutated = applyClaimChange(fixture.token, fixture.claims, change);
        fc.pre(mutated !== undefined);
        await expectRejected(await sendToken(mutated as string, via), mutated as string);
      }),
      { numRuns: 500 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects the claims signed with another secret', async () => {
    await fc.assert(
      fc.asyncProperty(otherSecret(SECRET_OLD), async (secret) => {
        const resigned = await signToken({ claims: fixture.claims, secret });
        const response = await sendToken(resigned, 'header');
        await expectRejected(response, resigned);
      }),
      { numRuns: 200 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects another encoding of the same segments', async () => {
    await fc.assert(
      fc.asyncProperty(encodingChange, transport, async (change, via) => {
        const mutated = applyEncodingChange(fixture.token, change);
        fc.pre(mutated !== fixture.token);
        fc.pre(via === 'query' || mutated.trim() !== fixture.token);
        await expectRejected(await sendToken(mutated, via), mutated);
      }),
      { numRuns: 500 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);
});

/** Lone UTF-16 surrogates, which have no UTF-8 encoding, next to any code point. */
const textWithLoneSurrogates = fc.string({
  maxLength: 40,
  unit: fc.oneof({ weight: 5, arbitrary: fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }) }, { weight: 1, arbitrary: fc.constantFrom('\ud800', '\udfff') }),
});

/** Header and claims that look like a Connect token's, with any field changed to anything. */
function tokenShapedJunk(clientKey: string): fc.Arbitrary<string> {
  const header = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.record(
      { alg: fc.oneof(fc.constant('HS256'), fc.jsonValue({ maxDepth: 1 })), typ: fc.oneof(fc.constant('JWT'), fc.jsonValue({ maxDepth: 1 })), kid: fc.string() },
      { requiredKeys: [] },
    ),
  );
  const claims = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.record(
      {
        iss: fc.oneof(fc.constant(clientKey), textWithLoneSurrogates, fc.jsonValue({ maxDepth: 1 }), fc.integer({ min: 0, max: 5000 }).map((length) => 'k'.repeat(length))),
        exp: fc.oneof(fc.integer(), fc.double(), fc.jsonValue({ maxDepth: 1 })),
        iat: fc.oneof(fc.integer(), fc.double(), fc.jsonValue({ maxDepth: 1 })),
        qsh: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.jsonValue({ maxDepth: 1 })),
        sub: fc.oneof(fc.constant(ACCOUNT_UUID), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: [] },
    ),
  );
  const signature = fc.oneof(fc.constant(''), fc.constant(fixture.signature), fc.base64String({ maxLength: 64 }).map((text) => text.replaceAll('=', '')));
  // JSON.stringify escapes lone surrogates, so the decoded claims can contain them.
  return fc.tuple(header, claims, signature).map(([h, c, s]) => `${base64UrlJson(JSON.stringify(h))}.${base64UrlJson(JSON.stringify(c))}.${s}`);
}

describe('junk tokens', () => {
  it('rejects junk in the jwt query parameter', async () => {
    const junk = fc.oneof(
      fc.string({ maxLength: 200, unit: 'binary' }),
      fc.string({ maxLength: 200, unit: fc.constantFrom(...'AZaz09-_.=+/ %') }),
      tokenShapedJunk(fixture.clientKey),
      fc.integer({ min: 8000, max: 20_000 }).map((length) => 'a'.repeat(length)),
    );
    await fc.assert(
      fc.asyncProperty(junk, async (value) => {
        await expectRejected(await send(app, 'GET', pathWithToken(ROUTE, value)), value);
      }),
      { numRuns: 500 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects junk in the Authorization header', async () => {
    // Printable ASCII and tab, because Headers rejects CR, LF and NUL and workerd warns about non-ASCII values.
    const headerCharacter = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), fc.constant('\t'));
    const headerText = fc.string({ maxLength: 200, unit: headerCharacter });
    const value = fc.oneof(
      headerText,
      headerText.map((text) => `JWT ${text}`),
      tokenShapedJunk(fixture.clientKey).map((token) => `JWT ${token}`),
      fc.constantFrom('JWT', 'JWT ', 'Bearer', 'JWT a b', `JWT ${fixture.token} ${fixture.token}`, `Bearer ${fixture.token}`, `JWT token=${fixture.token}`),
    );
    await fc.assert(
      fc.asyncProperty(value, async (authorization) => {
        await expectRejected(await send(app, 'GET', ROUTE, { authorization }), authorization);
      }),
      { numRuns: 300 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);
});

/** String fields of the installed payload that must be present. */
const REQUIRED_STRING_FIELDS = ['key', 'clientKey', 'sharedSecret', 'productType', 'baseUrl', 'baseApiUrl'] as const;

/** Accepted statuses for a generated installed body: stored, or rejected as bad input. */
const INSTALL_STATUSES = [204, 400, 401, 403, 413];

async function postInstalled(body: string | undefined): Promise<Response> {
  return send(app, 'POST', '/installed', { headers: { 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { rawBody: body }) });
}

/** Nests `depth` arrays or objects around a number. */
function nested(depth: number, kind: 'array' | 'object'): string {
  const [open, close] = kind === 'array' ? ['[', ']'] : ['{"a":', '}'];
  return `${open.repeat(depth)}1${close.repeat(depth)}`;
}

describe('junk installed payloads', () => {
  it('rejects any JSON value as the whole body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (body) => {
        const response = await postInstalled(JSON.stringify(body));
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
      }),
      { numRuns: 200 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects a wrong type in any field', async () => {
    const requiredString = fc.record({
      field: fc.constantFrom<string>(...REQUIRED_STRING_FIELDS),
      value: fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'string'),
    });
    const optionalString = fc.record({
      field: fc.constantFrom('publicKey', 'eventType'),
      value: fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'string' && value !== null),
    });
    const objectField = fc.record({
      field: fc.constantFrom('principal', 'user'),
      value: fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'object' || value === null || Array.isArray(value)),
    });
    const principalField = fc.record({
      field: fc.constantFrom('uuid', 'type', 'username', 'display_name'),
      value: fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'string' && value !== null),
    });

    await fc.assert(
      fc.asyncProperty(fc.oneof(requiredString, optionalString, objectField), async ({ field, value }) => {
        const response = await postInstalled(JSON.stringify(installedPayload(uniqueClientKey(), { [field]: value })));
        expect(response.status, field).toBe(400);
      }),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(principalField, async ({ field, value }) => {
        const principal = { type: 'team', uuid: '{00000000-0000-0000-0000-0000000000aa}', [field]: value };
        const response = await postInstalled(JSON.stringify(installedPayload(uniqueClientKey(), { principal })));
        expect(response.status, field).toBe(400);
      }),
      { numRuns: 100 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('answers 4xx or 204 for arbitrary values in any field', async () => {
    const fields = fc.constantFrom(...REQUIRED_STRING_FIELDS, 'principal', 'user', 'publicKey', 'eventType', 'unknownField', '__proto__', 'constructor');
    await fc.assert(
      fc.asyncProperty(fields, fc.anything({ maxDepth: 3 }), async (field, value) => {
        const body = JSON.stringify({ ...installedPayload(uniqueClientKey()), [field]: value });
        const response = await postInstalled(body);
        expect(INSTALL_STATUSES).toContain(response.status);
      }),
      { numRuns: 200 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects huge strings in any field', async () => {
    const fields = fc.constantFrom(...REQUIRED_STRING_FIELDS, 'publicKey', 'eventType');
    await fc.assert(
      fc.asyncProperty(fields, fc.integer({ min: 8193, max: 100_000 }), async (field, length) => {
        const response = await postInstalled(JSON.stringify(installedPayload(uniqueClientKey(), { [field]: 'x'.repeat(length) })));
        expect([400, 413]).toContain(response.status);
      }),
      { numRuns: 50 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects deep nesting without crashing', async () => {
    const fields = fc.constantFrom('unknownField', 'principal', 'user', 'clientKey');
    await fc.assert(
      fc.asyncProperty(fields, fc.integer({ min: 32, max: 30_000 }), fc.constantFrom('array' as const, 'object' as const), async (field, depth, kind) => {
        const payload = JSON.stringify(installedPayload(uniqueClientKey(), { [field]: 0 }));
        const body = payload.replace(`"${field}":0`, `"${field}":${nested(depth, kind)}`);
        const response = await postInstalled(body);
        expect([400, 413]).toContain(response.status);
      }),
      { numRuns: 100 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('keeps a __proto__ field as data', async () => {
    const clientKey = uniqueClientKey();
    const payload = JSON.stringify(installedPayload(clientKey));
    const response = await postInstalled(payload.replace(/}$/, ',"__proto__":{"state":"uninstalled","isAdmin":true}}'));
    expect(response.status).toBe(204);

    const record = await new InstallationStore(env.CONNECT_KV, testCipher).get(clientKey);
    expect(record?.state).toBe('installed');
    expect(Object.getPrototypeOf(record?.extra)).toBe(Object.prototype);
    expect(Object.hasOwn(record?.extra ?? {}, '__proto__')).toBe(true);
    expect((record?.extra as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('accepts nesting within the limit in an unknown field', async () => {
    const payload = JSON.stringify(installedPayload(uniqueClientKey(), { unknownField: 0 }));
    const response = await postInstalled(payload.replace('"unknownField":0', `"unknownField":${nested(30, 'array')}`));
    expect(response.status).toBe(204);
  });
});

describe('junk webhook bodies', () => {
  it('answers 204 or 4xx for any body', async () => {
    const token = await tokenFor('POST', '/webhooks/repo-push', { clientKey: fixture.clientKey });
    const body = fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.record({ event: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })), data: fc.jsonValue() }).map((value) => JSON.stringify(value)),
      fc.string({ maxLength: 200, unit: 'binary' }),
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: 1, max: 30_000 }).map((depth) => `{"event":"repo:push","data":${nested(depth, 'array')}}`),
      fc.integer({ min: 60_000, max: 100_000 }).map((length) => `{"event":"repo:push","data":"${'x'.repeat(length)}"}`),
    );
    const eventHeader = fc.option(fc.string({ maxLength: 40, unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)) }), { nil: undefined });

    await fc.assert(
      fc.asyncProperty(body, eventHeader, async (payload, eventKey) => {
        const headers: Record<string, string> = { Authorization: `JWT ${token}`, 'Content-Type': 'application/json' };
        if (eventKey !== undefined) {
          headers['X-Event-Key'] = eventKey;
        }
        const response = await app.request(`https://app.example.com/webhooks/repo-push`, { method: 'POST', headers, body: payload }, testBindings());
        expect([204, 400, 413]).toContain(response.status);
      }),
      { numRuns: 300 },
    );
    expectCleanLogs();
  }, PROPERTY_TIMEOUT_MS);

  it('rejects any body without a token', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const response = await send(app, 'POST', '/webhooks/repo-push', { rawBody: JSON.stringify(value) });
        expect(response.status).toBe(401);
      }),
      { numRuns: 100 },
    );
  }, PROPERTY_TIMEOUT_MS);
});
