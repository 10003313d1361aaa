/**
 * Session tokens for an iframe page's own requests back to the app.
 *
 * Bitbucket gives a page one JWT, bound by its qsh to that page's URL, and no
 * way to get a fresh one for XHR calls. After a verified page load the app
 * issues a session token: HS256 with the installation's sharedSecret, `iss` =
 * clientKey, `sub` = the acting account, no qsh, and a marker claim. The
 * authentication middleware accepts it only on routes that opt in.
 *
 * Lifetime: SESSION_TOKEN_LIFETIME_SECONDS (15 minutes). It is short so that a
 * leaked token is useful only briefly, and long enough for a user to work on
 * one page; after it the page must be reloaded through Bitbucket, which signs
 * a new page JWT. There is no refresh, because refreshing with a session token
 * alone would let a stolen token live forever.
 */
import type { VerifiedClaims } from './jwt';
import { currentTimeSeconds, signConnectToken } from './jwt';

export const SESSION_TOKEN_LIFETIME_SECONDS = 15 * 60;

/** Claim that marks a session token; Bitbucket's tokens never carry it. */
export const SESSION_TOKEN_CLAIM = 'connect_session';

export interface SessionTokenSubject {
  readonly clientKey: string;
  readonly sharedSecret: string;
  /** App key, sent as `aud` so the token names its audience. */
  readonly appKey: string;
  /** The acting account from the page token's `sub`, if any. */
  readonly accountId: string | undefined;
}

export async function createSessionToken(
  subject: SessionTokenSubject,
  nowSeconds: number = currentTimeSeconds(),
): Promise<string> {
  const claims: Record<string, unknown> = {
    iss: subject.clientKey,
    aud: subject.appKey,
    iat: nowSeconds,
    exp: nowSeconds + SESSION_TOKEN_LIFETIME_SECONDS,
    [SESSION_TOKEN_CLAIM]: true,
  };
  if (subject.accountId !== undefined) {
    claims.sub = subject.accountId;
  }
  return signConnectToken(claims, subject.sharedSecret);
}

/** Whether verified claims are those of a session token. */
export function isSessionClaims(claims: VerifiedClaims): boolean {
  return claims[SESSION_TOKEN_CLAIM] === true;
}
