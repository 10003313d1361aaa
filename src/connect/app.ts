/**
 * Builds the Hono app of a Connect add-on: descriptor route, lifecycle routes,
 * per-request framework state, and error handling that turns every failure
 * into a clear 4xx/5xx response and one structured log line.
 */
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { defineDescriptor, renderDescriptor, type AppDescriptor } from './descriptor';
import { ConnectError } from './errors';
import { registerLifecycleRoutes } from './lifecycle';
import { logEvent } from './log';
import { createRuntime, type ConnectBindings, type ConnectEnv } from './runtime';

export const DESCRIPTOR_PATH = '/atlassian-connect.json';

export interface ConnectAppOptions {
  readonly descriptor: AppDescriptor;
}

/**
 * Creates the app. The descriptor is validated here, so a mistake in it
 * fails at start-up with a list of problems.
 */
export function createConnectApp<Bindings extends ConnectBindings = ConnectBindings>(
  options: ConnectAppOptions,
): Hono<ConnectEnv<Bindings>> {
  const descriptor = defineDescriptor(options.descriptor);
  const app = new Hono<ConnectEnv<Bindings>>();

  app.use('*', async (c, next) => {
    c.set('connect', createRuntime(descriptor, c.env, c.req.url));
    await next();
  });

  app.get(DESCRIPTOR_PATH, (c) => c.json(renderDescriptor(descriptor, c.get('connect').appBaseUrl)));
  registerLifecycleRoutes(app as unknown as Hono<ConnectEnv>, descriptor.lifecycle);

  app.onError(renderError);
  app.notFound((c) =>
    renderError(new ConnectError('route_not_found', `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`), c),
  );
  return app;
}

/**
 * Renders the response to a failed request. ConnectError messages are safe to
 * show. Any other error gets a generic 500, because its message may contain
 * input or a token.
 */
export function renderError(error: Error, c: Context): Response {
  const path = new URL(c.req.url).pathname;

  if (error instanceof ConnectError) {
    const status = error.status;
    logEvent(status >= 500 ? 'error' : 'warn', 'request_rejected', {
      code: error.code,
      status,
      clientKey: error.clientKey,
      upstreamStatus: error.upstreamStatus,
      reason: error.reason,
      method: c.req.method,
      path,
    });
    return respond(c, status, error.code, error.message);
  }

  if (error instanceof HTTPException) {
    const status = error.status;
    logEvent('warn', 'request_rejected', { code: 'http_exception', status, method: c.req.method, path });
    return respond(c, status, 'invalid_request', 'The request was rejected.');
  }

  logEvent('error', 'unhandled_error', { name: error.name, method: c.req.method, path });
  return respond(c, 500, 'internal_error', 'Internal error; see the worker logs.');
}

function respond(c: Context, status: number, code: string, message: string): Response {
  const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
  if (status === 401) {
    headers['WWW-Authenticate'] = 'JWT';
  }

  const accept = c.req.header('Accept') ?? '';
  if (accept.includes('text/html')) {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    return new Response(`${status}: ${message}\n`, { status, headers });
  }

  headers['Content-Type'] = 'application/json';
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers });
}
