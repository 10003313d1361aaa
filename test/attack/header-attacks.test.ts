/**
 * Known attacks on JWT headers and claims, one test each, followed by a check
 * that no rejection repeats the token, its signature or a secret.
 *
 * Key selection policy: the verification key is always the sharedSecret of
 * the installation named by `iss`. Header parameters that name a key (`kid`,
 * `jku`, `jwk`, `x5u`) are ignored, so a token that carries them verifies
 * exactly as it would without them, and nothing is ever fetched.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { createQueryStringHash } from '../../src/connect';
import { ACCOUNT_UUID, SECRET_NEW, SECRET_OLD, base64UrlJson, createTestApp, nowSeconds, send, seedInstallation, uniqueClientKey } from '../helpers';
import { captureLogs } from '../log-capture';
import { base64UrlBytes, expectNothingConfidential, pathWithToken, signText, type HmacHash } from './token-mutations';

const app = createTestApp();
const logs = captureLogs();

const ROUTE = '/config';

/** Secret of an attacker who has no installation, used where an attack needs a key of its own. */
const ATTACKER_SECRET = 'attacker-secret-2222222222222222222222222222';

const SECRETS = [SECRET_OLD, SECRET_NEW, ATTACKER_SECRET];

interface Fixture {
  /** Installation signed with SECRET_OLD, the target of the attacks. */
  victim: string;
  /** Installation signed with SECRET_NEW, controlled by the attacker. */
  attacker: string;
  qsh: string;
}

let fixture: Fixture;

beforeAll(async () => {
  fixture = {
    victim: uniqueClientKey('victim'),
    attacker: uniqueClientKey('attacker'),
    qsh: await createQueryStringHash('GET', ROUTE),
  };
  await seedInstallation(fixture.victim, SECRET_OLD);
  await seedInstallation(fixture.attacker, SECRET_NEW);
});

let fetchSpy: MockInstance<typeof fetch>;

beforeEach(() => {
  fetchSpy = vi.spyOn(globalThis, 'fetch');
});

afterEach(() => {
  // No header parameter may ever make the verifier fetch a key.
  expect(fetchSpy).not.toHaveBeenCalled();
});

const HS256_HEADER = { typ: 'JWT', alg: 'HS256' };

/** Claims of a valid page token for ROUTE from `iss`. */
function claims(iss: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return { iss, sub: ACCOUNT_UUID, iat: now, exp: now + 180, qsh: fixture.qsh, ...overrides };
}

function sign(header: Record<string, unknown>, claimSet: unknown, secret = SECRET_OLD, hash: HmacHash = 'SHA-256'): Promise<string> {
  return signText(JSON.stringify(header), JSON.stringify(claimSet), secret, hash);
}

function unsigned(header: Record<string, unknown>, claimSet: unknown): string {
  return `${base64UrlJson(header)}.${base64UrlJson(claimSet)}.`;
}

interface Attack {
  readonly name: string;
  readonly token: () => string | Promise<string>;
  readonly code: string;
}

const ALGORITHM_ATTACKS: Attack[] = [
  { name: 'alg none without a signature', token: () => unsigned({ typ: 'JWT', alg: 'none' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'alg none with an HS256 signature', token: () => sign({ typ: 'JWT', alg: 'none' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'alg None in mixed case', token: () => unsigned({ typ: 'JWT', alg: 'None' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'HS512 signed with the secret', token: () => sign({ typ: 'JWT', alg: 'HS512' }, claims(fixture.victim), SECRET_OLD, 'SHA-512'), code: 'unsupported_algorithm' },
  { name: 'HS384 signed with the secret', token: () => sign({ typ: 'JWT', alg: 'HS384' }, claims(fixture.victim), SECRET_OLD, 'SHA-384'), code: 'unsupported_algorithm' },
  { name: 'RS256 with the secret as HMAC key', token: () => sign({ typ: 'JWT', alg: 'RS256' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'ES256 with the secret as HMAC key', token: () => sign({ typ: 'JWT', alg: 'ES256' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'alg hs256 in lower case', token: () => sign({ typ: 'JWT', alg: 'hs256' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'no alg', token: () => sign({ typ: 'JWT' }, claims(fixture.victim)), code: 'unsupported_algorithm' },
  { name: 'alg as an array', token: () => sign({ typ: 'JWT', alg: ['HS256'] }, claims(fixture.victim)), code: 'unsupported_algorithm' },
];

const KEY_SELECTION_ATTACKS: Attack[] = [
  { name: 'kid naming another key', token: () => sign({ ...HS256_HEADER, kid: fixture.attacker }, claims(fixture.victim), SECRET_NEW), code: 'bad_signature' },
  { name: 'jku pointing to another key set', token: () => sign({ ...HS256_HEADER, jku: 'https://attacker.example/jwks.json' }, claims(fixture.victim), ATTACKER_SECRET), code: 'bad_signature' },
  { name: 'x5u pointing to another certificate', token: () => sign({ ...HS256_HEADER, x5u: 'https://attacker.example/cert.pem' }, claims(fixture.victim), ATTACKER_SECRET), code: 'bad_signature' },
  {
    name: 'jwk embedding the signing key',
    token: () => sign({ ...HS256_HEADER, jwk: { kty: 'oct', k: base64UrlJson(ATTACKER_SECRET) } }, claims(fixture.victim), ATTACKER_SECRET),
    code: 'bad_signature',
  },
];

const HEADER_PARAMETER_ATTACKS: Attack[] = [
  { name: 'crit naming exp', token: () => sign({ ...HS256_HEADER, crit: ['exp'] }, claims(fixture.victim)), code: 'malformed_token' },
  { name: 'empty crit', token: () => sign({ ...HS256_HEADER, crit: [] }, claims(fixture.victim)), code: 'malformed_token' },
  { name: 'unencoded payload (b64 false)', token: () => sign({ ...HS256_HEADER, b64: false, crit: ['b64'] }, claims(fixture.victim)), code: 'malformed_token' },
  { name: 'typ other than JWT', token: () => sign({ typ: 'JOSE', alg: 'HS256' }, claims(fixture.victim)), code: 'malformed_token' },
  { name: 'typ null', token: () => sign({ typ: null, alg: 'HS256' }, claims(fixture.victim)), code: 'malformed_token' },
];

const DUPLICATE_NAME_ATTACKS: Attack[] = [
  { name: 'alg none then HS256', token: () => signText('{"alg":"none","alg":"HS256"}', JSON.stringify(claims(fixture.victim))), code: 'malformed_token' },
  { name: 'alg HS256 then none', token: () => signText('{"alg":"HS256","alg":"none"}', JSON.stringify(claims(fixture.victim))), code: 'malformed_token' },
  {
    name: 'iss of the victim then the attacker',
    token: () => signText(JSON.stringify(HS256_HEADER), JSON.stringify(claims(fixture.attacker)).replace('{', `{"iss":${JSON.stringify(fixture.victim)},`), SECRET_NEW),
    code: 'malformed_token',
  },
  {
    name: 'iss spelled with an escape',
    token: () => signText(JSON.stringify(HS256_HEADER), JSON.stringify(claims(fixture.attacker)).replace('{', `{"\\u0069ss":${JSON.stringify(fixture.victim)},`), SECRET_NEW),
    code: 'malformed_token',
  },
  {
    name: 'a name repeated in a nested object',
    token: () => signText(JSON.stringify(HS256_HEADER), JSON.stringify(claims(fixture.victim)).replace('{', '{"context":{"user":"a","user":"b"},')),
    code: 'malformed_token',
  },
  { name: 'qsh twice', token: () => signText(JSON.stringify(HS256_HEADER), JSON.stringify(claims(fixture.victim)).replace('{', '{"qsh":"x",')), code: 'malformed_token' },
];

const EXP_ATTACKS: Attack[] = [
  { name: 'exp 1e400 in the JSON text', token: () => signText(JSON.stringify(HS256_HEADER), JSON.stringify(claims(fixture.victim, { exp: 0 })).replace('"exp":0', '"exp":1e400')), code: 'invalid_claim' },
  { name: 'exp 1e400 written as null', token: () => sign(HS256_HEADER, claims(fixture.victim, { exp: 1e400 })), code: 'invalid_claim' },
  { name: 'negative exp', token: () => sign(HS256_HEADER, claims(fixture.victim, { exp: -1 })), code: 'token_expired' },
  { name: 'exp -1e308', token: () => sign(HS256_HEADER, claims(fixture.victim, { exp: -1e308 })), code: 'token_expired' },
  { name: 'exp as a string', token: () => sign(HS256_HEADER, claims(fixture.victim, { exp: String(nowSeconds() + 180) })), code: 'invalid_claim' },
  { name: 'no exp', token: () => sign(HS256_HEADER, claims(fixture.victim, { exp: undefined })), code: 'missing_claim' },
  { name: 'iat 1e308', token: () => sign(HS256_HEADER, claims(fixture.victim, { iat: 1e308 })), code: 'token_not_yet_valid' },
  { name: 'nbf 1e308', token: () => sign(HS256_HEADER, claims(fixture.victim, { nbf: 1e308 })), code: 'token_not_yet_valid' },
];

const ISS_ATTACKS: Attack[] = [
  { name: 'iss as a number', token: () => sign(HS256_HEADER, claims(42)), code: 'missing_claim' },
  { name: 'iss as an object', token: () => sign(HS256_HEADER, claims({ clientKey: fixture.victim })), code: 'missing_claim' },
  { name: 'iss as an array', token: () => sign(HS256_HEADER, claims([fixture.victim])), code: 'missing_claim' },
  { name: 'iss null', token: () => sign(HS256_HEADER, claims(null)), code: 'missing_claim' },
  { name: 'empty iss', token: () => sign(HS256_HEADER, claims('')), code: 'missing_claim' },
  { name: 'iss of 10,000 characters', token: () => sign(HS256_HEADER, claims('k'.repeat(10_000))), code: 'token_too_large' },
  { name: 'iss longer than a clientKey', token: () => sign(HS256_HEADER, claims('k'.repeat(3000))), code: 'invalid_claim' },
  { name: 'iss with a lone surrogate', token: () => sign(HS256_HEADER, claims(`${fixture.victim}\ud800`)), code: 'invalid_claim' },
  { name: 'iss with a space', token: () => sign(HS256_HEADER, claims(`${fixture.victim} `)), code: 'invalid_claim' },
  { name: 'iss of another installation', token: () => sign(HS256_HEADER, claims(fixture.attacker)), code: 'bad_signature' },
];

const SHAPE_ATTACKS: Attack[] = [
  { name: 'claims as a JSON array', token: () => sign(HS256_HEADER, [claims(fixture.victim)]), code: 'malformed_token' },
  { name: 'claims as a JSON string', token: () => sign(HS256_HEADER, JSON.stringify(claims(fixture.victim))), code: 'malformed_token' },
  { name: 'claims as a number', token: () => sign(HS256_HEADER, 42), code: 'malformed_token' },
  { name: 'claims null', token: () => sign(HS256_HEADER, null), code: 'malformed_token' },
  { name: 'header as a JSON array', token: () => signText(JSON.stringify([HS256_HEADER]), JSON.stringify(claims(fixture.victim))), code: 'malformed_token' },
  { name: 'header that is not JSON', token: () => signText('alg=HS256', JSON.stringify(claims(fixture.victim))), code: 'malformed_token' },
  { name: 'claims after a byte order mark', token: () => signText(JSON.stringify(HS256_HEADER), `\ufeff${JSON.stringify(claims(fixture.victim))}`), code: 'malformed_token' },
  {
    name: 'claims that are not UTF-8',
    token: () => `${base64UrlJson(HS256_HEADER)}.${base64UrlBytes(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))}.${'A'.repeat(43)}`,
    code: 'malformed_token',
  },
  { name: 'empty header segment', token: () => `.${base64UrlJson(claims(fixture.victim))}.${'A'.repeat(43)}`, code: 'malformed_token' },
];

const ATTACK_GROUPS: Array<[string, Attack[]]> = [
  ['algorithm', ALGORITHM_ATTACKS],
  ['key selection', KEY_SELECTION_ATTACKS],
  ['header parameters', HEADER_PARAMETER_ATTACKS],
  ['duplicate names', DUPLICATE_NAME_ATTACKS],
  ['time claims', EXP_ATTACKS],
  ['iss', ISS_ATTACKS],
  ['token shape', SHAPE_ATTACKS],
];

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { code: string } };
  return body.error.code;
}

for (const [group, attacks] of ATTACK_GROUPS) {
  describe(`${group} attacks`, () => {
    it.each(attacks.map((attack) => [attack.name, attack] as const))('rejects %s', async (_name, attack) => {
      const response = await send(app, 'GET', ROUTE, { token: await attack.token() });
      expect(response.status).toBe(401);
      expect(await errorCode(response)).toBe(attack.code);
    });
  });
}

describe('ignored header parameters', () => {
  const accepted: Array<[string, () => Promise<string>]> = [
    ['kid naming another key', () => sign({ ...HS256_HEADER, kid: fixture.attacker }, claims(fixture.victim))],
    ['jku pointing to another key set', () => sign({ ...HS256_HEADER, jku: 'https://attacker.example/jwks.json' }, claims(fixture.victim))],
    ['x5u pointing to another certificate', () => sign({ ...HS256_HEADER, x5u: 'https://attacker.example/cert.pem' }, claims(fixture.victim))],
    ['jwk embedding another key', () => sign({ ...HS256_HEADER, jwk: { kty: 'oct', k: base64UrlJson(ATTACKER_SECRET) } }, claims(fixture.victim))],
    ['typ jwt in lower case', () => sign({ typ: 'jwt', alg: 'HS256' }, claims(fixture.victim))],
  ];

  it.each(accepted)('verifies %s with the installation secret', async (_name, token) => {
    const response = await send(app, 'GET', ROUTE, { token: await token() });
    expect(response.status).toBe(200);
  });
});

describe('accepted time claims', () => {
  // A token signed with the sharedSecret may name any future exp. A cap on
  // exp would not stop the holder of the secret, who can sign a fresh token
  // at any time.
  it('accepts exp 1e308 when signed', async () => {
    const response = await send(app, 'GET', ROUTE, { token: await sign(HS256_HEADER, claims(fixture.victim, { exp: 1e308 })) });
    expect(response.status).toBe(200);
  });

  it('accepts a fractional exp', async () => {
    const response = await send(app, 'GET', ROUTE, { token: await sign(HS256_HEADER, claims(fixture.victim, { exp: nowSeconds() + 60.5 })) });
    expect(response.status).toBe(200);
  });
});

describe('rejections leak nothing', () => {
  it('keeps tokens, signatures and secrets out of every response and log line', async () => {
    const allAttacks = ATTACK_GROUPS.flatMap(([, attacks]) => attacks);
    expect(allAttacks.length).toBeGreaterThan(40);

    for (const attack of allAttacks) {
      const token = await attack.token();
      const confidential = { token, signature: token.split('.')[2] ?? '', secrets: SECRETS };
      const requests = [
        send(app, 'GET', ROUTE, { token }),
        send(app, 'GET', ROUTE, { token, headers: { Accept: 'text/html' } }),
        send(app, 'GET', pathWithToken(ROUTE, token)),
      ];

      for (const response of await Promise.all(requests)) {
        expect(response.status, attack.name).toBe(401);
        expectNothingConfidential(await response.text(), confidential);
      }
      expectNothingConfidential(logs.lines.join('\n'), confidential);
    }
  });

  it('logs one rejection line per request', async () => {
    for (const attack of ATTACK_GROUPS.flatMap(([, attacks]) => attacks)) {
      logs.lines = [];
      await send(app, 'GET', ROUTE, { token: await attack.token() });
      const rejections = logs.parsed().filter((line) => line.event === 'request_rejected');
      expect(rejections, attack.name).toHaveLength(1);
      expect(rejections[0]?.code, attack.name).toBe(attack.code);
    }
  });
});
