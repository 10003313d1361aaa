/**
 * Response headers for pages that Bitbucket shows in an iframe.
 *
 * A page must be frameable by the product host, so X-Frame-Options is
 * removed and `Content-Security-Policy: frame-ancestors` names the allowed
 * origins instead. Page URLs carry the Connect JWT in the query, so
 * `Referrer-Policy: no-referrer` keeps it from leaking to other sites the
 * page links to or loads from.
 */
import { createMiddleware } from 'hono/factory';
import type { ConnectEnv } from './runtime';

export function connectPageHeaders() {
  return createMiddleware<ConnectEnv>(async (c, next) => {
    await next();
    const ancestors = ["'self'", ...c.get('connect').allowList.origins].join(' ');
    c.res.headers.delete('X-Frame-Options');
    c.res.headers.set('Content-Security-Policy', `frame-ancestors ${ancestors}`);
    c.res.headers.set('Referrer-Policy', 'no-referrer');
  });
}
