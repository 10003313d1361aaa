// Connect JWTs as Bitbucket signs and checks them, built on the npm package
// atlassian-jwt so that the simulator does not share code with the framework
// it tests.
//
// atlassian-jwt 2.0.3 differs from Atlassian's Java reference in three edge
// cases: it sorts query parameter names by decoded instead of percent-encoded
// name, strips a base path without a segment boundary, and encodes some path
// characters differently. The simulator only signs URLs at the app's origin
// root, with plain parameter names and paths that need no percent-encoding,
// where both implementations agree.

import {
  createQueryStringHash,
  decodeSymmetric,
  encodeSymmetric,
  fromMethodAndUrl,
  SymmetricAlgorithm,
} from 'atlassian-jwt';

/** Lifetime of every JWT the simulator signs: lifecycle calls, iframe URLs and webhooks. */
export const JWT_LIFETIME_SECONDS = 180;

export interface JwtClaims {
  iss?: unknown;
  sub?: unknown;
  iat?: unknown;
  exp?: unknown;
  qsh?: unknown;
  [claim: string]: unknown;
}

export type JwtCheck = { ok: true; claims: JwtClaims } | { ok: false; reason: string };

export function nowInSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Computes the query string hash of a request. `url` may be absolute or a
 * path with query; `baseUrl`, when given, is stripped from the path first.
 */
export function computeQsh(method: string, url: string, baseUrl?: string): string {
  return createQueryStringHash(fromMethodAndUrl(method, url), false, baseUrl);
}

export interface SignRequestOptions {
  issuer: string;
  subject?: string;
  method: string;
  url: string;
  baseUrl?: string;
  sharedSecret: string;
}

/** Signs an HS256 JWT for one request: iss, optional sub, iat, exp and the request's qsh. */
export function signRequestJwt(options: SignRequestOptions): string {
  const issuedAt = nowInSeconds();
  const claims: JwtClaims = {
    iss: options.issuer,
    iat: issuedAt,
    exp: issuedAt + JWT_LIFETIME_SECONDS,
    qsh: computeQsh(options.method, options.url, options.baseUrl),
  };
  if (options.subject !== undefined) {
    claims.sub = options.subject;
  }
  return encodeSymmetric(claims, options.sharedSecret, SymmetricAlgorithm.HS256);
}

/**
 * Decodes a token's claims without checking the signature, so that the
 * installation whose secret verifies it can be looked up. Rejects any header
 * algorithm other than HS256.
 */
export function readUnverifiedClaims(token: string): JwtCheck {
  try {
    const claims: unknown = decodeSymmetric(token, 'unused', SymmetricAlgorithm.HS256, true);
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
      return { ok: false, reason: 'the JWT payload is not a JSON object' };
    }
    return { ok: true, claims: claims as JwtClaims };
  } catch {
    // atlassian-jwt's messages quote the token, so none of them is passed on.
    return { ok: false, reason: 'the JWT is malformed or not signed with HS256' };
  }
}

/** Verifies the HS256 signature of a token with a shared secret. */
export function verifySignature(token: string, sharedSecret: string): JwtCheck {
  try {
    const claims = decodeSymmetric(token, sharedSecret, SymmetricAlgorithm.HS256) as JwtClaims;
    return { ok: true, claims };
  } catch {
    return { ok: false, reason: 'the JWT signature does not match the shared secret' };
  }
}

/** Checks that `exp` is a number in the future and that `iat` is a number. */
export function checkTimeClaims(claims: JwtClaims, now = nowInSeconds()): string | undefined {
  if (typeof claims.exp !== 'number') {
    return 'the JWT has no numeric exp claim';
  }
  if (claims.exp <= now) {
    return 'the JWT has expired';
  }
  if (typeof claims.iat !== 'number') {
    return 'the JWT has no numeric iat claim';
  }
  return undefined;
}

/** Returns the token from an `Authorization: JWT <token>` header, or undefined. */
export function readJwtAuthorization(header: string | undefined): string | undefined {
  const match = /^JWT ([A-Za-z0-9_.-]+)$/.exec(header ?? '');
  return match?.[1];
}
