/**
 * Builds the Hono app of a Connect add-on: descriptor route, lifecycle routes,
 * per-request framework state, and error handling that turns every failure
 * into a clear 4xx/5xx response and one structured log line.
 */
import { Hono } from 'hono';
import { defineDescriptor, renderDescriptor, type AppDescriptor } from './descriptor';
import { ConnectError, quoteInput } from './errors';
import { registerLifecycleRoutes } from './lifecycle';
import { renderError } from './error-response';
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
  // Browsers request it when a page is opened directly, and a 204 keeps it out of the rejection log.
  app.get('/favicon.ico', (c) => c.body(null, 204));
  registerLifecycleRoutes(app as unknown as Hono<ConnectEnv>, descriptor.lifecycle);

  app.onError(renderError);
  app.notFound((c) =>
    renderError(
      new ConnectError('route_not_found', `No route for ${c.req.method} ${quoteInput(new URL(c.req.url).pathname)}.`),
      c,
    ),
  );
  return app;
}
