/**
 * Hono middleware that verifies the Connect JWT of an incoming request (page
 * load, webhook, XHR with a session token) and hands the handler only
 * verified values through typed variables.
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { ConnectError } from './errors';
import { isInstalled, type Installation } from './installations';
import type { VerifiedClaims } from './jwt';
import type { ConnectBindings, ConnectRuntime } from './runtime';
import { createSessionToken, DEFAULT_SESSION_SCOPE, validateSessionScope } from './session';
import { decodeRequestToken, verifyTokenForRecord, type ReceivedRequest, type TokenKind } from './verify-request';

export interface AuthenticateOptions {
  /** Accept session tokens (issued after a page load) on this route. Default false. */
  readonly allowSessionToken?: boolean;
  /**
   * Scope the accepted session tokens must carry, as given to
   * `issueSessionToken(c, { scope })`. Default DEFAULT_SESSION_SCOPE.
   */
  readonly sessionScope?: string;
}

export interface SessionTokenOptions {
  /** The routes the token is for; they name it in `authenticate({ sessionScope })`. */
  readonly scope?: string;
}

/** Variables set for a handler behind `authenticate()`. */
export interface AuthenticatedVariables {
  connect: ConnectRuntime;
  clientKey: string;
  installation: Installation;
  claims: VerifiedClaims;
  /** The acting account from the verified `sub` claim; Bitbucket's format is undocumented. */
  accountId: string | undefined;
  tokenKind: TokenKind;
}

export interface AuthenticatedEnv<Bindings extends ConnectBindings = ConnectBindings> {
  Bindings: Bindings;
  Variables: AuthenticatedVariables;
}

/** Creates the middleware; options are checked and copied once, here. */
export function authenticate<Bindings extends ConnectBindings = ConnectBindings>(options: AuthenticateOptions = {}) {
  const sessionScope =
    options.allowSessionToken === true ? validateSessionScope(options.sessionScope ?? DEFAULT_SESSION_SCOPE) : undefined;
  if (options.sessionScope !== undefined && options.allowSessionToken !== true) {
    throw new ConnectError('configuration_error', 'authenticate({ sessionScope }) needs allowSessionToken: true as well.');
  }

  return createMiddleware<AuthenticatedEnv<Bindings>>(async (c, next) => {
    const runtime = c.get('connect');
    if (runtime === undefined) {
      throw new ConnectError(
        'configuration_error',
        'authenticate() must run on routes of the app returned by createConnectApp().',
      );
    }

    const request = receivedRequest(c);
    const token = decodeRequestToken(request);
    const clientKey = token.claims.iss as string;

    const record = await runtime.installations.getCached(clientKey);
    if (record === null) {
      throw new ConnectError('unknown_installation', 'No installation exists for the JWT issuer (clientKey).', {
        clientKey,
      });
    }
    if (!isInstalled(record)) {
      throw new ConnectError('installation_uninstalled', 'The app is uninstalled from this workspace.', {
        clientKey,
      });
    }

    const verified = await verifyTokenForRecord(token, record, request, {
      appBaseUrl: runtime.appBaseUrl,
      sessionScope,
    });

    c.set('clientKey', record.clientKey);
    c.set('installation', record);
    c.set('claims', verified.claims);
    c.set('accountId', verified.claims.sub);
    c.set('tokenKind', verified.kind);
    await next();

    // Responses of authenticated routes are per user and may carry a session token.
    if (!c.res.headers.has('Cache-Control')) {
      c.res.headers.set('Cache-Control', 'private, no-store');
    }
  });
}

/** Issues a session token for the authenticated installation and account of this request. */
export function issueSessionToken(c: Context<AuthenticatedEnv>, options: SessionTokenOptions = {}): Promise<string> {
  const installation = c.get('installation');
  return createSessionToken({
    clientKey: installation.clientKey,
    sharedSecret: installation.sharedSecret,
    appKey: c.get('connect').descriptor.key,
    accountId: c.get('accountId'),
    ...(options.scope === undefined ? {} : { scope: options.scope }),
  });
}

export function receivedRequest(c: Context): ReceivedRequest {
  return { method: c.req.method, url: c.req.url, authorization: c.req.header('Authorization') };
}
