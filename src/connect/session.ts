/**
 * Session tokens for an iframe page's own requests back to the app.
 *
 * Bitbucket gives a page one JWT, bound by its qsh to that page's URL, and no
 * way to get a fresh one for XHR calls. After a verified page load the app
 * issues a session token: HS256 with the installation's sharedSecret, `iss` =
 * clientKey, `sub` = the acting account, no qsh, and a claim naming its
 * scope. The authentication middleware accepts it only on routes that opt in
 * to that scope, and only in the Authorization header, never in a URL where
 * it could leak into logs and history. Scopes keep a token from a page every
 * user sees (such as a repository page) away from routes meant for another
 * page (such as the admin-only configure page).
 *
 * Lifetime: SESSION_TOKEN_LIFETIME_SECONDS (15 minutes). It is short so that a
 * leaked token is useful only briefly, and long enough for a user to work on
 * one page. After it, the page must be reloaded through Bitbucket, which signs
 * a new page JWT. There is no refresh, because refreshing with a session token
 * alone would let a stolen token live forever.
 */
import { ConnectError } from './errors';
import type { VerifiedClaims } from './jwt';
import { currentTimeSeconds, signConnectToken } from './jwt';

export const SESSION_TOKEN_LIFETIME_SECONDS = 15 * 60;

/** Claim that marks a session token and names its scope; Bitbucket's tokens never carry it. */
export const SESSION_TOKEN_CLAIM = 'connect_session';

/** Scope of session tokens issued and accepted when a route names none. */
export const DEFAULT_SESSION_SCOPE = 'page';

const SESSION_SCOPE_PATTERN = /^[a-z0-9-]{1,32}$/;

export interface SessionTokenSubject {
  readonly clientKey: string;
  readonly sharedSecret: string;
  /** App key, sent as `aud` so the token names its audience. */
  readonly appKey: string;
  /** The acting account from the page token's `sub`, if any. */
  readonly accountId: string | undefined;
  /** The routes the token is for; DEFAULT_SESSION_SCOPE when absent. */
  readonly scope?: string;
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
    [SESSION_TOKEN_CLAIM]: validateSessionScope(subject.scope ?? DEFAULT_SESSION_SCOPE),
  };
  if (subject.accountId !== undefined) {
    claims.sub = subject.accountId;
  }
  return signConnectToken(claims, subject.sharedSecret);
}

/** Checks whether verified claims are those of a session token, whatever their scope. */
export function isSessionClaims(claims: VerifiedClaims): boolean {
  return claims[SESSION_TOKEN_CLAIM] !== undefined;
}

/** Returns the scope a session token was issued for, or undefined when the claim is not a scope. */
export function sessionScopeOf(claims: VerifiedClaims): string | undefined {
  const scope = claims[SESSION_TOKEN_CLAIM];
  return typeof scope === 'string' && SESSION_SCOPE_PATTERN.test(scope) ? scope : undefined;
}

/** Checks a scope name: lower-case letters, digits and "-", at most 32 characters. */
export function validateSessionScope(scope: string): string {
  if (!SESSION_SCOPE_PATTERN.test(scope)) {
    throw new ConnectError(
      'configuration_error',
      `Session scope "${scope.slice(0, 40)}" must be 1 to 32 lower-case letters, digits or "-".`,
    );
  }
  return scope;
}
