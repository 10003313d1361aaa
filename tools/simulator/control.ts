// Control endpoints under /_sim/: they run the simulator's actions over HTTP
// for scripts and tests in other processes. They accept only requests from
// loopback addresses.

import type { IncomingMessage, ServerResponse } from 'node:http';

import { readBody, sendJson } from './http';
import type { FailureRuleInput, Simulator } from './types';
import { SimulatorError } from './types';

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

type Handler = (simulator: Simulator, body: Record<string, unknown>, query: URLSearchParams) => Promise<unknown> | unknown;

function requireNumber(body: Record<string, unknown>, field: string): number {
  const value = body[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new SimulatorError(400, `${field} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

const ROUTES: Record<string, Handler> = {
  'GET /_sim/stats': (simulator) => simulator.stats(),
  'POST /_sim/reset-stats': (simulator) => {
    simulator.resetStats();
    return simulator.stats();
  },
  'GET /_sim/descriptor-report': (simulator) => simulator.checkDescriptor(),
  'POST /_sim/install': (simulator) => simulator.install(),
  'POST /_sim/uninstall': (simulator) => simulator.uninstall(),
  'POST /_sim/webhook': (simulator, body) => {
    const data = body.data;
    if (data !== undefined && (typeof data !== 'object' || data === null)) {
      throw new SimulatorError(400, 'data must be a JSON object when given');
    }
    return simulator.sendWebhook(body.event as string, data as object | undefined);
  },
  'POST /_sim/failures': (simulator, body) => simulator.addFailure(body as FailureRuleInput),
  'DELETE /_sim/failures': (simulator) => {
    simulator.clearFailures();
    return { cleared: true };
  },
  'POST /_sim/expire-tokens': (simulator) => ({ expired: simulator.expireTokens() }),
  'POST /_sim/token-lifetime': (simulator, body) => {
    const seconds = requireNumber(body, 'seconds');
    simulator.setTokenLifetime(seconds);
    return { tokenLifetimeSeconds: seconds };
  },
  'POST /_sim/settings': (simulator, body) => {
    if (typeof body.legacyScopeField !== 'boolean') {
      throw new SimulatorError(400, 'legacyScopeField must be true or false');
    }
    simulator.setLegacyScopeField(body.legacyScopeField);
    return { legacyScopeField: body.legacyScopeField };
  },
  'GET /_sim/iframe-url': (simulator, _body, query) => {
    const moduleKey = query.get('module');
    if (moduleKey === null || moduleKey === '') {
      throw new SimulatorError(400, 'the module query parameter is missing; pass a page module key');
    }
    const repository = query.get('repo') ?? undefined;
    return { url: simulator.iframeUrl(moduleKey, repository === undefined ? {} : { repository }) };
  },
};

async function readJsonObject(request: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(request);
  if (text.trim() === '') {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SimulatorError(400, 'the request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SimulatorError(400, 'the request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export async function handleControlRequest(
  simulator: Simulator,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (!LOOPBACK_ADDRESSES.has(request.socket.remoteAddress ?? '')) {
    sendJson(response, 403, { error: 'control endpoints answer only loopback clients' });
    return;
  }
  const url = new URL(request.url ?? '/', 'http://simulator.invalid');
  const handler = ROUTES[`${request.method} ${url.pathname}`];
  if (handler === undefined) {
    sendJson(response, 404, { error: `no control endpoint ${request.method} ${url.pathname}` });
    return;
  }
  try {
    const body = request.method === 'POST' ? await readJsonObject(request) : {};
    sendJson(response, 200, await handler(simulator, body, url.searchParams));
  } catch (error) {
    if (error instanceof SimulatorError) {
      sendJson(response, error.status, { error: error.message });
      return;
    }
    throw error;
  }
}
