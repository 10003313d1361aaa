// POST /site/oauth2/access_token with Bitbucket's JWT grant: the app trades a
// JWT signed with its sharedSecret for an opaque access token. The request is
// checked in this order: Content-Type, grant type, the JWT, then the optional
// scope and repository restriction. Like Bitbucket's JWT grant, it issues no
// refresh token.

import type { IncomingMessage, ServerResponse } from 'node:http';

import { mediaType, readBody, sendJson, sendOAuthError } from './http';
import { checkTimeClaims, readJwtAuthorization, readUnverifiedClaims, verifySignature } from './jwt';
import { findRepositoryByUuid } from './resources';
import { expandScopes } from './scopes';
import type { SimulatorState } from './state';

export const JWT_GRANT_TYPE = 'urn:bitbucket:oauth2:jwt';

interface TokenRequestError {
  status: number;
  error: string;
  description: string;
}

interface TokenGrant {
  clientKey: string;
  scopes: string[];
  repositoryUuid?: string;
}

function rejectGrant(description: string): TokenRequestError {
  return { status: 401, error: 'invalid_grant', description };
}

/** Checks the request; returns the grant to issue or the OAuth error to respond with. */
function checkTokenRequest(state: SimulatorState, request: IncomingMessage, body: string): TokenGrant | TokenRequestError {
  if (mediaType(request.headers['content-type']) !== 'application/x-www-form-urlencoded') {
    return {
      status: 400,
      error: 'invalid_request',
      description: 'Content-Type must be application/x-www-form-urlencoded',
    };
  }
  const form = new URLSearchParams(body);
  const grantType = form.get('grant_type');
  if (grantType === null) {
    return { status: 400, error: 'invalid_request', description: 'grant_type is missing' };
  }
  if (grantType !== JWT_GRANT_TYPE) {
    return { status: 400, error: 'unsupported_grant_type', description: `grant_type must be ${JWT_GRANT_TYPE}` };
  }

  const token = readJwtAuthorization(request.headers.authorization);
  if (token === undefined) {
    return rejectGrant('the Authorization header must be "JWT <token>"');
  }
  const unverified = readUnverifiedClaims(token);
  if (!unverified.ok) {
    return rejectGrant(unverified.reason);
  }
  const installation = state.activeInstallation(unverified.claims.sub);
  if (installation === undefined || installation.sharedSecret === undefined) {
    return rejectGrant('sub is not the clientKey of an installed app');
  }
  const verified = verifySignature(token, installation.sharedSecret);
  if (!verified.ok) {
    return rejectGrant(verified.reason);
  }
  if (verified.claims.iss !== installation.appKey) {
    return rejectGrant('iss must be the app key');
  }
  const timeProblem = checkTimeClaims(verified.claims);
  if (timeProblem !== undefined) {
    return rejectGrant(timeProblem);
  }

  const grant: TokenGrant = { clientKey: installation.clientKey, scopes: installation.grantedScopes };
  const requestedScope = form.get('scope');
  if (requestedScope !== null && requestedScope.trim() !== '') {
    const granted = expandScopes(installation.grantedScopes);
    const requested = [...new Set(requestedScope.trim().split(/\s+/))];
    const missing = requested.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      return { status: 400, error: 'invalid_scope', description: `scopes not granted to the app: ${missing.join(' ')}` };
    }
    grant.scopes = requested;
  }

  const repository = form.get('bitbucket_repository');
  if (repository !== null && repository !== '') {
    const found = findRepositoryByUuid(state.seed, repository);
    if (found === undefined) {
      return { status: 400, error: 'invalid_request', description: `bitbucket_repository ${repository} is not a known repository UUID` };
    }
    grant.repositoryUuid = found.uuid;
  }
  return grant;
}

export async function handleTokenRequest(
  state: SimulatorState,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (request.method !== 'POST') {
    state.counts.tokenExchangeFailures += 1;
    sendOAuthError(response, 405, 'invalid_request', 'use POST');
    return;
  }
  const body = await readBody(request);
  const result = checkTokenRequest(state, request, body);
  if ('error' in result) {
    state.counts.tokenExchangeFailures += 1;
    state.log(`token exchange rejected -> ${result.status} ${result.error}: ${result.description}`);
    sendOAuthError(response, result.status, result.error, result.description);
    return;
  }

  const { token, expiresInSeconds } = state.issueAccessToken(result);
  const scopes = result.scopes.join(' ');
  const payload: Record<string, unknown> = {
    access_token: token,
    token_type: 'bearer',
    expires_in: expiresInSeconds,
    scopes,
  };
  if (state.legacyScopeField) {
    payload.scope = scopes;
  }
  state.counts.tokenExchanges += 1;
  const restriction = result.repositoryUuid === undefined ? '' : ` repository=${result.repositoryUuid}`;
  state.log(`token exchange for ${result.clientKey} -> 200 scopes="${scopes}"${restriction} expires_in=${expiresInSeconds}`);
  sendJson(response, 200, payload, { 'Cache-Control': 'no-store' });
}
