/**
 * The response to a failed request, and its one structured log line.
 * ConnectError messages are written for callers; any other error gets a
 * generic 500 because its message may contain input or a token.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ConnectError, quoteInput } from './errors';
import { logEvent } from './log';

/** Maximum lengths of the message and the path written into a log line, in characters. */
const MAX_LOGGED_MESSAGE_LENGTH = 300;
const MAX_LOGGED_PATH_LENGTH = 200;

/**
 * Renders the response to a failed request. ConnectError messages are safe to
 * show. Any other error gets a generic 500, because its message may contain
 * input or a token.
 */
export function renderError(error: Error, c: Context): Response {
  const path = new URL(c.req.url).pathname;

  if (error instanceof ConnectError) {
    const status = error.status;
    // ConnectError messages never hold a token or secret, and quote input only in cut form.
    logEvent(status >= 500 ? 'error' : 'warn', 'request_rejected', {
      code: error.code,
      status,
      clientKey: error.clientKey,
      upstreamStatus: error.upstreamStatus,
      reason: error.reason,
      message: quoteInput(error.message, MAX_LOGGED_MESSAGE_LENGTH),
      method: c.req.method,
      path: quoteInput(path, MAX_LOGGED_PATH_LENGTH),
    });
    return respond(c, status, error.code, error.message);
  }

  if (error instanceof HTTPException) {
    const status = error.status;
    logEvent('warn', 'request_rejected', {
      code: 'http_exception',
      status,
      method: c.req.method,
      path: quoteInput(path, MAX_LOGGED_PATH_LENGTH),
    });
    return respond(c, status, 'invalid_request', 'The request was rejected.');
  }

  logEvent('error', 'unhandled_error', { name: error.name, method: c.req.method, path: quoteInput(path, MAX_LOGGED_PATH_LENGTH) });
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
