/**
 * Verification of an incoming Connect request, independent of Hono: the
 * token's shape, the installation named by `iss`, the HS256 signature with
 * that installation's sharedSecret, the time claims and the query string hash.
 * https://developer.atlassian.com/cloud/bitbucket/understanding-jwt-for-apps/
 */
import { ConnectError } from './errors';
import type { InstallationRecord } from './installations';
import { currentTimeSeconds, decodeUnverified, verifyConnectToken, type UnverifiedToken, type VerifiedClaims } from './jwt';
import { createQueryStringHashCandidates } from './qsh';
import { isSessionClaims, sessionScopeOf } from './session';

/** The request as received, which the qsh must describe. */
export interface ReceivedRequest {
  readonly method: string;
  /** The full URL as received, undecoded. */
  readonly url: string;
  /** The `Authorization` header, if any. */
  readonly authorization: string | undefined;
}

export type TokenKind = 'connect' | 'session';

export interface VerifiedRequest {
  readonly record: InstallationRecord;
  readonly claims: VerifiedClaims;
  readonly kind: TokenKind;
}

const JWT_SCHEME_PATTERN = /^JWT[ \t]+([^\s]+)[ \t]*$/i;

/**
 * Takes the token from the `jwt` query parameter or `Authorization: JWT`.
 * Two different tokens in one request are rejected rather than choosing one.
 */
export function extractToken(request: ReceivedRequest): string {
  const queryTokens = new URL(request.url).searchParams.getAll('jwt');
  if (queryTokens.includes('')) {
    throw new ConnectError('missing_token', 'The jwt query parameter is empty.');
  }
  const candidates = new Set(queryTokens);

  if (request.authorization !== undefined) {
    const match = JWT_SCHEME_PATTERN.exec(request.authorization.trim());
    if (match?.[1] === undefined) {
      throw new ConnectError(
        'malformed_token',
        'The Authorization header must use the JWT scheme: "Authorization: JWT <token>".',
      );
    }
    candidates.add(match[1]);
  }

  if (candidates.size === 0) {
    throw new ConnectError(
      'missing_token',
      'No Connect JWT found: send it as the "jwt" query parameter or as "Authorization: JWT <token>".',
    );
  }
  if (candidates.size > 1) {
    throw new ConnectError('conflicting_tokens', 'The request carries more than one different JWT.');
  }
  return [...candidates][0] as string;
}

export interface VerifyOptions {
  /** The app's base URL; its path is removed from the request path for the qsh. */
  readonly appBaseUrl: string;
  /** Scope of the session tokens (no qsh) accepted on this route; undefined accepts none. */
  readonly sessionScope: string | undefined;
  readonly nowSeconds?: number;
}

/**
 * Verifies a decoded token against a known installation record. The record
 * may be uninstalled: the lifecycle routes verify against it, request
 * authentication rejects it before calling this.
 */
export async function verifyTokenForRecord(
  token: UnverifiedToken,
  record: InstallationRecord,
  request: ReceivedRequest,
  options: VerifyOptions,
): Promise<VerifiedRequest> {
  const clientKey = record.clientKey;
  const claims = await withClientKey(clientKey, () =>
    verifyConnectToken(token, record.sharedSecret, options.nowSeconds ?? currentTimeSeconds()),
  );

  if (isSessionClaims(claims)) {
    checkSessionToken(claims, request, options.sessionScope, clientKey);
    return { record, claims, kind: 'session' };
  }

  if (claims.qsh === undefined) {
    throw new ConnectError('missing_claim', 'The JWT has no "qsh" claim.', { clientKey });
  }

  const candidates = await withClientKey(clientKey, () =>
    createQueryStringHashCandidates(request.method, request.url, options.appBaseUrl),
  );
  if (!candidates.includes(claims.qsh)) {
    throw new ConnectError(
      'qsh_mismatch',
      'The JWT "qsh" claim does not match this request\'s method, path and query.',
      { clientKey },
    );
  }
  return { record, claims, kind: 'connect' };
}

function checkSessionToken(
  claims: VerifiedClaims,
  request: ReceivedRequest,
  routeScope: string | undefined,
  clientKey: string,
): void {
  if (routeScope === undefined) {
    throw new ConnectError('session_token_not_allowed', 'A session token is not accepted on this route.', { clientKey });
  }
  if (sessionScopeOf(claims) !== routeScope) {
    throw new ConnectError(
      'session_token_not_allowed',
      `This route accepts session tokens of scope "${routeScope}" only; the token was issued for another page.`,
      { clientKey },
    );
  }
  if (new URL(request.url).searchParams.has('jwt')) {
    throw new ConnectError(
      'session_token_not_allowed',
      'Send a session token in the Authorization header ("Authorization: JWT <token>"), not in the URL.',
      { clientKey },
    );
  }
}

/** Decodes the token of a request and names its unverified issuer. */
export function decodeRequestToken(request: ReceivedRequest): UnverifiedToken {
  return decodeUnverified(extractToken(request));
}

/** Adds the clientKey to a ConnectError thrown by `action`, for logging. */
async function withClientKey<T>(clientKey: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ConnectError && error.clientKey === undefined) {
      throw new ConnectError(error.code, error.message, {
        clientKey,
        cause: error.cause,
        ...(error.reason === undefined ? {} : { reason: error.reason }),
      });
    }
    throw error;
  }
}
