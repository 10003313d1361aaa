/**
 * Test fixtures: an app built on the framework, readable token signing, and
 * installed payloads. Tokens are signed here with WebCrypto from plain claims,
 * so a test can also build headers the framework would never produce.
 */
import { env } from 'cloudflare:workers';
import {
  ANY_EVENT,
  authenticate,
  createConnectApp,
  createQueryStringHash,
  InstallationStore,
  issueSessionToken,
  WebhookDispatcher,
  type AppDescriptor,
  type ConnectBindings,
  type WebhookDelivery,
} from '../src/connect';
import { secretCipherFromBindings, type SecretCipher } from '../src/connect/secret-cipher';

export const APP_KEY = 'test-app-key';
export const APP_BASE_URL = 'https://app.example.com';
export const SECRET_OLD = 'test-secret-old-0000000000000000000000000000';
export const SECRET_NEW = 'test-secret-new-1111111111111111111111111111';
export const WORKSPACE_UUID = '{00000000-0000-0000-0000-0000000000aa}';
export const ACCOUNT_UUID = '{00000000-0000-0000-0000-0000000000bb}';

export const testDescriptor: AppDescriptor = {
  key: APP_KEY,
  name: 'Test app',
  lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
  scopes: ['account', 'repository'],
  modules: {
    webPanels: [{ key: 'pr-panel', url: '/pr-panel?repoUuid={repository.uuid}', name: { value: 'Panel' }, location: 'x' }],
    webhooks: [{ event: 'repo:push', url: '/webhooks/repo-push' }],
  },
};

/** Deliveries received by the test app's webhook handlers, in order. */
export const receivedDeliveries: WebhookDelivery[] = [];

/** Builds the test app: descriptor, lifecycle, and a few authenticated routes. */
export function createTestApp() {
  const app = createConnectApp<ConnectBindings>({ descriptor: testDescriptor });
  const webhooks = new WebhookDispatcher().on(ANY_EVENT, (delivery) => {
    receivedDeliveries.push(delivery);
  });


  app.get('/config', authenticate(), (c) => c.json({ clientKey: c.get('clientKey'), accountId: c.get('accountId') }));
  app.get('/pr-panel', authenticate(), async (c) =>
    c.json({ clientKey: c.get('clientKey'), sessionToken: await issueSessionToken(c) }),
  );
  app.post('/api/admin', authenticate({ allowSessionToken: true, sessionScope: 'admin' }), (c) =>
    c.json({ clientKey: c.get('clientKey'), kind: c.get('tokenKind') }),
  );
  app.get('/admin-page', authenticate(), async (c) => c.json({ sessionToken: await issueSessionToken(c, { scope: 'admin' }) }));
  app.post('/api/settings', authenticate({ allowSessionToken: true }), (c) =>
    c.json({ clientKey: c.get('clientKey'), kind: c.get('tokenKind'), accountId: c.get('accountId') }),
  );
  app.post('/webhooks/repo-push', ...webhooks.route());
  return app;
}

/** Counts KV calls while passing them to the real binding. */
export function countingKv(kv: KVNamespace) {
  const counts = { get: 0, put: 0, delete: 0, list: 0 };
  const wrapped = {
    get: (...args: Parameters<KVNamespace['get']>) => {
      counts.get += 1;
      return (kv.get as (...a: unknown[]) => unknown)(...args);
    },
    put: (...args: Parameters<KVNamespace['put']>) => {
      counts.put += 1;
      return kv.put(...args);
    },
    delete: (...args: Parameters<KVNamespace['delete']>) => {
      counts.delete += 1;
      return kv.delete(...args);
    },
    list: (...args: Parameters<KVNamespace['list']>) => {
      counts.list += 1;
      return kv.list(...args);
    },
    getWithMetadata: kv.getWithMetadata.bind(kv),
  } as unknown as KVNamespace;
  return { kv: wrapped, counts };
}

/** Returns the cipher of the test bindings' CONNECT_ENCRYPTION_KEY. */
export function testCipher(): SecretCipher {
  return secretCipherFromBindings(env as unknown as ConnectBindings);
}

export function testBindings(overrides: Partial<ConnectBindings> = {}): ConnectBindings {
  return {
    CONNECT_KV: env.CONNECT_KV,
    CONNECT_ENCRYPTION_KEY: (env as unknown as ConnectBindings).CONNECT_ENCRYPTION_KEY,
    APP_BASE_URL,
    ALLOWED_BASE_URLS: '',
    LOG_LEVEL: 'warn',
    ...overrides,
  };
}

/** Returns a fresh clientKey, so tests do not share installations. */
export function uniqueClientKey(label = 'test'): string {
  return `connection:${label}-${crypto.randomUUID()}`;
}

export function installedPayload(clientKey: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    key: APP_KEY,
    eventType: 'installed',
    clientKey,
    sharedSecret: SECRET_OLD,
    publicKey: 'test-public-key',
    baseUrl: 'https://bitbucket.org',
    baseApiUrl: 'https://api.bitbucket.org',
    productType: 'bitbucket',
    principal: { type: 'team', uuid: WORKSPACE_UUID, username: 'test-workspace' },
    user: { type: 'user', uuid: ACCOUNT_UUID, display_name: 'Test User' },
    ...overrides,
  };
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function base64UrlFromBytes(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function base64UrlJson(value: unknown): string {
  return base64UrlFromBytes(new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)));
}

export interface TokenSpec {
  claims: Record<string, unknown>;
  secret?: string;
  header?: Record<string, unknown>;
  /** HMAC hash used to sign; SHA-256 unless a test forges another algorithm. */
  hash?: 'SHA-256' | 'SHA-384' | 'SHA-512';
}

/** Signs claims as an HS256 JWT (or with the given header and hash). */
export async function signToken(spec: TokenSpec): Promise<string> {
  const header = spec.header ?? { typ: 'JWT', alg: 'HS256' };
  const signingInput = `${base64UrlJson(header)}.${base64UrlJson(spec.claims)}`;
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(spec.secret ?? SECRET_OLD),
    { name: 'HMAC', hash: spec.hash ?? 'SHA-256' },
    false,
    ['sign'],
  );
  const signature = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(signingInput));
  return `${signingInput}.${base64UrlFromBytes(new Uint8Array(signature))}`;
}

/** Signs a Bitbucket-style token for a request: iss, sub, iat, exp and the request's qsh. */
export async function tokenFor(
  method: string,
  url: string,
  options: { clientKey: string; secret?: string; claims?: Record<string, unknown> },
): Promise<string> {
  const now = nowSeconds();
  const qsh = await createQueryStringHash(method, url, APP_BASE_URL);
  return signToken({
    secret: options.secret ?? SECRET_OLD,
    claims: { iss: options.clientKey, sub: ACCOUNT_UUID, iat: now, exp: now + 180, qsh, ...options.claims },
  });
}

export interface SendOptions {
  token?: string;
  /** Put the token into `?jwt=` instead of the Authorization header. */
  tokenInQuery?: boolean;
  authorization?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  bindings?: ConnectBindings;
  executionCtx?: ExecutionContext;
}

/** Sends a request to an app built on the framework, with the test bindings. */
/** Anything with Hono's `request` method, whatever its bindings type. */
interface RequestableApp {
  request(input: string, init: RequestInit, bindings: ConnectBindings, executionCtx?: ExecutionContext): Response | Promise<Response>;
}

export async function send(
  app: RequestableApp,
  method: string,
  path: string,
  options: SendOptions = {},
): Promise<Response> {
  let url = `${APP_BASE_URL}${path}`;
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) {
    if (options.tokenInQuery === true) {
      url += `${url.includes('?') ? '&' : '?'}jwt=${options.token}`;
    } else {
      headers.Authorization = `JWT ${options.token}`;
    }
  }
  if (options.authorization !== undefined) {
    headers.Authorization = options.authorization;
  }

  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  return app.request(url, { method, headers, ...(body === undefined ? {} : { body }) }, options.bindings ?? testBindings(), options.executionCtx);
}

/** Stores an installation directly, as a completed first install would. */
export async function seedInstallation(clientKey: string, secret = SECRET_OLD, kv: KVNamespace = env.CONNECT_KV) {
  const app = createTestApp();
  const response = await send(app, 'POST', '/installed', {
    body: installedPayload(clientKey, { sharedSecret: secret }),
    bindings: testBindings({ CONNECT_KV: kv }),
  });
  if (response.status !== 204) {
    throw new Error(`Seeding the installation failed with ${response.status}: ${await response.text()}`);
  }
  return new InstallationStore(kv, testCipher).get(clientKey);
}
