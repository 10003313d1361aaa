// A minimal Connect app on node:http for the simulator's tests. It serves a
// descriptor, records every request, and verifies each JWT it receives with
// atlassian-jwt the way a careful app would: the first install of a clientKey
// is accepted unsigned, later installs must be signed with the stored secret.

import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createQueryStringHash, decodeSymmetric, fromMethodAndUrl, SymmetricAlgorithm } from 'atlassian-jwt';

export const APP_KEY = 'stand-in-app';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  /** Claims of the request's JWT when it verified, with the secret it verified against. */
  verifiedClaims?: Record<string, unknown>;
  /** Why the request's JWT failed verification, when it carried one. */
  jwtProblem?: string;
}

export interface StandInApp {
  url: string;
  descriptor: Record<string, unknown>;
  /** Status the app answers installed callbacks with when they verify; 204 by default. */
  installedStatus: number;
  /** Shared secrets the app has stored, per clientKey. */
  secrets: Map<string, string>;
  requests: RecordedRequest[];
  requestsTo(path: string): RecordedRequest[];
  close(): Promise<void>;
}

export function createDescriptor(baseUrl: string): Record<string, unknown> {
  return {
    key: APP_KEY,
    name: 'Stand-in app',
    description: 'Connect app used by the simulator tests',
    vendor: { name: 'Tests', url: 'https://example.com' },
    baseUrl,
    authentication: { type: 'jwt' },
    lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
    scopes: ['account', 'repository', 'pullrequest'],
    contexts: ['account'],
    modules: {
      repoPages: [
        {
          key: 'repo-overview',
          name: { value: 'Overview' },
          url: '/repo-page?repoUuid={repository.uuid}&repoPath={repository.full_name}&userUuid={user.uuid}&unknown={no.such}',
          location: 'org.bitbucket.repository.navigation',
        },
      ],
      webPanels: [
        {
          key: 'summary-panel',
          name: { value: 'Summary' },
          url: '/panel',
          location: 'org.bitbucket.repository.overview.informationPanel',
        },
      ],
      webhooks: [
        { event: 'repo:push', url: '/webhook' },
        { event: '*', url: '/webhook-all', key: 'all-events' },
      ],
    },
  };
}

function readJwt(request: IncomingMessage, requestUrl: URL): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('JWT ')) {
    return header.slice('JWT '.length);
  }
  return requestUrl.searchParams.get('jwt') ?? undefined;
}

/** Verifies signature, expiry and qsh of a JWT; returns the claims or a problem. */
export function verifyConnectJwt(
  token: string,
  sharedSecret: string,
  method: string,
  pathAndQuery: string,
): { claims: Record<string, unknown> } | { problem: string } {
  let claims: Record<string, unknown>;
  try {
    claims = decodeSymmetric(token, sharedSecret, SymmetricAlgorithm.HS256) as Record<string, unknown>;
  } catch {
    return { problem: 'signature' };
  }
  if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) {
    return { problem: 'expired' };
  }
  if (claims.qsh !== createQueryStringHash(fromMethodAndUrl(method, pathAndQuery))) {
    return { problem: 'qsh' };
  }
  return { claims };
}

async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : JSON.parse(text);
}

export async function startStandInApp(): Promise<StandInApp> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const app: StandInApp = {
    url,
    descriptor: createDescriptor(url),
    installedStatus: 204,
    secrets: new Map(),
    requests: [],
    requestsTo: (path) => app.requests.filter((request) => request.url.split('?')[0] === path),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  server.on('request', (request, response) => {
    void (async () => {
      const requestUrl = new URL(request.url ?? '/', url);
      const body = await readJsonBody(request);
      const recorded: RecordedRequest = { method: request.method ?? '', url: request.url ?? '/', headers: request.headers, body };
      app.requests.push(recorded);

      if (requestUrl.pathname === '/atlassian-connect.json') {
        response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(app.descriptor));
        return;
      }

      const payload = (body ?? {}) as { clientKey?: string; sharedSecret?: string };
      // Lifecycle callbacks name their installation in the body; other requests in the JWT's iss claim.
      const token = readJwt(request, requestUrl);
      let clientKey = payload.clientKey;
      if (clientKey === undefined && token !== undefined) {
        clientKey = (decodeSymmetric(token, '', SymmetricAlgorithm.HS256, true) as { iss?: string }).iss;
      }
      const storedSecret = clientKey === undefined ? undefined : app.secrets.get(clientKey);
      if (token !== undefined) {
        const outcome =
          storedSecret === undefined
            ? { problem: 'unknown clientKey' }
            : verifyConnectJwt(token, storedSecret, request.method ?? 'GET', request.url ?? '/');
        if ('claims' in outcome) {
          recorded.verifiedClaims = outcome.claims;
        } else {
          recorded.jwtProblem = outcome.problem;
        }
      }

      if (requestUrl.pathname === '/installed') {
        const trusted = token === undefined ? storedSecret === undefined : recorded.verifiedClaims !== undefined;
        if (!trusted) {
          response.writeHead(401).end();
          return;
        }
        if (app.installedStatus >= 200 && app.installedStatus < 300 && clientKey !== undefined && payload.sharedSecret !== undefined) {
          app.secrets.set(clientKey, payload.sharedSecret);
        }
        response.writeHead(app.installedStatus).end();
        return;
      }
      response.writeHead(recorded.jwtProblem === undefined ? 204 : 401).end();
    })();
  });
  return app;
}
