/**
 * Connect JWTs (RFC 7519) as Bitbucket Cloud uses them: HS256 with the
 * installation's sharedSecret, signed and verified through hono/jwt.
 * https://developer.atlassian.com/cloud/bitbucket/understanding-jwt-for-apps/
 *
 * A token passes through three stages, each with its own type: the raw string,
 * the decoded but unverified token, and the verified claims. Only verified
 * claims leave the authentication code.
 *
 * The key is always the sharedSecret of the installation named by `iss`.
 * Header parameters that name a key (`kid`, `jku`, `jwk`, `x5u`) are accepted
 * but never read, so they cannot choose the key and nothing is fetched.
 */
import { sign, verify } from 'hono/jwt';
import { ConnectError } from './errors';
import { isValidClientKey } from './installation-payload';
import { MAX_CLIENT_KEY_LENGTH } from './storage-keys';

/** The only algorithm accepted or produced. The token header never chooses it. */
export const CONNECT_JWT_ALGORITHM = 'HS256';

/** Maximum token length, in characters, checked before any decoding. */
export const MAX_TOKEN_LENGTH = 8192;

/** Tolerated clock difference between Bitbucket and the worker, in seconds. */
export const CLOCK_SKEW_LEEWAY_SECONDS = 30;

/** Number of imported HMAC keys kept per isolate. */
const HMAC_KEY_CACHE_SIZE = 512;

const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]*$/;

/** Values of the header's `typ` that hono/jwt accepts: `JWT` in any case, optionally as `application/jwt`. */
const JWT_MEDIA_TYPE = /^(application\/)?jwt$/i;

/** Fails on bytes that are not UTF-8, and keeps a byte order mark so that JSON.parse rejects it. */
const strictUtf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Claims of a token whose signature has not been checked yet. */
export interface UnverifiedToken {
  readonly raw: string;
  readonly header: Readonly<Record<string, unknown>>;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Claims after the signature and time checks passed. */
export interface VerifiedClaims {
  readonly iss: string;
  readonly exp: number;
  readonly iat?: number;
  readonly nbf?: number;
  readonly sub?: string;
  readonly qsh?: string;
  readonly [claim: string]: unknown;
}

/**
 * Decodes a token without trusting it: checks its size, shape and header,
 * and requires `iss` so the installation can be looked up.
 */
export function decodeUnverified(raw: string): UnverifiedToken {
  if (raw.length > MAX_TOKEN_LENGTH) {
    throw new ConnectError('token_too_large', `The JWT is longer than ${MAX_TOKEN_LENGTH} characters.`);
  }

  const segments = raw.split('.');
  if (segments.length !== 3 || segments.some((segment) => !BASE64URL_SEGMENT.test(segment))) {
    throw new ConnectError('malformed_token', 'The JWT must be three base64url segments separated by dots.');
  }

  const [encodedHeader = '', encodedClaims = ''] = segments;
  const header = decodeJsonSegment(encodedHeader, 'header');
  const payload = decodeJsonSegment(encodedClaims, 'claims');
  if (!isPlainObject(header) || !isPlainObject(payload)) {
    throw new ConnectError('malformed_token', 'The JWT header and claims must be JSON objects.');
  }
  if (header.alg !== CONNECT_JWT_ALGORITHM) {
    throw new ConnectError('unsupported_algorithm', `The JWT algorithm must be ${CONNECT_JWT_ALGORITHM}.`);
  }
  if ('crit' in header) {
    throw new ConnectError('malformed_token', 'The JWT header has a "crit" parameter, which is not supported.');
  }
  // hono/jwt rejects any other "typ", which would otherwise be reported as a bad signature.
  if ('typ' in header && !(typeof header.typ === 'string' && JWT_MEDIA_TYPE.test(header.typ))) {
    throw new ConnectError('malformed_token', 'The JWT header "typ" must be "JWT" when present.');
  }
  if (typeof payload.iss !== 'string' || payload.iss === '') {
    throw new ConnectError('missing_claim', 'The JWT has no "iss" claim with a string naming the installation (clientKey).');
  }
  // The issuer becomes a KV key before the signature is checked. A value that
  // no install could have stored would otherwise fail the KV read with a 503:
  // KV keys are at most 512 bytes, and encodeURIComponent throws on a lone
  // UTF-16 surrogate.
  if (!isValidClientKey(payload.iss)) {
    throw new ConnectError(
      'invalid_claim',
      `The JWT "iss" claim is not a valid clientKey: expected 1 to ${MAX_CLIENT_KEY_LENGTH} printable ASCII characters without spaces.`,
    );
  }

  return { raw, header, claims: payload };
}

/**
 * Verifies the signature with the sharedSecret, then the time claims with our
 * own leeway. hono/jwt's time checks are off because they allow no leeway.
 */
export async function verifyConnectToken(
  token: UnverifiedToken,
  sharedSecret: string,
  nowSeconds: number = currentTimeSeconds(),
): Promise<VerifiedClaims> {
  const key = await importHmacKey(sharedSecret);
  try {
    await verify(token.raw, key, { alg: CONNECT_JWT_ALGORITHM, exp: false, nbf: false, iat: false });
  } catch {
    // hono/jwt's message contains the token, so it is dropped here.
    throw new ConnectError('bad_signature', 'The JWT signature does not match the installation\'s shared secret.');
  }

  return checkTimeClaims(token.claims, nowSeconds);
}

/** Checks `exp` (required), `iat` and `nbf` against the clock with the leeway. */
export function checkTimeClaims(claims: Readonly<Record<string, unknown>>, nowSeconds: number): VerifiedClaims {
  const { exp, iat, nbf } = claims;

  if (exp === undefined) {
    throw new ConnectError('missing_claim', 'The JWT has no "exp" claim.');
  }
  if (!isNumericDate(exp)) {
    throw new ConnectError('invalid_claim', 'The JWT "exp" claim must be a number of seconds.');
  }
  if (nowSeconds >= exp + CLOCK_SKEW_LEEWAY_SECONDS) {
    throw new ConnectError('token_expired', 'The JWT has expired; reload the page in Bitbucket to get a new one.');
  }

  if (iat !== undefined) {
    if (!isNumericDate(iat)) {
      throw new ConnectError('invalid_claim', 'The JWT "iat" claim must be a number of seconds.');
    }
    if (iat > nowSeconds + CLOCK_SKEW_LEEWAY_SECONDS) {
      throw new ConnectError('token_not_yet_valid', 'The JWT "iat" claim is in the future.');
    }
  }

  if (nbf !== undefined) {
    if (!isNumericDate(nbf)) {
      throw new ConnectError('invalid_claim', 'The JWT "nbf" claim must be a number of seconds.');
    }
    if (nbf > nowSeconds + CLOCK_SKEW_LEEWAY_SECONDS) {
      throw new ConnectError('token_not_yet_valid', 'The JWT is not valid yet ("nbf" is in the future).');
    }
  }

  for (const name of ['iss', 'sub', 'qsh'] as const) {
    if (claims[name] !== undefined && typeof claims[name] !== 'string') {
      throw new ConnectError('invalid_claim', `The JWT "${name}" claim must be a string.`);
    }
  }

  return claims as VerifiedClaims;
}

/** Signs claims with HS256 and the given secret. */
export async function signConnectToken(claims: Record<string, unknown>, sharedSecret: string): Promise<string> {
  const key = await importHmacKey(sharedSecret);
  return sign(claims, key, CONNECT_JWT_ALGORITHM);
}

/**
 * Decodes one base64url segment as UTF-8 JSON and rejects a name repeated
 * within one JSON object. JSON.parse keeps the last value but another JWT
 * library may keep the first, so `{"iss":"a","iss":"b"}` could name two
 * issuers. RFC 7519 section 4 allows a parser to reject such tokens.
 */
function decodeJsonSegment(segment: string, part: 'header' | 'claims'): unknown {
  const malformed = () =>
    new ConnectError('malformed_token', `The JWT ${part} is not valid base64url-encoded UTF-8 JSON.`);
  const text = decodeBase64UrlText(segment);
  if (text === undefined) {
    throw malformed();
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed();
  }

  if (hasDuplicateName(text)) {
    throw new ConnectError('malformed_token', `The JWT ${part} contains a duplicate name in a JSON object.`);
  }
  return value;
}

/** Decodes base64url without padding to UTF-8 text, or returns undefined when either step fails. */
function decodeBase64UrlText(segment: string): string | undefined {
  try {
    const binary = atob(segment.replaceAll('-', '+').replaceAll('_', '/'));
    const bytes = Uint8Array.from(binary, (character) => character.charCodeAt(0));
    return strictUtf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Reports whether any object in `json`, which JSON.parse has accepted, has
 * two members with the same name. Names are compared after unescaping, so
 * `"alg"` and `"\u0061lg"` are the same name. One pass over the text, so the
 * cost is linear in its length, which MAX_TOKEN_LENGTH bounds.
 */
function hasDuplicateName(json: string): boolean {
  // One entry per open object (its names so far) or array (null).
  const openContainers: Array<Set<string> | null> = [];
  let expectingName = false;

  for (let index = 0; index < json.length; index += 1) {
    const character = json[index];
    if (character === '"') {
      const end = closingQuoteIndex(json, index);
      const names = openContainers.at(-1);
      if (expectingName && names) {
        // Unescapes the name, so an escaped spelling cannot hide a repeat.
        const name = JSON.parse(json.slice(index, end + 1)) as string;
        if (names.has(name)) {
          return true;
        }
        names.add(name);
        expectingName = false;
      }
      index = end;
    } else if (character === '{') {
      openContainers.push(new Set());
      expectingName = true;
    } else if (character === '[') {
      openContainers.push(null);
      expectingName = false;
    } else if (character === '}' || character === ']') {
      openContainers.pop();
      expectingName = false;
    } else if (character === ',') {
      expectingName = openContainers.at(-1) instanceof Set;
    }
  }
  return false;
}

/** Returns the index of the quote that closes the JSON string opening at `start`, or the text's length. */
function closingQuoteIndex(json: string, start: number): number {
  let index = start + 1;
  while (index < json.length && json[index] !== '"') {
    index += json[index] === '\\' ? 2 : 1;
  }
  return index;
}

export function currentTimeSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const hmacKeyCache = new Map<string, Promise<CryptoKey>>();

/**
 * Imports the secret as an HMAC-SHA256 CryptoKey, cached per isolate.
 * Passing a CryptoKey to hono/jwt also stops it from reading a secret that
 * happens to contain "PUBLIC" or "PRIVATE" as a PEM key.
 */
export function importHmacKey(sharedSecret: string): Promise<CryptoKey> {
  const cached = hmacKeyCache.get(sharedSecret);
  if (cached !== undefined) {
    return cached;
  }

  const imported = crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(sharedSecret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  );
  if (hmacKeyCache.size >= HMAC_KEY_CACHE_SIZE) {
    const oldest = hmacKeyCache.keys().next().value;
    if (oldest !== undefined) {
      hmacKeyCache.delete(oldest);
    }
  }
  hmacKeyCache.set(sharedSecret, imported);
  return imported;
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
