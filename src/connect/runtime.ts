/**
 * Per-request framework state: the bindings a Connect app needs, and the
 * settings derived from them once per isolate.
 */
import { parseAllowList, type AllowList } from './allow-list';
import type { AppDescriptor } from './descriptor';
import { resolveAppBaseUrl } from './descriptor';
import { InstallationStore } from './installations';
import { setLogLevel } from './log';
import { secretCipherFromBindings, type SecretCipher } from './secret-cipher';

/** Worker bindings the framework reads. Apps extend this with their own. */
export interface ConnectBindings {
  CONNECT_KV: KVNamespace;
  /** Public HTTPS URL of the worker; empty means the request's origin. */
  APP_BASE_URL?: string;
  /** Comma-separated origins accepted as installation base URLs. */
  ALLOWED_BASE_URLS?: string;
  /** Lowest log level written: debug, info, warn or error. */
  LOG_LEVEL?: string;
  /** Secret `<key id>:<base64 of 32 bytes>` that encrypts shared secrets and tokens in KV. */
  CONNECT_ENCRYPTION_KEY?: string;
  /** Secret, comma-separated keys of the same form that still decrypt after a rotation. */
  CONNECT_ENCRYPTION_OLD_KEYS?: string;
}

/** Framework state shared by the middleware and routes of one request. */
export interface ConnectRuntime {
  readonly descriptor: Readonly<AppDescriptor>;
  readonly appBaseUrl: string;
  readonly allowList: AllowList;
  readonly installations: InstallationStore;
  readonly kv: KVNamespace;
  /** The KV cipher; throws a configuration error when no key is set. */
  readonly cipher: () => SecretCipher;
}

/** Hono environment of the framework's routes. */
export interface ConnectEnv<Bindings extends ConnectBindings = ConnectBindings> {
  Bindings: Bindings;
  Variables: { connect: ConnectRuntime };
}

export function createRuntime(
  descriptor: Readonly<AppDescriptor>,
  bindings: ConnectBindings,
  requestUrl: string,
): ConnectRuntime {
  setLogLevel(bindings.LOG_LEVEL);
  const cipher = () => secretCipherFromBindings(bindings);
  return {
    descriptor,
    appBaseUrl: resolveAppBaseUrl(bindings.APP_BASE_URL, requestUrl),
    allowList: parseAllowList(bindings.ALLOWED_BASE_URLS),
    installations: new InstallationStore(bindings.CONNECT_KV, cipher),
    kv: bindings.CONNECT_KV,
    cipher,
  };
}
