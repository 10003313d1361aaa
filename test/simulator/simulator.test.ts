import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createQueryStringHash, encodeSymmetric, fromMethodAndUrl, SymmetricAlgorithm } from 'atlassian-jwt';

import { startSimulator, type Simulator } from '../../tools/simulator/index';
import { APP_KEY, startStandInApp, verifyConnectJwt, type StandInApp } from './stand-in-app';

const TOKEN_PATH = '/site/oauth2/access_token';
const DEMO_REPO_PATH = '/2.0/repositories/test-workspace/demo-repo';

let app: StandInApp;
let simulator: Simulator;

beforeEach(async () => {
  app = await startStandInApp();
  simulator = await startSimulator({ appBaseUrl: app.url });
});

afterEach(async () => {
  await simulator.close();
  await app.close();
});

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Installs the stand-in app and returns its clientKey and the secret it stored. */
async function installApp(): Promise<{ clientKey: string; sharedSecret: string }> {
  const result = await simulator.install();
  expect(result.ok).toBe(true);
  const clientKey = result.clientKey as string;
  return { clientKey, sharedSecret: app.secrets.get(clientKey) as string };
}

function signGrant(clientKey: string, sharedSecret: string, claims: Record<string, unknown> = {}): string {
  const issuedAt = nowSeconds();
  return encodeSymmetric(
    {
      iss: APP_KEY,
      sub: clientKey,
      iat: issuedAt,
      exp: issuedAt + 180,
      qsh: createQueryStringHash(fromMethodAndUrl('POST', TOKEN_PATH)),
      ...claims,
    },
    sharedSecret,
    SymmetricAlgorithm.HS256,
  );
}

function requestToken(
  token: string,
  form: Record<string, string> = { grant_type: 'urn:bitbucket:oauth2:jwt' },
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${simulator.url}${TOKEN_PATH}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `JWT ${token}`, ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

async function obtainAccessToken(form: Record<string, string> = {}): Promise<string> {
  const { clientKey, sharedSecret } = await installApp();
  const response = await requestToken(signGrant(clientKey, sharedSecret), { grant_type: 'urn:bitbucket:oauth2:jwt', ...form });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

function getApi(pathAndQuery: string, accessToken: string): Promise<Response> {
  const url = pathAndQuery.startsWith('http') ? pathAndQuery : `${simulator.url}${pathAndQuery}`;
  return fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } });
}

function control(method: string, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  return fetch(`${simulator.url}${path}`, init);
}

describe('descriptor check', () => {
  it('accepts the stand-in descriptor', async () => {
    const report = await simulator.checkDescriptor();

    expect(report.ok).toBe(true);
    expect(report.problems.filter((problem) => problem.severity === 'error')).toEqual([]);
  });

  it('lists what Bitbucket would reject', async () => {
    app.descriptor = {
      ...app.descriptor,
      baseUrl: 'http://app.example.com',
      scopes: ['repository', 'repo:read'],
      contexts: ['personal'],
      apiMigrations: { 'signed-install': true },
      modules: {
        repoPages: [{ key: 'bad key', url: '/page?user={user.uuid}' }],
      },
    };
    delete app.descriptor.authentication;

    const report = await simulator.checkDescriptor();
    const paths = report.problems.map((problem) => `${problem.severity} ${problem.path}`);

    expect(report.ok).toBe(false);
    expect(paths).toContain('error baseUrl');
    expect(paths).toContain('error authentication.type');
    expect(paths).toContain('error scopes[1]');
    expect(paths).toContain('error contexts');
    expect(paths).toContain('error apiMigrations');
    expect(paths).toContain('error modules.repoPages[0].key');
    expect(paths).toContain('warning modules.repoPages[0].url');
  });

  it('warns about missing scopes', async () => {
    delete app.descriptor.scopes;

    const report = await simulator.checkDescriptor();

    expect(report.ok).toBe(true);
    expect(report.problems).toContainEqual(expect.objectContaining({ severity: 'warning', path: 'scopes' }));
  });

  it('reports an unreachable descriptor', async () => {
    await app.close();

    const report = await simulator.checkDescriptor();

    expect(report.ok).toBe(false);
    expect(report.problems[0]?.message).toMatch(/fetching the descriptor failed/);
  });
});

describe('lifecycle', () => {
  it('sends the first install unsigned', async () => {
    const result = await simulator.install();
    const [installed] = app.requestsTo('/installed');
    const payload = installed?.body as Record<string, unknown>;

    expect(result).toMatchObject({ ok: true, status: 204, kind: 'first-install', signed: false });
    expect(installed?.headers.authorization).toBeUndefined();
    expect(payload.clientKey).toMatch(/^connection:\d+$/);
    expect(payload.sharedSecret).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(payload).toMatchObject({
      key: APP_KEY,
      baseUrl: simulator.url,
      baseApiUrl: simulator.url,
      productType: 'bitbucket',
      eventType: 'installed',
      principal: { type: 'team', username: 'test-workspace' },
      user: { type: 'user' },
    });
    expect((payload.principal as { uuid: string }).uuid).toMatch(/^\{[0-9a-f-]{36}\}$/);
  });

  it('signs a re-install with the previous secret', async () => {
    const first = await installApp();

    const result = await simulator.install();
    const reinstall = app.requestsTo('/installed')[1];
    const payload = reinstall?.body as { clientKey: string; sharedSecret: string };
    const token = (reinstall?.headers.authorization ?? '').replace(/^JWT /, '');

    expect(result).toMatchObject({ ok: true, kind: 'reinstall', signed: true, clientKey: first.clientKey });
    expect(payload.clientKey).toBe(first.clientKey);
    expect(payload.sharedSecret).not.toBe(first.sharedSecret);
    expect(verifyConnectJwt(token, first.sharedSecret, 'POST', '/installed')).toMatchObject({
      claims: { iss: first.clientKey, qsh: createQueryStringHash(fromMethodAndUrl('POST', '/installed')) },
    });
    expect(app.secrets.get(first.clientKey)).toBe(payload.sharedSecret);
  });

  it('keeps the old secret after a failed re-install', async () => {
    const first = await installApp();
    app.installedStatus = 500;

    const failed = await simulator.install();
    app.installedStatus = 204;
    const retried = await simulator.install();
    const retry = app.requestsTo('/installed')[2];

    expect(failed).toMatchObject({ ok: false, status: 500 });
    expect(retried.ok).toBe(true);
    expect(retry?.verifiedClaims?.iss).toBe(first.clientKey);
    expect(simulator.stats()).toMatchObject({ installs: 2, reinstalls: 1, installFailures: 1, lastInstallStatus: 204 });
  });

  it('signs the uninstall and the next install', async () => {
    const { clientKey } = await installApp();

    const uninstalled = await simulator.uninstall();
    const reinstalled = await simulator.install();
    const [uninstallRequest] = app.requestsTo('/uninstalled');

    expect(uninstalled).toMatchObject({ ok: true, status: 204, clientKey });
    expect(uninstallRequest?.verifiedClaims?.iss).toBe(clientKey);
    expect((uninstallRequest?.body as { eventType: string }).eventType).toBe('uninstalled');
    expect(reinstalled).toMatchObject({ ok: true, kind: 'install-after-uninstall', signed: true, clientKey });
    expect(app.requestsTo('/installed')[1]?.verifiedClaims?.iss).toBe(clientKey);
  });

  it('does not install a rejected descriptor', async () => {
    app.descriptor = { ...app.descriptor, contexts: ['personal'] };

    const result = await simulator.install();

    expect(result).toMatchObject({ ok: false, status: null, error: 'descriptor rejected' });
    expect(app.requestsTo('/installed')).toEqual([]);
  });
});

describe('token endpoint', () => {
  it('issues a bearer token without refresh token', async () => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await requestToken(signGrant(clientKey, sharedSecret));
    const body = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 7200, scopes: 'account repository pullrequest' });
    expect(typeof body.access_token).toBe('string');
    expect(body).not.toHaveProperty('refresh_token');
    expect(body).not.toHaveProperty('scope');
  });

  it('sends the legacy scope field when enabled', async () => {
    const { clientKey, sharedSecret } = await installApp();
    simulator.setLegacyScopeField(true);

    const body = (await (await requestToken(signGrant(clientKey, sharedSecret))).json()) as Record<string, unknown>;

    expect(body.scope).toBe('account repository pullrequest');
    expect(body.scopes).toBe('account repository pullrequest');
  });

  it('rejects a JSON body', async () => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await fetch(`${simulator.url}${TOKEN_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `JWT ${signGrant(clientKey, sharedSecret)}` },
      body: JSON.stringify({ grant_type: 'urn:bitbucket:oauth2:jwt' }),
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringMatching(/Content-Type/),
    });
  });

  it('rejects another grant type', async () => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await requestToken(signGrant(clientKey, sharedSecret), { grant_type: 'client_credentials' });

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it.each([
    ['a wrong secret', (clientKey: string) => signGrant(clientKey, 'not-the-shared-secret')],
    ['a wrong issuer', (clientKey: string, secret: string) => signGrant(clientKey, secret, { iss: 'other-app' })],
    ['an expired JWT', (clientKey: string, secret: string) => signGrant(clientKey, secret, { exp: nowSeconds() - 1 })],
    ['a missing iat', (clientKey: string, secret: string) => signGrant(clientKey, secret, { iat: undefined })],
    ['an unknown clientKey', (_clientKey: string, secret: string) => signGrant('connection:1', secret)],
  ])('rejects %s with invalid_grant', async (_case, sign) => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await requestToken(sign(clientKey, sharedSecret));

    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('rejects the Bearer scheme', async () => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await requestToken('', undefined, { Authorization: `Bearer ${signGrant(clientKey, sharedSecret)}` });

    expect(response.status).toBe(401);
  });

  it('rejects an uninstalled installation', async () => {
    const { clientKey, sharedSecret } = await installApp();
    await simulator.uninstall();

    const response = await requestToken(signGrant(clientKey, sharedSecret));

    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('rejects a scope the app was not granted', async () => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await requestToken(signGrant(clientKey, sharedSecret), {
      grant_type: 'urn:bitbucket:oauth2:jwt',
      scope: 'repository repository:admin',
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_scope' });
  });

  it('counts exchanges and failures', async () => {
    const { clientKey, sharedSecret } = await installApp();

    await requestToken(signGrant(clientKey, sharedSecret));
    await requestToken(signGrant(clientKey, 'wrong'));

    expect(simulator.stats()).toMatchObject({ tokenExchanges: 1, tokenExchangeFailures: 1 });
  });
});

describe('REST API', () => {
  it('serves the repository to a token', async () => {
    const accessToken = await obtainAccessToken();

    const response = await getApi(DEMO_REPO_PATH, accessToken);
    const repository = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(repository).toMatchObject({ type: 'repository', full_name: 'test-workspace/demo-repo', name: 'demo-repo' });
  });

  it('accepts braced UUIDs in the path', async () => {
    const accessToken = await obtainAccessToken();
    const workspaceUuid = encodeURIComponent(simulator.data.workspace.uuid);
    const repositoryUuid = encodeURIComponent(simulator.data.repositories[0]?.uuid ?? '');

    const response = await getApi(`/2.0/repositories/${workspaceUuid}/${repositoryUuid}`, accessToken);

    expect(response.status).toBe(200);
    expect(((await response.json()) as { slug: string }).slug).toBe('demo-repo');
  });

  it('rejects an unknown token', async () => {
    const response = await getApi(DEMO_REPO_PATH, 'no-such-token');

    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ type: 'error', error: { message: expect.any(String) } });
  });

  it('rejects expired tokens', async () => {
    const accessToken = await obtainAccessToken();

    expect(simulator.expireTokens()).toBe(1);
    const response = await getApi(DEMO_REPO_PATH, accessToken);

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ type: 'error', error: { message: 'Access token expired.' } });
  });

  it('expires tokens through the control endpoint', async () => {
    const accessToken = await obtainAccessToken();

    const expired = await control('POST', '/_sim/expire-tokens');
    const response = await getApi(DEMO_REPO_PATH, accessToken);

    expect(await expired.json()).toEqual({ expired: 1 });
    expect(response.status).toBe(401);
  });

  it('limits a token to its repository', async () => {
    const repositoryUuid = simulator.data.repositories[0]?.uuid.slice(1, -1) ?? '';
    const accessToken = await obtainAccessToken({ bitbucket_repository: repositoryUuid });

    const allowed = await getApi(DEMO_REPO_PATH, accessToken);
    const denied = await getApi('/2.0/repositories/test-workspace/api-service', accessToken);

    expect(allowed.status).toBe(200);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ type: 'error' });
  });

  it('rejects a token without the needed scope', async () => {
    const accessToken = await obtainAccessToken({ scope: 'account' });

    const response = await getApi(`${DEMO_REPO_PATH}/commits`, accessToken);

    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: { detail: { required: ['repository'] } } });
  });

  it('returns the error shape for unknown repositories', async () => {
    const accessToken = await obtainAccessToken();

    const response = await getApi('/2.0/repositories/test-workspace/missing', accessToken);

    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ type: 'error', error: { message: expect.stringMatching(/not found/) } });
  });

  it('accepts a JWT with the request qsh', async () => {
    const { clientKey, sharedSecret } = await installApp();
    const path = `${DEMO_REPO_PATH}/commits?pagelen=5`;
    const sign = (signedPath: string): string =>
      encodeSymmetric(
        {
          iss: APP_KEY,
          sub: clientKey,
          iat: nowSeconds(),
          exp: nowSeconds() + 180,
          qsh: createQueryStringHash(fromMethodAndUrl('GET', signedPath)),
        },
        sharedSecret,
        SymmetricAlgorithm.HS256,
      );

    const accepted = await fetch(`${simulator.url}${path}`, { headers: { Authorization: `JWT ${sign(path)}` } });
    const mismatched = await fetch(`${simulator.url}${path}`, { headers: { Authorization: `JWT ${sign(DEMO_REPO_PATH)}` } });

    expect(accepted.status).toBe(200);
    expect(mismatched.status).toBe(401);
  });

  it('follows next links to the last commit', async () => {
    const accessToken = await obtainAccessToken();
    const hashes: string[] = [];
    let next: string | undefined = `${DEMO_REPO_PATH}/commits?pagelen=10`;
    let pages = 0;

    while (next !== undefined) {
      const page = (await (await getApi(next, accessToken)).json()) as { values: { hash: string }[]; next?: string };
      hashes.push(...page.values.map((commit) => commit.hash));
      if (page.next !== undefined) {
        expect(page.next.startsWith(`${simulator.url}${DEMO_REPO_PATH}/commits?`)).toBe(true);
      }
      next = page.next;
      pages += 1;
    }

    expect(pages).toBe(3);
    expect(hashes).toHaveLength(25);
    expect(new Set(hashes).size).toBe(25);
  });

  it('filters pull requests by state', async () => {
    const accessToken = await obtainAccessToken();

    const open = (await (await getApi(`${DEMO_REPO_PATH}/pullrequests?pagelen=50`, accessToken)).json()) as { size: number };
    const merged = (await (await getApi(`${DEMO_REPO_PATH}/pullrequests?state=MERGED`, accessToken)).json()) as {
      size: number;
      values: { state: string }[];
    };

    expect(open.size).toBe(7);
    expect(merged.size).toBe(3);
    expect(merged.values.every((pullRequest) => pullRequest.state === 'MERGED')).toBe(true);
  });

  it('counts API calls by status', async () => {
    const accessToken = await obtainAccessToken();

    await getApi(DEMO_REPO_PATH, accessToken);
    await getApi('/2.0/repositories/test-workspace/missing', accessToken);

    expect(simulator.stats().apiCalls).toEqual({ total: 2, byStatus: { '200': 1, '404': 1 } });
  });
});

describe('failure injection', () => {
  it('responds 429 with a text body', async () => {
    const accessToken = await obtainAccessToken();
    simulator.addFailure({ path: '/2.0/repositories/*/*/commits', status: 429, count: 1, retryAfterSeconds: 3 });

    const limited = await getApi(`${DEMO_REPO_PATH}/commits`, accessToken);
    const text = await limited.text();
    const after = await getApi(`${DEMO_REPO_PATH}/commits`, accessToken);

    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    expect(limited.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text).toBe('Rate limit for this resource has been exceeded');
    expect(after.status).toBe(200);
  });

  it('responds 500 with the error shape', async () => {
    const accessToken = await obtainAccessToken();
    const added = await control('POST', '/_sim/failures', { status: 500, count: 2 });

    const first = await getApi(DEMO_REPO_PATH, accessToken);
    const second = await getApi(DEMO_REPO_PATH, accessToken);
    const third = await getApi(DEMO_REPO_PATH, accessToken);

    expect(added.status).toBe(200);
    expect(first.status).toBe(500);
    expect(await first.json()).toMatchObject({ type: 'error', error: { message: expect.any(String) } });
    expect(second.status).toBe(500);
    expect(third.status).toBe(200);
  });

  it('fails the token endpoint', async () => {
    const { clientKey, sharedSecret } = await installApp();
    simulator.addFailure({ path: TOKEN_PATH, status: 503 });

    const response = await requestToken(signGrant(clientKey, sharedSecret));

    expect(response.status).toBe(503);
    expect(simulator.stats().tokenExchangeFailures).toBe(1);
  });

  it('delays a response', async () => {
    const accessToken = await obtainAccessToken();
    simulator.addFailure({ path: DEMO_REPO_PATH, delayMs: 150 });

    const started = Date.now();
    const response = await getApi(DEMO_REPO_PATH, accessToken);

    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('clears rules on DELETE', async () => {
    const accessToken = await obtainAccessToken();
    simulator.addFailure({ status: 500 });

    const cleared = await control('DELETE', '/_sim/failures');
    const response = await getApi(DEMO_REPO_PATH, accessToken);

    expect(cleared.status).toBe(200);
    expect(response.status).toBe(200);
  });

  it('rejects an invalid rule', async () => {
    const response = await control('POST', '/_sim/failures', { status: 200 });

    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/status must be an integer from 400 to 599/);
  });
});

describe('webhooks', () => {
  it('delivers a signed repo:push', async () => {
    const { clientKey } = await installApp();

    const result = await simulator.sendWebhook('repo:push');
    const [request] = app.requestsTo('/webhook');
    const body = request?.body as { event: string; data: { push: { changes: unknown[] }; repository: object } };

    expect(result.deliveries.map((delivery) => delivery.status)).toEqual([204, 204]);
    expect(request?.jwtProblem).toBeUndefined();
    expect(request?.verifiedClaims?.iss).toBe(clientKey);
    expect(request?.headers['x-event-key']).toBe('repo:push');
    expect(request?.headers['x-attempt-number']).toBe('1');
    expect(request?.headers['x-request-uuid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.event).toBe('repo:push');
    expect(body.data.push.changes).toHaveLength(1);
    expect(body.data.repository).toMatchObject({ full_name: 'test-workspace/demo-repo' });
  });

  it('delivers other events to the wildcard module', async () => {
    await installApp();

    const result = await simulator.sendWebhook('pullrequest:created');
    const [request] = app.requestsTo('/webhook-all');

    expect(result.deliveries).toHaveLength(1);
    expect(result.deliveries[0]).toMatchObject({ moduleKey: 'all-events', subscribedEvent: '*', status: 204 });
    expect(request?.verifiedClaims).toBeDefined();
    expect((request?.body as { data: { pullrequest: { state: string } } }).data.pullrequest.state).toBe('OPEN');
    expect(simulator.stats()).toMatchObject({ webhooksSent: 1, webhookResponses: { '204': 1 } });
  });

  it('sends custom data through the control endpoint', async () => {
    await installApp();

    const response = await control('POST', '/_sim/webhook', { event: 'repo:push', data: { custom: true } });
    const [request] = app.requestsTo('/webhook');

    expect(response.status).toBe(200);
    expect(request?.body).toEqual({ event: 'repo:push', data: { custom: true } });
  });

  it('rejects webhooks before install', async () => {
    await expect(simulator.sendWebhook('repo:push')).rejects.toThrow(/no app is installed/);
  });
});

describe('repository page', () => {
  it('signs iframe URLs with the context filled in', async () => {
    const { clientKey, sharedSecret } = await installApp();

    const response = await control('GET', '/_sim/iframe-url?module=repo-overview');
    const { url } = (await response.json()) as { url: string };
    const iframeUrl = new URL(url);
    const pathAndQuery = `${iframeUrl.pathname}${iframeUrl.search}`;
    const verified = verifyConnectJwt(iframeUrl.searchParams.get('jwt') ?? '', sharedSecret, 'GET', pathAndQuery);

    expect(iframeUrl.origin).toBe(app.url);
    expect(iframeUrl.searchParams.get('repoUuid')).toBe(simulator.data.repositories[0]?.uuid);
    expect(iframeUrl.searchParams.get('repoPath')).toBe('test-workspace/demo-repo');
    expect(iframeUrl.searchParams.get('unknown')).toBe('');
    expect(iframeUrl.searchParams.get('xdm_e')).toBe(simulator.url);
    expect(verified).toMatchObject({ claims: { iss: clientKey, sub: simulator.data.installer.uuid } });
  });

  it('embeds every page module', async () => {
    await installApp();

    const response = await fetch(`${simulator.url}/test-workspace/demo-repo`);
    const html = await response.text();

    expect(response.status).toBe(200);
    expect(html).toContain('data-module-key="repo-overview"');
    expect(html).toContain('data-module-key="summary-panel"');
    expect(html).toContain(`src="${app.url}/panel?xdm_e=`);
  });

  it('serves all.js', async () => {
    const response = await fetch(`${simulator.url}/atlassian-connect/all.js`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    expect(await response.text()).toContain('sizeToParent');
  });
});

describe('control endpoints', () => {
  it('installs and hides the secret', async () => {
    const installed = await control('POST', '/_sim/install');
    const stats = (await (await control('GET', '/_sim/stats')).json()) as Record<string, unknown>;
    const clientKey = ((await installed.json()) as { clientKey: string }).clientKey;

    expect(installed.status).toBe(200);
    expect(stats).toMatchObject({ installs: 1, installation: { clientKey, installed: true } });
    expect(JSON.stringify(stats)).not.toContain(app.secrets.get(clientKey));
  });

  it('rejects uninstall before install', async () => {
    const response = await control('POST', '/_sim/uninstall');

    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ error: 'no app is installed; install it first' });
  });

  it('resets stats', async () => {
    await installApp();

    const response = await control('POST', '/_sim/reset-stats');

    expect(await response.json()).toMatchObject({ installs: 0, installation: { installed: true } });
  });

  it('sets the token lifetime', async () => {
    await control('POST', '/_sim/token-lifetime', { seconds: 60 });
    const { clientKey, sharedSecret } = await installApp();

    const body = (await (await requestToken(signGrant(clientKey, sharedSecret))).json()) as { expires_in: number };

    expect(body.expires_in).toBe(60);
  });
});

describe('secrets in logs', () => {
  it('never logs secrets or tokens', async () => {
    const lines: string[] = [];
    await simulator.close();
    simulator = await startSimulator({ appBaseUrl: app.url, log: (line) => lines.push(line) });
    const accessToken = await obtainAccessToken();
    await getApi(DEMO_REPO_PATH, accessToken);
    await simulator.sendWebhook('repo:push');
    const clientKey = simulator.stats().installation?.clientKey ?? '';
    const joined = lines.join('\n');

    expect(lines.length).toBeGreaterThan(3);
    expect(joined).not.toContain(app.secrets.get(clientKey));
    expect(joined).not.toContain(accessToken);
  });
});
