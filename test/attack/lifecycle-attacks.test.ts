/**
 * Attacks on the lifecycle routes. A re-install or uninstall whose token was
 * changed in any way is rejected, and the stored installation record stays
 * byte for byte as it was. Each test ends with the unchanged token, which
 * must succeed and change the record, so that a test that reads the wrong
 * key cannot pass.
 */
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { installationKey } from '../../src/connect/storage-keys';
import {
  ACCOUNT_UUID,
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
  uniqueClientKey,
} from '../helpers';
import { captureLogs } from '../log-capture';
import {
  applyCharacterEdit,
  applyClaimChange,
  applyEncodingChange,
  characterEdit,
  claimChange,
  decodeClaims,
  encodingChange,
  expectNothingConfidential,
  fitsInHeader,
  otherSecret,
  pathWithToken,
  signText,
  transport,
  type Transport,
} from './token-mutations';

const app = createTestApp();
const logs = captureLogs();

/** Time limit of each property test, in milliseconds. */
const PROPERTY_TIMEOUT_MS = 30_000;

/** Secret that the attacking re-installs try to store. It must never be stored. */
const ATTACKER_SECRET = 'attacker-secret-3333333333333333333333333333';

type LifecycleRoute = '/installed' | '/uninstalled';

interface Installed {
  clientKey: string;
  /** The record's KV value as stored by the first install. */
  rawRecord: string;
}

async function readRawRecord(clientKey: string): Promise<string | null> {
  return env.CONNECT_KV.get(installationKey(clientKey), 'text');
}

async function installFresh(): Promise<Installed> {
  const clientKey = uniqueClientKey('lifecycle');
  await seedInstallation(clientKey, SECRET_OLD);
  const rawRecord = await readRawRecord(clientKey);
  expect(rawRecord).not.toBeNull();
  return { clientKey, rawRecord: rawRecord as string };
}

function bodyFor(route: LifecycleRoute, clientKey: string): Record<string, unknown> {
  return route === '/installed'
    ? installedPayload(clientKey, { sharedSecret: ATTACKER_SECRET })
    : installedPayload(clientKey, { eventType: 'uninstalled' });
}

/** KV calls made by the lifecycle routes during one test. */
const kvCounter = countingKv(env.CONNECT_KV);

async function callLifecycle(
  route: LifecycleRoute,
  clientKey: string,
  token: string | undefined,
  via: Transport = 'header',
  body: unknown = bodyFor(route, clientKey),
): Promise<Response> {
  const bindings = testBindings({ CONNECT_KV: kvCounter.kv });
  if (token === undefined) {
    return send(app, 'POST', route, { body, bindings });
  }
  if (via === 'header' && fitsInHeader(token)) {
    return send(app, 'POST', route, { body, token, bindings });
  }
  return send(app, 'POST', pathWithToken(route, token), { body, bindings });
}

/** Asserts a 4xx rejection, nothing confidential in it, and the stored record unchanged. */
async function expectNothingStored(response: Response, installed: Installed, sentToken: string | undefined, status = 401): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  if (sentToken !== undefined) {
    expectNothingConfidential(text, { token: sentToken, signature: '', secrets: [SECRET_OLD, SECRET_NEW, ATTACKER_SECRET] });
  }
  expect(await readRawRecord(installed.clientKey)).toBe(installed.rawRecord);
}

/** Resets the KV call counts at the start of a test. */
function resetKvCounts(): void {
  kvCounter.counts.get = 0;
  kvCounter.counts.put = 0;
  kvCounter.counts.delete = 0;
  kvCounter.counts.list = 0;
}

function expectNoKvWrites(): void {
  expect(kvCounter.counts.put).toBe(0);
  expect(kvCounter.counts.delete).toBe(0);
}

/** Sends the unchanged token and asserts that it succeeds and changes the record. */
async function expectValidTokenChangesRecord(route: LifecycleRoute, installed: Installed, token: string): Promise<void> {
  const response = await callLifecycle(route, installed.clientKey, token);
  expect(response.status).toBe(204);
  expect(await readRawRecord(installed.clientKey)).not.toBe(installed.rawRecord);
}

describe.each<LifecycleRoute>(['/installed', '/uninstalled'])('%s with a changed token', (route) => {
  it('rejects any one-character edit', async () => {
    const installed = await installFresh();
    const token = await tokenFor('POST', route, { clientKey: installed.clientKey });
    resetKvCounts();

    await fc.assert(
      fc.asyncProperty(characterEdit, transport, async (edit, via) => {
        const mutated = applyCharacterEdit(token, edit);
        fc.pre(mutated !== token);
        fc.pre(via === 'query' || mutated.trim() !== token);
        await expectNothingStored(await callLifecycle(route, installed.clientKey, mutated, via), installed, mutated);
      }),
      { numRuns: 300 },
    );
    expectNoKvWrites();
    await expectValidTokenChangesRecord(route, installed, token);
  }, PROPERTY_TIMEOUT_MS);

  it('rejects a changed claim without re-signing', async () => {
    const installed = await installFresh();
    const other = await installFresh();
    const token = await tokenFor('POST', route, { clientKey: installed.clientKey });
    const claims = decodeClaims(token);
    resetKvCounts();

    await fc.assert(
      fc.asyncProperty(claimChange(other.clientKey, nowSeconds()), transport, async (change, via) => {
        const mutated = applyClaimChange(token, claims, change);
        fc.pre(mutated !== undefined);
        await expectNothingStored(await callLifecycle(route, installed.clientKey, mutated, via), installed, mutated);
      }),
      { numRuns: 200 },
    );
    expectNoKvWrites();
    expect(await readRawRecord(other.clientKey)).toBe(other.rawRecord);
    await expectValidTokenChangesRecord(route, installed, token);
  }, PROPERTY_TIMEOUT_MS);

  it('rejects the claims signed with another secret', async () => {
    const installed = await installFresh();
    const token = await tokenFor('POST', route, { clientKey: installed.clientKey });
    const claims = decodeClaims(token);
    resetKvCounts();

    const secrets = fc.oneof(fc.constantFrom(SECRET_NEW, ATTACKER_SECRET), otherSecret(SECRET_OLD));
    await fc.assert(
      fc.asyncProperty(secrets, async (secret) => {
        const resigned = await signToken({ claims, secret });
        await expectNothingStored(await callLifecycle(route, installed.clientKey, resigned), installed, resigned);
      }),
      { numRuns: 100 },
    );
    expectNoKvWrites();
    await expectValidTokenChangesRecord(route, installed, token);
  }, PROPERTY_TIMEOUT_MS);

  it('rejects another encoding of the same segments', async () => {
    const installed = await installFresh();
    const token = await tokenFor('POST', route, { clientKey: installed.clientKey });
    resetKvCounts();

    await fc.assert(
      fc.asyncProperty(encodingChange, transport, async (change, via) => {
        const mutated = applyEncodingChange(token, change);
        fc.pre(mutated !== token);
        fc.pre(via === 'query' || mutated.trim() !== token);
        await expectNothingStored(await callLifecycle(route, installed.clientKey, mutated, via), installed, mutated);
      }),
      { numRuns: 200 },
    );
    expectNoKvWrites();
    await expectValidTokenChangesRecord(route, installed, token);
  }, PROPERTY_TIMEOUT_MS);
});

describe('re-install with a valid token and a bad body', () => {
  it('rejects a wrong type in any field', async () => {
    const installed = await installFresh();
    const token = await tokenFor('POST', '/installed', { clientKey: installed.clientKey });
    resetKvCounts();

    const fields = fc.constantFrom('key', 'sharedSecret', 'productType', 'baseUrl', 'baseApiUrl', 'principal', 'user', 'publicKey');
    const wrongValue = fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'string' && value !== null && !(typeof value === 'object' && !Array.isArray(value)));
    await fc.assert(
      fc.asyncProperty(fields, wrongValue, async (field, value) => {
        const body = installedPayload(installed.clientKey, { sharedSecret: ATTACKER_SECRET, [field]: value });
        await expectNothingStored(await callLifecycle('/installed', installed.clientKey, token, 'header', body), installed, token, 400);
      }),
      { numRuns: 100 },
    );
    expectNoKvWrites();
    await expectValidTokenChangesRecord('/installed', installed, token);
  }, PROPERTY_TIMEOUT_MS);

  it('rejects a base URL off the allow-list', async () => {
    const installed = await installFresh();
    const token = await tokenFor('POST', '/installed', { clientKey: installed.clientKey });
    const body = installedPayload(installed.clientKey, { sharedSecret: ATTACKER_SECRET, baseApiUrl: 'https://attacker.example' });
    await expectNothingStored(await callLifecycle('/installed', installed.clientKey, token, 'header', body), installed, token, 403);
  });

  it('rejects a body clientKey other than the issuer', async () => {
    const installed = await installFresh();
    const victim = await installFresh();
    const token = await tokenFor('POST', '/installed', { clientKey: installed.clientKey });
    const body = installedPayload(victim.clientKey, { sharedSecret: ATTACKER_SECRET });
    await expectNothingStored(await callLifecycle('/installed', victim.clientKey, token, 'header', body), victim, token);
    expect(await readRawRecord(installed.clientKey)).toBe(installed.rawRecord);
  });
});

describe('lifecycle header attacks', () => {
  const HS256_HEADER = { typ: 'JWT', alg: 'HS256' };

  async function claimsFor(route: LifecycleRoute, clientKey: string, overrides: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return decodeClaims(await tokenFor('POST', route, { clientKey, claims: overrides }));
  }

  const attacks: Array<[string, (route: LifecycleRoute, clientKey: string, otherClientKey: string) => Promise<string | undefined>]> = [
    ['no token', async () => undefined],
    ['alg none', async (route, clientKey) => `${base64UrlJson({ typ: 'JWT', alg: 'none' })}.${base64UrlJson(await claimsFor(route, clientKey))}.`],
    ['HS512', async (route, clientKey) => signToken({ header: { typ: 'JWT', alg: 'HS512' }, hash: 'SHA-512', claims: await claimsFor(route, clientKey) })],
    ['kid naming another key', async (route, clientKey) => signToken({ header: { ...HS256_HEADER, kid: 'attacker' }, secret: ATTACKER_SECRET, claims: await claimsFor(route, clientKey) })],
    ['typ other than JWT', async (route, clientKey) => signToken({ header: { typ: 'JOSE', alg: 'HS256' }, claims: await claimsFor(route, clientKey) })],
    ['expired', async (route, clientKey) => tokenFor('POST', route, { clientKey, claims: { iat: nowSeconds() - 600, exp: nowSeconds() - 300 } })],
    ['the qsh of the other lifecycle route', async (route, clientKey) => tokenFor('POST', route === '/installed' ? '/uninstalled' : '/installed', { clientKey })],
    ['the qsh of a page', async (_route, clientKey) => tokenFor('GET', '/config', { clientKey })],
    ['no qsh', async (route, clientKey) => signToken({ claims: { ...(await claimsFor(route, clientKey)), qsh: undefined } })],
    ['a session token', async (_route, clientKey) => signToken({ claims: { iss: clientKey, sub: ACCOUNT_UUID, iat: nowSeconds(), exp: nowSeconds() + 60, connect_session: true } })],
    ['the issuer and secret of another installation', async (route, _clientKey, otherClientKey) => tokenFor('POST', route, { clientKey: otherClientKey })],
  ];

  it.each(attacks.flatMap(([name, build]) => (['/installed', '/uninstalled'] as const).map((route) => [route, name, build] as const)))(
    'rejects %s with %s and stores nothing',
    async (route, _name, build) => {
      const installed = await installFresh();
      const other = await installFresh();
      const token = await build(route, installed.clientKey, other.clientKey);
      resetKvCounts();

      await expectNothingStored(await callLifecycle(route, installed.clientKey, token), installed, token);
      expectNoKvWrites();
      expect(await readRawRecord(other.clientKey)).toBe(other.rawRecord);
      expect(logs.lines.join('\n')).not.toContain(SECRET_OLD);
    },
  );

  it('rejects duplicate iss names and stores nothing', async () => {
    const installed = await installFresh();
    const attacker = uniqueClientKey('attacker');
    await seedInstallation(attacker, SECRET_NEW);
    const claims = await claimsFor('/installed', attacker);
    const claimsText = JSON.stringify(claims).replace('{', `{"iss":${JSON.stringify(installed.clientKey)},`);
    const token = await signText(JSON.stringify(HS256_HEADER), claimsText, SECRET_NEW);
    resetKvCounts();

    await expectNothingStored(await callLifecycle('/installed', installed.clientKey, token), installed, token);
    expectNoKvWrites();
  });
});
