/**
 * The `installed` and `uninstalled` lifecycle routes.
 * https://developer.atlassian.com/cloud/bitbucket/app-descriptor/#lifecycle
 *
 * - First install of a clientKey: no JWT (trust on first use), so the payload
 *   is validated field by field and its base URLs must be on the allow-list.
 * - Re-install, and install after an uninstall: signed with the previously
 *   stored sharedSecret; only after that check is the new secret stored.
 * - Uninstall: signed with the current secret; the record is marked
 *   uninstalled and keeps its secret, and cached data is deleted.
 * Nothing is written unless every check passed.
 */
import type { Context, Hono } from 'hono';
import { forgetAccessTokens } from './access-tokens';
import { renderError } from './error-response';
import { receivedRequest } from './authenticate';
import { ConnectError } from './errors';
import { isRecord, validateInstalledPayload } from './installation-payload';
import { recordFromPayload, type InstallationRecord } from './installations';
import { logEvent } from './log';
import { readJsonBody } from './request-body';
import type { ConnectEnv } from './runtime';
import { decodeRequestToken, verifyTokenForRecord } from './verify-request';

export function registerLifecycleRoutes(app: Hono<ConnectEnv>, paths: { installed: string; uninstalled: string }): void {
  app.post(paths.installed, handleInstalled);
  app.post(paths.uninstalled, handleUninstalled);
  for (const path of [paths.installed, paths.uninstalled]) {
    app.all(path, (c) => {
      const rejection = new ConnectError(
        'method_not_allowed',
        `${path} accepts only POST, which Bitbucket sends; this was ${c.req.method}.`,
      );
      const response = renderError(rejection, c);
      response.headers.set('Allow', 'POST');
      return response;
    });
  }
}

async function handleInstalled(c: Context<ConnectEnv>): Promise<Response> {
  const runtime = c.get('connect');
  const request = receivedRequest(c);

  const body = await readJsonBody(c.req.raw);
  const payload = validateInstalledPayload(body, {
    appKey: runtime.descriptor.key,
    allowList: runtime.allowList,
  });
  const clientKey = payload.clientKey;

  const existing = await runtime.installations.get(clientKey);
  if (existing !== null) {
    if (request.authorization === undefined && !new URL(request.url).searchParams.has('jwt')) {
      throw new ConnectError(
        'missing_token',
        'This clientKey is already known: a re-install must carry a JWT signed with the stored shared secret.',
        { clientKey },
      );
    }
    const token = decodeRequestToken(request);
    if (token.claims.iss !== clientKey) {
      throw new ConnectError('issuer_mismatch', 'The JWT issuer (iss) differs from the payload clientKey.', {
        clientKey,
      });
    }
    await verifyTokenForRecord(token, existing, request, {
      appBaseUrl: runtime.appBaseUrl,
      sessionScope: undefined,
    });
  }

  const record = recordFromPayload(payload, existing, new Date());
  await runtime.installations.put(record);
  logEvent('info', 'installed', { clientKey, kind: installKind(existing) });
  return c.body(null, 204);
}

function installKind(existing: InstallationRecord | null): string {
  if (existing === null) {
    return 'first-install';
  }
  return existing.state === 'installed' ? 'reinstall' : 'install-after-uninstall';
}

async function handleUninstalled(c: Context<ConnectEnv>): Promise<Response> {
  const runtime = c.get('connect');
  const request = receivedRequest(c);

  const body = await readJsonBody(c.req.raw);
  if (!isRecord(body)) {
    throw new ConnectError('invalid_payload', 'The uninstalled payload must be a JSON object.');
  }

  if (body.clientKey !== undefined && typeof body.clientKey !== 'string') {
    throw new ConnectError('invalid_payload', 'clientKey must be a string when present.');
  }
  const token = decodeRequestToken(request);
  const clientKey = token.claims.iss as string;
  if (body.clientKey !== undefined && body.clientKey !== clientKey) {
    throw new ConnectError('issuer_mismatch', 'The JWT issuer (iss) differs from the payload clientKey.', {
      clientKey,
    });
  }

  const record = await runtime.installations.get(clientKey);
  if (record === null) {
    throw new ConnectError('unknown_installation', 'No installation exists for the JWT issuer (clientKey).', {
      clientKey,
    });
  }
  await verifyTokenForRecord(token, record, request, {
    appBaseUrl: runtime.appBaseUrl,
    sessionScope: undefined,
  });

  if (record.state === 'uninstalled') {
    logEvent('info', 'uninstalled', { clientKey, repeated: true });
    return c.body(null, 204);
  }

  await runtime.installations.markUninstalled(record, new Date());
  forgetAccessTokens(clientKey);
  logEvent('info', 'uninstalled', { clientKey });
  return c.body(null, 204);
}
