// A local Bitbucket Cloud simulator: it plays Bitbucket toward a Connect app
// on loopback, so that install, page loads, webhooks, the token exchange and
// REST calls run offline. startSimulator is its programmatic entry point.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { ALL_JS } from './all-js';
import { handleApiRequest } from './api';
import { handleControlRequest } from './control';
import { fetchDescriptorReport } from './descriptor';
import { applyFailureRule, createFailureRule } from './failures';
import { renderIndexPage, renderRepositoryPage, buildIframeUrl } from './host-page';
import { BodyTooLargeError, redactUrl, sendApiError, sendJson, sendText } from './http';
import { install, uninstall } from './lifecycle';
import { matchesWorkspace } from './resources';
import { DEFAULT_TOKEN_LIFETIME_SECONDS, SimulatorState } from './state';
import { handleTokenRequest } from './token-endpoint';
import type { Simulator, SimulatorOptions } from './types';
import { sendWebhook } from './webhooks';

export const TOKEN_ENDPOINT_PATH = '/site/oauth2/access_token';
const ALL_JS_PATH = '/atlassian-connect/all.js';
const REPOSITORY_PAGE_PATTERN = /^\/([^/]+)\/([^/]+)\/?$/;

/** Validates the app's base URL and returns it without a trailing slash; throws on anything but an http(s) origin. */
function normalizeAppBaseUrl(appBaseUrl: string): string {
  let parsed: URL;
  try {
    parsed = new URL(appBaseUrl);
  } catch {
    throw new TypeError(`appBaseUrl ${JSON.stringify(appBaseUrl)} is not an absolute URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`appBaseUrl ${appBaseUrl} must use http or https`);
  }
  // atlassian-jwt strips a base path without a segment boundary, unlike Bitbucket, so only origins are signed.
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') {
    throw new TypeError(`appBaseUrl ${appBaseUrl} must be an origin such as http://127.0.0.1:8787, without path or query`);
  }
  return parsed.origin;
}

function validateTokenLifetime(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1) {
    throw new TypeError(`token lifetime must be a positive integer number of seconds, got ${seconds}`);
  }
  return seconds;
}

/** Returns the simulator's own origin; a wildcard host is reached through loopback. */
function originFor(host: string, port: number): string {
  let reachable = host;
  if (host === '0.0.0.0') {
    reachable = '127.0.0.1';
  } else if (host === '::') {
    reachable = '::1';
  }
  return reachable.includes(':') ? `http://[${reachable}]:${port}` : `http://${reachable}:${port}`;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

interface Context {
  simulator: Simulator;
  state: SimulatorState;
  closing: AbortSignal;
}

async function handleProtectedRequest(
  context: Context,
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
): Promise<void> {
  const { state } = context;
  const isTokenRequest = path === TOKEN_ENDPOINT_PATH;
  const outcome = await applyFailureRule(state, path, response, context.closing);
  if (outcome.kind === 'aborted') {
    return;
  }
  if (outcome.kind === 'answered') {
    if (isTokenRequest) {
      state.counts.tokenExchangeFailures += 1;
    } else {
      state.recordApiCall(outcome.status);
    }
    state.log(`${isTokenRequest ? 'token exchange' : `api ${request.method} ${redactUrl(request.url ?? path)}`} -> ${outcome.status} (injected failure)`);
    return;
  }
  if (isTokenRequest) {
    await handleTokenRequest(state, request, response);
    return;
  }
  const status = handleApiRequest(state, request, response);
  state.recordApiCall(status);
  state.log(`api ${request.method} ${redactUrl(request.url ?? path)} -> ${status}`);
}

async function handleRequest(context: Context, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0] as string;

  if (path.startsWith('/_sim/')) {
    await handleControlRequest(context.simulator, request, response);
    return;
  }
  if (path === TOKEN_ENDPOINT_PATH || path === '/2.0' || path.startsWith('/2.0/')) {
    await handleProtectedRequest(context, request, response, path);
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    sendText(response, 405, `Method ${request.method} is not allowed for ${path}\n`);
    return;
  }
  if (path === ALL_JS_PATH) {
    sendText(response, 200, ALL_JS, 'application/javascript; charset=utf-8', {
      'Access-Control-Allow-Origin': '*',
      'Cache-Control': 'no-cache',
    });
    return;
  }
  if (path === '/') {
    sendText(response, 200, renderIndexPage(context.state), 'text/html; charset=utf-8');
    return;
  }
  const match = REPOSITORY_PAGE_PATTERN.exec(path);
  if (match !== null && matchesWorkspace(context.state.seed, decodeURIComponent(match[1] as string))) {
    const page = renderRepositoryPage(context.state, decodeURIComponent(match[2] as string));
    if (page !== undefined) {
      sendText(response, 200, page, 'text/html; charset=utf-8', { 'Cache-Control': 'no-store' });
      return;
    }
  }
  sendText(response, 404, `Not found: ${path}\n`);
}

function answerUnexpectedError(state: SimulatorState, response: ServerResponse, error: unknown): void {
  if (error instanceof BodyTooLargeError) {
    sendJson(response, 413, { error: error.message });
    return;
  }
  if (error instanceof URIError) {
    sendApiError(response, 400, 'The request path contains an invalid percent-encoding.');
    return;
  }
  state.log(`request failed with an internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  if (!response.headersSent) {
    sendApiError(response, 500, 'Internal error in the simulator.');
  } else {
    response.destroy();
  }
}

/** Starts a simulator for the app at `options.appBaseUrl` and resolves once it listens. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const appBaseUrl = normalizeAppBaseUrl(options.appBaseUrl);
  const host = options.host ?? '127.0.0.1';
  const tokenLifetimeSeconds = validateTokenLifetime(options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS);
  const log = options.log ?? (() => {});

  const server = createServer();
  await listen(server, options.port ?? 0, host);
  const url = originFor(host, (server.address() as AddressInfo).port);
  const state = new SimulatorState(url, appBaseUrl, tokenLifetimeSeconds, options.legacyScopeField ?? false, log);
  const closing = new AbortController();

  // Lifecycle actions run one at a time, so that two installs cannot both sign with the same previous secret.
  let lifecycleQueue: Promise<unknown> = Promise.resolve();
  const runExclusive = <T>(action: () => Promise<T>): Promise<T> => {
    const run = lifecycleQueue.then(action, action);
    lifecycleQueue = run.catch(() => undefined);
    return run;
  };

  let closed: Promise<void> | undefined;
  const simulator: Simulator = {
    url,
    data: state.seed,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        server.closeAllConnections();
        log(`simulator on ${url} stopped`);
      });
      return closed;
    },
    checkDescriptor: () => fetchDescriptorReport(appBaseUrl),
    install: () => runExclusive(() => install(state)),
    uninstall: () => runExclusive(() => uninstall(state)),
    sendWebhook: (event, data) => sendWebhook(state, event, data),
    iframeUrl: (moduleKey, iframeOptions) => buildIframeUrl(state, moduleKey, iframeOptions?.repository),
    stats: () => state.stats(),
    resetStats: () => state.resetStats(),
    expireTokens: () => state.expireAccessTokens(),
    setTokenLifetime(seconds) {
      state.tokenLifetimeSeconds = validateTokenLifetime(seconds);
    },
    setLegacyScopeField(enabled) {
      state.legacyScopeField = enabled;
    },
    addFailure(input) {
      const rule = createFailureRule(input);
      state.failureRules.push(rule);
      const what = rule.status === null ? `delay ${rule.delayMs} ms` : `HTTP ${rule.status}`;
      log(`failure rule added: ${what} for the next ${rule.count} request(s) matching ${rule.path}`);
      return { ...rule };
    },
    clearFailures() {
      state.failureRules.splice(0);
    },
  };

  const context: Context = { simulator, state, closing: closing.signal };
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    handleRequest(context, request, response).catch((error: unknown) => answerUnexpectedError(state, response, error));
  });
  log(`simulator listening on ${url} for the app at ${appBaseUrl}`);
  return simulator;
}
