/**
 * The Connect JWT grant: exchanges a JWT signed with the installation's
 * sharedSecret for an OAuth access token at Bitbucket's token endpoint.
 * https://developer.atlassian.com/cloud/bitbucket/oauth-2/ (JWT grant for Connect apps)
 *
 * The request is `POST {baseUrl}/site/oauth2/access_token` with
 * `Authorization: JWT <grant>` and the form body
 * `grant_type=urn:bitbucket:oauth2:jwt`, optionally with `scope` (a
 * space-separated subset of the app's scopes) and `bitbucket_repository` (a
 * repository UUID). The response is
 * `{access_token, token_type: "bearer", expires_in, scopes | scope}` or an
 * OAuth 2 error `{error, error_description}`. There is no refresh token.
 */
import { assertAllowedUrl, type AllowList } from './allow-list';
import { ConnectError } from './errors';
import { isRecord } from './installation-payload';
import { errorName, type Installation } from './installations';
import { signConnectToken } from './jwt';
import { logEvent } from './log';
import { createQueryStringHash } from './qsh';

/** Lifetime of the grant JWT sent to the token endpoint. */
export const GRANT_TOKEN_LIFETIME_SECONDS = 180;

/** Time allowed for one token exchange, headers and body together. */
export const TOKEN_EXCHANGE_TIMEOUT_MS = 10_000;

export const TOKEN_ENDPOINT_PATH = '/site/oauth2/access_token';
export const JWT_GRANT_TYPE = 'urn:bitbucket:oauth2:jwt';

/** Maximum length of upstream text quoted in an error message, in characters. */
const MAX_QUOTED_RESPONSE_LENGTH = 200;

const SCOPE_PATTERN = /^[A-Za-z0-9:_.-]+$/;
const UUID_PATTERN = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

/** Limits requested for a token: a subset of the app's scopes and one repository. */
export interface AccessTokenRestriction {
  /** Scopes such as `repository:write`; empty or missing means all of the app's scopes. */
  readonly scopes?: readonly string[];
  /** Repository UUID, with or without braces; the token then works for that repository only. */
  readonly repositoryUuid?: string;
}

/** A restriction in canonical form: scopes sorted and deduplicated, UUID braced and lower case. */
export interface NormalizedRestriction {
  readonly scopes: readonly string[];
  readonly repositoryUuid: string | null;
}

/** Sorts and deduplicates the scopes and brings the repository UUID to `{lowercase}` form. */
export function normalizeRestriction(restriction: AccessTokenRestriction = {}): NormalizedRestriction {
  const scopes = new Set<string>();
  for (const scope of restriction.scopes ?? []) {
    const trimmed = scope.trim();
    if (!SCOPE_PATTERN.test(trimmed)) {
      throw new ConnectError('invalid_request', `Invalid access token scope ${JSON.stringify(scope)}: expected a scope name such as repository:write.`);
    }
    scopes.add(trimmed);
  }

  let repositoryUuid: string | null = null;
  if (restriction.repositoryUuid !== undefined) {
    const match = UUID_PATTERN.exec(restriction.repositoryUuid.trim());
    if (match === null) {
      throw new ConnectError(
        'invalid_request',
        `Invalid repository UUID ${JSON.stringify(restriction.repositoryUuid)}: expected a UUID such as {01234567-89ab-cdef-0123-456789abcdef}.`,
      );
    }
    repositoryUuid = `{${match[1]!.toLowerCase()}}`;
  }

  return { scopes: [...scopes].sort(), repositoryUuid };
}

/** A token as the token endpoint granted it. */
export interface ExchangedAccessToken {
  readonly accessToken: string;
  /** Expiry in epoch seconds, counted from the moment the grant JWT was signed. */
  readonly expiresAt: number;
  /** Scopes Bitbucket granted, as listed in its response. */
  readonly scopes: readonly string[];
}

export interface ExchangeContext {
  readonly allowList: AllowList;
  readonly send: (request: Request) => Promise<Response>;
  readonly now: () => number;
  readonly timeoutMs: number;
}

/**
 * Mints a grant JWT, posts it to the installation's token endpoint and
 * validates the response. The token URL is checked against the allow-list
 * before anything is sent.
 */
export async function exchangeAccessToken(
  installation: Installation,
  restriction: NormalizedRestriction,
  context: ExchangeContext,
): Promise<ExchangedAccessToken> {
  const { clientKey } = installation;
  const tokenUrl = new URL(TOKEN_ENDPOINT_PATH, installation.baseUrl).href;
  assertAllowedUrl(tokenUrl, context.allowList, 'baseUrl');

  const issuedAt = context.now();
  const grantToken = await signConnectToken(
    {
      iss: installation.key,
      sub: clientKey,
      iat: issuedAt,
      exp: issuedAt + GRANT_TOKEN_LIFETIME_SECONDS,
      qsh: await createQueryStringHash('POST', tokenUrl),
    },
    installation.sharedSecret,
  );

  const form = new URLSearchParams({ grant_type: JWT_GRANT_TYPE });
  if (restriction.scopes.length > 0) {
    form.set('scope', restriction.scopes.join(' '));
  }
  if (restriction.repositoryUuid !== null) {
    form.set('bitbucket_repository', restriction.repositoryUuid);
  }

  const request = new Request(tokenUrl, {
    method: 'POST',
    headers: {
      Authorization: `JWT ${grantToken}`,
      'Content-Type': 'application/x-www-form-urlencoded',
      Accept: 'application/json',
    },
    body: form.toString(),
    redirect: 'manual',
    signal: AbortSignal.timeout(context.timeoutMs),
  });

  let status: number;
  let contentType: string;
  let text: string;
  try {
    const response = await context.send(request);
    status = response.status;
    contentType = response.headers.get('Content-Type') ?? 'no content type';
    text = await response.text();
  } catch (error) {
    throw exchangeTransportError(error, request.signal, clientKey, context.timeoutMs);
  }

  const token = parseTokenResponse(status, contentType, text, clientKey);
  const expiresAt = issuedAt + token.expiresIn;
  logEvent('info', 'access_token_exchanged', { clientKey, expiresIn: token.expiresIn, restricted: isRestricted(restriction) });
  return { accessToken: token.accessToken, expiresAt, scopes: token.scopes };
}

function exchangeTransportError(error: unknown, signal: AbortSignal, clientKey: string, timeoutMs: number): ConnectError {
  if (signal.aborted) {
    logEvent('warn', 'token_exchange_failed', { code: 'bitbucket_timeout', clientKey, path: TOKEN_ENDPOINT_PATH });
    return new ConnectError('bitbucket_timeout', `The token exchange with Bitbucket timed out after ${timeoutMs} ms.`, {
      clientKey,
      cause: error,
    });
  }
  logEvent('warn', 'token_exchange_failed', { code: 'token_exchange_failed', clientKey, path: TOKEN_ENDPOINT_PATH, reason: errorName(error) });
  return new ConnectError('token_exchange_failed', 'The token exchange request to Bitbucket failed before a response arrived.', {
    clientKey,
    cause: error,
  });
}

interface TokenResponse {
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly scopes: string[];
}

/** Validates the token endpoint's response. Every failure is a token_exchange_failed error with the HTTP status. */
function parseTokenResponse(status: number, contentType: string, text: string, clientKey: string): TokenResponse {
  const fail = (message: string): ConnectError => {
    logEvent('warn', 'token_exchange_failed', { code: 'token_exchange_failed', clientKey, path: TOKEN_ENDPOINT_PATH, status });
    return new ConnectError('token_exchange_failed', message, { clientKey, upstreamStatus: status });
  };

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw fail(`The token endpoint returned HTTP ${status} with a body that is not JSON (${contentType}).`);
  }
  if (!isRecord(body)) {
    throw fail(`The token endpoint returned HTTP ${status} with JSON that is not an object.`);
  }

  if (typeof body.error === 'string' || status < 200 || status > 299) {
    const code = typeof body.error === 'string' ? body.error : 'no OAuth error code';
    const description = typeof body.error_description === 'string' ? `: ${quote(body.error_description)}` : '';
    throw fail(`The token endpoint rejected the JWT grant with HTTP ${status} (${quote(code)}${description}).`);
  }

  const accessToken = body.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw fail('The token endpoint response has no access_token string.');
  }

  const expiresIn = body.expires_in;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
    throw fail('The token endpoint response has no positive expires_in number.');
  }

  const tokenType = body.token_type;
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
    throw fail(`The token endpoint returned token_type ${quote(String(tokenType))}; expected "bearer".`);
  }

  // Bitbucket renamed the field from `scopes` to `scope`; either may arrive.
  const scopes = parseScopes(body.scopes ?? body.scope);
  return { accessToken, expiresIn: Math.floor(expiresIn), scopes };
}

function parseScopes(value: unknown): string[] {
  if (typeof value === 'string') {
    return value.split(/[\s,]+/).filter((scope) => scope !== '');
  }
  if (Array.isArray(value)) {
    return value.filter((scope): scope is string => typeof scope === 'string');
  }
  return [];
}

function isRestricted(restriction: NormalizedRestriction): boolean {
  return restriction.scopes.length > 0 || restriction.repositoryUuid !== null;
}

/** Quotes upstream text for a message, cut to a bounded length. */
function quote(text: string): string {
  const excerpt = text.length > MAX_QUOTED_RESPONSE_LENGTH ? `${text.slice(0, MAX_QUOTED_RESPONSE_LENGTH)}...` : text;
  return JSON.stringify(excerpt);
}
