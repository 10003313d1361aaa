/**
 * The step route: runs one part of request verification `n` times in one
 * request. Inside workerd, Date.now() and performance.now() do not advance
 * during CPU-only work, so the harness times the whole request from outside
 * and subtracts the time of the `empty` step with the same `n`.
 *
 * Every step except `hmac`, `sha256`, `floor` and `kv-get` calls the
 * framework's own exported functions and methods, so the figures describe
 * our code.
 */
import type { Hono } from 'hono';
import {
  ConnectError,
  createQueryStringHash,
  decodeUnverified,
  extractToken,
  isInstalled,
  signConnectToken,
  verifyConnectToken,
  verifyTokenForRecord,
  type ConnectEnv,
  type ConnectRuntime,
  type Installation,
  type ReceivedRequest,
} from '../../src/connect';
import { installationKey } from '../../src/connect/storage-keys';
import { requireCount, requireInstallation, type BenchBindings, type BenchContext } from './bindings';
import { MAX_STEP_ITERATIONS, PAGE_PATH, STEP_NAMES, STEP_PATH, type StepName } from './constants';

/** Lifetime of the token signed for a step request, in seconds. */
const STEP_TOKEN_LIFETIME_SECONDS = 600;

/** Inputs prepared once per request, outside the timed loop. */
interface StepFixture {
  readonly runtime: ConnectRuntime;
  readonly installation: Installation;
  /** The page URL with the token in `jwt`, as the page route receives it. */
  readonly request: ReceivedRequest;
  readonly token: string;
  readonly hmacKey: CryptoKey;
  /** The token's `header.payload` bytes and its signature, for the raw HMAC step. */
  readonly signedBytes: Uint8Array;
  readonly signature: Uint8Array;
  /** The canonical request of the page route, for the raw SHA-256 step. */
  readonly canonicalBytes: Uint8Array;
}

type Step = () => Promise<unknown>;

export function registerStepRoute(app: Hono<ConnectEnv<BenchBindings>>): void {
  app.get(STEP_PATH, async (c) => {
    const name = requireStepName(c.req.query('name'));
    const n = requireCount(c, 'n', MAX_STEP_ITERATIONS);
    const fixture = await prepareFixture(c);
    const step = createStep(name, fixture);

    for (let iteration = 0; iteration < n; iteration += 1) {
      await step();
    }
    return c.json({ name, n });
  });
}

function requireStepName(value: string | undefined): StepName {
  const name = STEP_NAMES.find((candidate) => candidate === value);
  if (name === undefined) {
    throw new ConnectError('invalid_request', `Query parameter "name" must be one of: ${STEP_NAMES.join(', ')}.`);
  }
  return name;
}

async function prepareFixture(c: BenchContext): Promise<StepFixture> {
  const runtime = c.get('connect');
  const installation = await requireInstallation(c);
  const origin = new URL(c.req.url).origin;

  const issuedAt = Math.floor(Date.now() / 1000);
  const token = await signConnectToken(
    {
      iss: installation.clientKey,
      sub: '{00000000-0000-4000-8000-000000000001}',
      iat: issuedAt,
      exp: issuedAt + STEP_TOKEN_LIFETIME_SECONDS,
      qsh: await createQueryStringHash('GET', `${origin}${PAGE_PATH}`, runtime.appBaseUrl),
    },
    installation.sharedSecret,
  );

  const [header, payload, signature] = token.split('.') as [string, string, string];
  const hmacKey = await crypto.subtle.importKey(
    'raw',
    utf8(installation.sharedSecret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  );

  return {
    runtime,
    installation,
    request: { method: 'GET', url: `${origin}${PAGE_PATH}?jwt=${token}`, authorization: undefined },
    token,
    hmacKey,
    signedBytes: utf8(`${header}.${payload}`),
    signature: fromBase64Url(signature),
    canonicalBytes: utf8(`GET&${PAGE_PATH}&`),
  };
}

function createStep(name: StepName, fixture: StepFixture): Step {
  const { runtime, installation, request } = fixture;
  // The page route accepts no session tokens, as authenticate() without options.
  const verifyOptions = { appBaseUrl: runtime.appBaseUrl, sessionScope: undefined };

  switch (name) {
    case 'empty':
      return async () => undefined;
    case 'hmac':
      return () => verifyHmac(fixture);
    case 'sha256':
      return () => crypto.subtle.digest('SHA-256', fixture.canonicalBytes);
    case 'floor':
      return async () => {
        await verifyHmac(fixture);
        return crypto.subtle.digest('SHA-256', fixture.canonicalBytes);
      };
    case 'decode':
      return async () => decodeUnverified(fixture.token);
    case 'verify': {
      const decoded = decodeUnverified(fixture.token);
      return () => verifyConnectToken(decoded, installation.sharedSecret);
    }
    case 'qsh':
      return () => createQueryStringHash(request.method, request.url, runtime.appBaseUrl);
    case 'kv-get': {
      const key = installationKey(installation.clientKey);
      return () => runtime.kv.get(key, 'text');
    }
    case 'kv-read':
      return () => runtime.installations.get(installation.clientKey);
    case 'cached-read':
      return () => runtime.installations.getCached(installation.clientKey);
    case 'full':
      // The work of authenticate() without Hono: take the token, look the
      // installation up through the isolate's memory copy, verify signature,
      // time claims and qsh.
      return async () => {
        const token = decodeUnverified(extractToken(request));
        const record = await runtime.installations.getCached(token.claims.iss as string);
        if (!isInstalled(record)) {
          throw new ConnectError('unknown_installation', 'The installation disappeared during the step run.');
        }
        return verifyTokenForRecord(token, record, request, verifyOptions);
      };
  }
}

async function verifyHmac(fixture: StepFixture): Promise<void> {
  const valid = await crypto.subtle.verify('HMAC', fixture.hmacKey, fixture.signature, fixture.signedBytes);
  if (!valid) {
    throw new ConnectError('bad_signature', 'The step token failed the raw HMAC check.');
  }
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (character) => character.charCodeAt(0));
}
