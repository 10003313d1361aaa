/**
 * OAuth access tokens for outgoing Bitbucket API calls, obtained through the
 * Connect JWT grant and cached in the isolate's memory and in Workers KV.
 * https://developer.atlassian.com/cloud/bitbucket/oauth-2/ (JWT grant for Connect apps)
 *
 * The grant has no refresh token: when a token nears its expiry, a new grant
 * JWT is minted and exchanged. Concurrent misses for one cache key share one
 * exchange, so an isolate exchanges once per installation and restriction per
 * token lifetime however many requests arrive together.
 *
 * Value of `cache:{clientKey}:access-token:{restrictionHash}` (JSON, see
 * storage-keys.ts for the key):
 * ```
 * { "encryptedAccessToken": { "kid", "iv", "ct" } (AES-GCM, bound to the KV key),
 *   "expiresAt" (epoch seconds), "scopes": [granted scopes],
 *   "restriction": { "scopes": [sorted requested scopes], "repositoryUuid": "{uuid}" | null } }
 * ```
 */
import type { AllowList } from './allow-list';
import { ConnectError } from './errors';
import { isRecord } from './installation-payload';
import { errorName, type Installation } from './installations';
import { currentTimeSeconds } from './jwt';
import { logEvent } from './log';
import { isEncryptedValue, type EncryptedValue, type SecretCipher } from './secret-cipher';
import { sha256Hex } from './qsh';
import { accessTokenKey, installationCachePrefix, kvExpirationTtl } from './storage-keys';
import {
  exchangeAccessToken,
  normalizeRestriction,
  TOKEN_EXCHANGE_TIMEOUT_MS,
  type AccessTokenRestriction,
  type NormalizedRestriction,
} from './token-exchange';

export { normalizeRestriction, type AccessTokenRestriction, type NormalizedRestriction } from './token-exchange';

/** A cached token is not used within this many seconds of its expiry. */
export const ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS = 300;

/** Number of tokens kept in an isolate's memory before the least recently used is dropped. */
export const ACCESS_TOKEN_MEMORY_CACHE_SIZE = 500;

/** A token as cached and as returned to callers. */
export interface CachedAccessToken {
  readonly accessToken: string;
  /** Expiry in epoch seconds: the time the grant JWT was signed plus Bitbucket's `expires_in`. */
  readonly expiresAt: number;
  /** Scopes Bitbucket granted, as listed in its response. */
  readonly scopes: readonly string[];
  readonly restriction: NormalizedRestriction;
}

/**
 * Per-isolate token memory and the exchanges in flight. One instance is
 * shared by every provider in the isolate unless a provider is given its own.
 */
export interface AccessTokenMemoryCache {
  readonly tokens: Map<string, CachedAccessToken>;
  readonly inFlight: Map<string, Promise<CachedAccessToken>>;
  /**
   * Tokens Bitbucket rejected with a 401. A concurrent request can still read
   * such a token from KV before its deletion lands; it is never served again.
   */
  readonly rejected: Set<string>;
  readonly maxEntries: number;
}

export function createAccessTokenMemoryCache(maxEntries = ACCESS_TOKEN_MEMORY_CACHE_SIZE): AccessTokenMemoryCache {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ConnectError('configuration_error', `The access token memory cache size must be a positive integer, not ${maxEntries}.`);
  }
  return { tokens: new Map(), inFlight: new Map(), rejected: new Set(), maxEntries };
}

const isolateMemoryCache = createAccessTokenMemoryCache();

/**
 * Drops an installation's tokens from this isolate's memory, as uninstall
 * does; KV copies are deleted by InstallationStore.deleteCachedData. Other
 * isolates keep their copies until Bitbucket rejects them with a 401.
 */
export function forgetAccessTokens(clientKey: string, memory: AccessTokenMemoryCache = isolateMemoryCache): void {
  const prefix = installationCachePrefix(clientKey);
  for (const key of [...memory.tokens.keys()]) {
    if (key.startsWith(prefix)) {
      memory.tokens.delete(key);
    }
  }
}

export interface AccessTokenProviderOptions {
  readonly kv: KVNamespace;
  /** Encrypts the token in KV, bound to its KV key. */
  readonly cipher: SecretCipher;
  /** Origins the token endpoint may be on; the installation's baseUrl is checked against it. */
  readonly allowList: AllowList;
  readonly fetch?: (request: Request) => Promise<Response>;
  /** Clock in epoch seconds. */
  readonly now?: () => number;
  readonly timeoutMs?: number;
  /** Defaults to the cache shared by the whole isolate. */
  readonly memoryCache?: AccessTokenMemoryCache;
}

export interface AccessTokenProvider {
  /** Returns a cached token that is valid for at least the expiry margin, or exchanges a new one. */
  getAccessToken(installation: Installation, restriction?: AccessTokenRestriction): Promise<CachedAccessToken>;
  /**
   * Drops the cached copies of `accessToken` (after Bitbucket rejected it).
   * An entry that already contains a different token is left alone, so a
   * concurrent refresh is not undone.
   */
  invalidate(installation: Installation, restriction: AccessTokenRestriction | undefined, accessToken: string): Promise<void>;
}

export function createAccessTokenProvider(options: AccessTokenProviderOptions): AccessTokenProvider {
  const { kv, allowList, cipher } = options;
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const now = options.now ?? currentTimeSeconds;
  const timeoutMs = options.timeoutMs ?? TOKEN_EXCHANGE_TIMEOUT_MS;
  const memory = options.memoryCache ?? isolateMemoryCache;

  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ConnectError('configuration_error', `The token exchange timeout must be a positive number of milliseconds, not ${timeoutMs}.`);
  }

  async function getAccessToken(
    installation: Installation,
    restriction?: AccessTokenRestriction,
  ): Promise<CachedAccessToken> {
    const normalized = normalizeRestriction(restriction);
    const key = await cacheKey(installation.clientKey, normalized);

    const remembered = readMemory(memory, key, now());
    if (remembered !== undefined) {
      return remembered;
    }

    // NOTE: the shared exchange may belong to another request of the isolate.
    // Sharing a KV read that way gave some waiting requests workerd's own 500
    // under load. Exchanges are rare (one per token lifetime), and 1,200 page
    // loads in batches of 40 concurrent requests over 30 expiries under wrangler
    // dev all succeeded. Cancelling the request that started one is untested.
    const pending = memory.inFlight.get(key);
    if (pending !== undefined) {
      return pending;
    }

    const flight = loadOrExchange(installation, normalized, key).finally(() => {
      memory.inFlight.delete(key);
    });
    memory.inFlight.set(key, flight);
    return flight;
  }

  async function loadOrExchange(
    installation: Installation,
    restriction: NormalizedRestriction,
    key: string,
  ): Promise<CachedAccessToken> {
    const stored = await readKv(kv, cipher, key, restriction, installation.clientKey);
    if (stored !== undefined && isUsable(stored, now()) && !memory.rejected.has(stored.accessToken)) {
      writeMemory(memory, key, stored);
      return stored;
    }

    const exchanged = await exchangeAccessToken(installation, restriction, { allowList, send, now, timeoutMs });
    const token: CachedAccessToken = { ...exchanged, restriction };
    if (!isUsable(token, now())) {
      // The lifetime is shorter than the margin, so the token serves this
      // request (and the ones that joined it) and is not cached.
      return token;
    }

    writeMemory(memory, key, token);
    await writeKv(kv, cipher, key, token, now(), installation.clientKey);
    return token;
  }

  async function invalidate(
    installation: Installation,
    restriction: AccessTokenRestriction | undefined,
    accessToken: string,
  ): Promise<void> {
    // Recorded before any await, so that a read already under way cannot serve it again.
    if (memory.rejected.size >= memory.maxEntries) {
      memory.rejected.clear();
    }
    memory.rejected.add(accessToken);

    const normalized = normalizeRestriction(restriction);
    const key = await cacheKey(installation.clientKey, normalized);

    if (memory.tokens.get(key)?.accessToken === accessToken) {
      memory.tokens.delete(key);
    }

    const stored = await readKv(kv, cipher, key, normalized, installation.clientKey);
    if (stored?.accessToken !== accessToken) {
      return;
    }
    try {
      await kv.delete(key);
    } catch (error) {
      logEvent('warn', 'access_token_cache_delete_failed', { clientKey: installation.clientKey, reason: errorName(error) });
    }
  }

  return { getAccessToken, invalidate };
}

/** Builds the KV key of a token; the restriction enters as a SHA-256 hex digest of its canonical JSON. */
export async function cacheKey(clientKey: string, restriction: NormalizedRestriction): Promise<string> {
  const canonical = JSON.stringify({ scopes: restriction.scopes, repositoryUuid: restriction.repositoryUuid });
  return accessTokenKey(clientKey, await sha256Hex(canonical));
}

/** Checks that more than the expiry margin remains before the token expires. */
function isUsable(token: CachedAccessToken, nowSeconds: number): boolean {
  return token.expiresAt - ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS > nowSeconds;
}

function readMemory(memory: AccessTokenMemoryCache, key: string, nowSeconds: number): CachedAccessToken | undefined {
  const token = memory.tokens.get(key);
  if (token === undefined) {
    return undefined;
  }
  memory.tokens.delete(key);
  if (!isUsable(token, nowSeconds) || memory.rejected.has(token.accessToken)) {
    return undefined;
  }
  // Inserting again moves the entry to the end, so Map order is least recently used first.
  memory.tokens.set(key, token);
  return token;
}

function writeMemory(memory: AccessTokenMemoryCache, key: string, token: CachedAccessToken): void {
  memory.tokens.delete(key);
  memory.tokens.set(key, token);
  while (memory.tokens.size > memory.maxEntries) {
    const oldest = memory.tokens.keys().next().value;
    if (oldest === undefined) {
      break;
    }
    memory.tokens.delete(oldest);
  }
}

/** Reads a cached token; a failed read or an invalid value counts as a miss, since the cache is optional. */
async function readKv(
  kv: KVNamespace,
  cipher: SecretCipher,
  key: string,
  restriction: NormalizedRestriction,
  clientKey: string,
): Promise<CachedAccessToken | undefined> {
  let value: unknown;
  try {
    value = await kv.get(key, 'json');
  } catch (error) {
    logEvent('warn', 'access_token_cache_read_failed', { clientKey, reason: errorName(error) });
    return undefined;
  }

  if (value === null) {
    return undefined;
  }
  if (!isStoredAccessToken(value) || !sameRestriction(value.restriction, restriction)) {
    logEvent('warn', 'access_token_cache_value_invalid', { clientKey });
    return undefined;
  }

  const { encryptedAccessToken, ...rest } = value;
  try {
    return { ...rest, accessToken: await cipher.decrypt(encryptedAccessToken, key) };
  } catch (error) {
    logEvent('warn', 'access_token_cache_value_unreadable', { clientKey, reason: errorName(error) });
    return undefined;
  }
}

/**
 * Stores a token with a TTL of its remaining lifetime minus the margin. A TTL
 * below KV's 60-second minimum is not written, and a failed write (KV allows
 * one write per second per key and rejects others with HTTP 429) is logged and
 * tolerated because the memory copy still serves this isolate.
 */
async function writeKv(
  kv: KVNamespace,
  cipher: SecretCipher,
  key: string,
  token: CachedAccessToken,
  nowSeconds: number,
  clientKey: string,
): Promise<void> {
  const expirationTtl = kvExpirationTtl(token.expiresAt - ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS - nowSeconds);
  if (expirationTtl === undefined) {
    return;
  }

  try {
    const { accessToken, ...rest } = token;
    const stored: StoredAccessToken = { ...rest, encryptedAccessToken: await cipher.encrypt(accessToken, key) };
    await kv.put(key, JSON.stringify(stored), { expirationTtl });
  } catch (error) {
    logEvent('warn', 'access_token_cache_write_failed', { clientKey, reason: errorName(error) });
  }
}

/** A token as stored in KV: the token itself is encrypted and bound to its KV key. */
type StoredAccessToken = Omit<CachedAccessToken, 'accessToken'> & { readonly encryptedAccessToken: EncryptedValue };

function isStoredAccessToken(value: unknown): value is StoredAccessToken {
  if (!isRecord(value) || !isRecord(value.restriction)) {
    return false;
  }
  const { restriction } = value;
  return (
    isEncryptedValue(value.encryptedAccessToken) &&
    typeof value.expiresAt === 'number' &&
    Array.isArray(value.scopes) &&
    Array.isArray(restriction.scopes) &&
    (restriction.repositoryUuid === null || typeof restriction.repositoryUuid === 'string')
  );
}

function sameRestriction(left: NormalizedRestriction, right: NormalizedRestriction): boolean {
  return (
    left.repositoryUuid === right.repositoryUuid &&
    left.scopes.length === right.scopes.length &&
    left.scopes.every((scope, index) => scope === right.scopes[index])
  );
}
