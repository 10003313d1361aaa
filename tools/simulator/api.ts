// The REST API 2.0 resources the simulator serves, with Bitbucket's
// authentication, scope checks, error shape and pagination.
//
// Requests authenticate with `Authorization: Bearer <access token>` from the
// token endpoint, or with `Authorization: JWT <token>` signed by the app
// (iss = app key, sub = clientKey, qsh over the request with the /2.0 path).

import type { IncomingMessage, ServerResponse } from 'node:http';

import { checkTimeClaims, computeQsh, readJwtAuthorization, readUnverifiedClaims, verifySignature } from './jwt';
import { sendApiError, sendJson } from './http';
import {
  renderCommit,
  renderCurrentUser,
  renderPullRequest,
  renderRepository,
} from './representations';
import { buildPage, findRepository, matchesWorkspace, type PageRequest, readPageRequest } from './resources';
import { expandScopes } from './scopes';
import type { SeedRepository } from './seed';
import type { SimulatorState } from './state';

const PULL_REQUEST_STATES = ['OPEN', 'MERGED', 'DECLINED', 'SUPERSEDED'];

/** Identity and permissions of an authenticated request. */
interface Caller {
  clientKey: string;
  scopes: Set<string>;
  /** Braced UUID of the only repository the caller may read, when restricted. */
  repositoryUuid?: string;
}

type ApiError = { status: number; message: string; detail?: unknown };

/** Result of routing: a JSON body, an error, or undefined when no resource matches. */
type RouteResult = { body: unknown } | ApiError | undefined;

function authenticate(state: SimulatorState, request: IncomingMessage): Caller | ApiError {
  const authorization = request.headers.authorization ?? '';

  const bearer = /^Bearer (\S+)$/i.exec(authorization);
  if (bearer !== null) {
    const record = state.accessTokens.get(bearer[1] as string);
    if (record === undefined) {
      return { status: 401, message: 'Invalid or unknown access token.' };
    }
    if (record.expiresAtMs <= Date.now()) {
      return { status: 401, message: 'Access token expired.' };
    }
    return { clientKey: record.clientKey, scopes: expandScopes(record.scopes), repositoryUuid: record.repositoryUuid };
  }

  const token = readJwtAuthorization(authorization);
  if (token !== undefined) {
    return authenticateJwt(state, request, token);
  }
  if (authorization !== '') {
    return { status: 401, message: 'Unsupported Authorization scheme; use "Bearer <access token>" or "JWT <token>".' };
  }
  return { status: 401, message: 'This resource requires authentication.' };
}

function authenticateJwt(state: SimulatorState, request: IncomingMessage, token: string): Caller | ApiError {
  const unverified = readUnverifiedClaims(token);
  if (!unverified.ok) {
    return { status: 401, message: `Invalid JWT: ${unverified.reason}.` };
  }
  const installation = state.activeInstallation(unverified.claims.sub);
  if (installation === undefined || installation.sharedSecret === undefined) {
    return { status: 401, message: 'Invalid JWT: sub is not the clientKey of an installed app.' };
  }
  const verified = verifySignature(token, installation.sharedSecret);
  if (!verified.ok) {
    return { status: 401, message: `Invalid JWT: ${verified.reason}.` };
  }
  if (verified.claims.iss !== installation.appKey) {
    return { status: 401, message: 'Invalid JWT: iss must be the app key.' };
  }
  const timeProblem = checkTimeClaims(verified.claims);
  if (timeProblem !== undefined) {
    return { status: 401, message: `Invalid JWT: ${timeProblem}.` };
  }
  const expectedQsh = computeQsh(request.method ?? 'GET', request.url ?? '/');
  if (verified.claims.qsh !== expectedQsh) {
    return { status: 401, message: 'Invalid JWT: the qsh claim does not match the request.' };
  }
  return { clientKey: installation.clientKey, scopes: expandScopes(installation.grantedScopes) };
}

function requireScope(caller: Caller, scope: string): ApiError | undefined {
  if (caller.scopes.has(scope)) {
    return undefined;
  }
  return {
    status: 403,
    message: 'Your credentials lack one or more required privilege scopes.',
    detail: { granted: [...caller.scopes].sort(), required: [scope] },
  };
}

function allowRepository(caller: Caller, repository: SeedRepository): ApiError | undefined {
  if (caller.repositoryUuid === undefined || caller.repositoryUuid === repository.uuid) {
    return undefined;
  }
  return { status: 403, message: 'Access denied: this access token is restricted to another repository.' };
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Routes one authenticated GET request by its path segments after /2.0/. */
function route(state: SimulatorState, caller: Caller, segments: string[], requestUrl: URL): RouteResult {
  const { seed } = state;
  const baseUrl = state.url;

  if (segments.length === 1 && segments[0] === 'user') {
    return requireScope(caller, 'account') ?? { body: renderCurrentUser(baseUrl, seed.installer) };
  }
  if (segments[0] !== 'repositories' || segments.length < 2) {
    return undefined;
  }

  const workspace = decodeSegment(segments[1] as string);
  if (workspace === undefined || !matchesWorkspace(seed, workspace)) {
    return { status: 404, message: `Workspace ${workspace ?? segments[1]} not found.` };
  }
  const scopeError = requireScope(caller, segments[3] === 'pullrequests' ? 'pullrequest' : 'repository');
  if (scopeError !== undefined) {
    return scopeError;
  }
  const pageRequest = readPageRequest(requestUrl.searchParams);
  if (typeof pageRequest === 'string') {
    return { status: 400, message: pageRequest };
  }

  if (segments.length === 2) {
    const visible = seed.repositories.filter((repository) => allowRepository(caller, repository) === undefined);
    const values = visible.map((repository) => renderRepository(baseUrl, seed, repository));
    return { body: buildPage(values, pageRequest, requestUrl) };
  }

  const slug = decodeSegment(segments[2] as string);
  const repository = slug === undefined ? undefined : findRepository(seed, slug);
  if (repository === undefined) {
    return { status: 404, message: `Repository ${workspace}/${slug ?? segments[2]} not found.` };
  }
  const accessError = allowRepository(caller, repository);
  if (accessError !== undefined) {
    return accessError;
  }

  if (segments.length === 3) {
    return { body: renderRepository(baseUrl, seed, repository) };
  }
  if (segments.length === 4 && segments[3] === 'commits') {
    const commits = seed.commits.get(repository.slug) ?? [];
    const values = commits.map((commit) => renderCommit(baseUrl, seed, repository, commit));
    return { body: buildPage(values, pageRequest, requestUrl) };
  }
  if (segments[3] === 'pullrequests') {
    return routePullRequests(state, repository, segments.slice(4), requestUrl, pageRequest);
  }
  return undefined;
}

function routePullRequests(
  state: SimulatorState,
  repository: SeedRepository,
  rest: string[],
  requestUrl: URL,
  pageRequest: PageRequest,
): RouteResult {
  const { seed } = state;
  const pullRequests = seed.pullRequests.get(repository.slug) ?? [];

  if (rest.length === 0) {
    const states = requestUrl.searchParams.getAll('state').map((value) => value.toUpperCase());
    const unknown = states.filter((value) => !PULL_REQUEST_STATES.includes(value));
    if (unknown.length > 0) {
      return { status: 400, message: `Invalid state ${unknown.join(', ')}: use ${PULL_REQUEST_STATES.join(', ')}` };
    }
    const wanted = states.length === 0 ? ['OPEN'] : states;
    const matching = pullRequests.filter((pullRequest) => wanted.includes(pullRequest.state));
    const values = matching.map((pullRequest) => renderPullRequest(state.url, seed, repository, pullRequest));
    return { body: buildPage(values, pageRequest, requestUrl) };
  }

  if (rest.length === 1) {
    const pullRequest = pullRequests.find((candidate) => String(candidate.id) === rest[0]);
    if (pullRequest === undefined) {
      return { status: 404, message: `Pull request ${rest[0]} not found.` };
    }
    return { body: renderPullRequest(state.url, seed, repository, pullRequest) };
  }
  return undefined;
}

/** Handles a request under /2.0/ and returns the response status. */
export function handleApiRequest(state: SimulatorState, request: IncomingMessage, response: ServerResponse): number {
  const requestUrl = new URL(request.url ?? '/', state.url);
  const rawPath = (request.url ?? '/').split('?')[0] as string;
  const answer = (status: number, message: string, detail?: unknown): number => {
    sendApiError(response, status, message, detail);
    return status;
  };

  const caller = authenticate(state, request);
  if ('status' in caller) {
    return answer(caller.status, caller.message);
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return answer(405, `Method ${request.method} is not supported by the simulator for ${rawPath}.`);
  }

  const segments = rawPath.replace(/^\/2\.0\/?/, '').replace(/\/$/, '').split('/').filter((segment) => segment !== '');
  const result = route(state, caller, segments, requestUrl);
  if (result === undefined) {
    return answer(404, `Resource not found: ${rawPath}`);
  }
  if ('status' in result) {
    return answer(result.status, result.message, result.detail);
  }
  sendJson(response, 200, result.body);
  return 200;
}
