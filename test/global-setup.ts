/**
 * Vitest global setup, run in Node before the workerd test pool starts. It
 * serves a stand-in for the app's descriptor and lifecycle endpoints on
 * loopback, starts one Bitbucket simulator per name in SIMULATOR_NAMES,
 * installs the app into each, and provides each simulator's URL and installed
 * payload to the tests through `inject('simulators')`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startSimulator } from '../tools/simulator/index';
import { SIMULATOR_APP_KEY, SIMULATOR_NAMES, type ProvidedSimulator, type SimulatorName } from './simulators';

const LOOPBACK_HOST = '127.0.0.1';

/** Installed payloads received by the stand-in, keyed by the baseUrl of the simulator that sent them. */
type InstalledPayloads = Map<string, Record<string, unknown>>;

function descriptor(baseUrl: string): Record<string, unknown> {
  return {
    key: SIMULATOR_APP_KEY,
    name: 'Access token test app',
    description: 'Stand-in app for the access token and REST client tests.',
    vendor: { name: 'Test vendor', url: baseUrl },
    baseUrl,
    authentication: { type: 'jwt' },
    lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
    scopes: ['account', 'repository', 'pullrequest'],
    contexts: ['account'],
    modules: {},
  };
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function startLifecycleStandIn(installed: InstalledPayloads): Promise<Server> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const baseUrl = `http://${LOOPBACK_HOST}:${(server.address() as AddressInfo).port}`;
    const path = (request.url ?? '/').split('?')[0];

    if (request.method === 'GET' && path === '/atlassian-connect.json') {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify(descriptor(baseUrl)));
      return;
    }

    if (request.method === 'POST' && (path === '/installed' || path === '/uninstalled')) {
      readJson(request).then(
        (body) => {
          const payload = body as Record<string, unknown>;
          if (path === '/installed') {
            installed.set(String(payload.baseUrl), payload);
          }
          response.writeHead(204).end();
        },
        () => response.writeHead(400).end(),
      );
      return;
    }

    response.writeHead(404).end();
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK_HOST, () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error === undefined ? resolve() : reject(error)));
    server.closeAllConnections();
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const installed: InstalledPayloads = new Map();
  const app = await startLifecycleStandIn(installed);
  const appBaseUrl = `http://${LOOPBACK_HOST}:${(app.address() as AddressInfo).port}`;

  const simulators: Array<{ close(): Promise<void> }> = [];
  const provided = {} as Record<SimulatorName, ProvidedSimulator>;
  const teardown = async (): Promise<void> => {
    await Promise.all(simulators.map((simulator) => simulator.close()));
    await closeServer(app);
  };

  try {
    for (const name of SIMULATOR_NAMES) {
      const simulator = await startSimulator({ appBaseUrl, port: 0 });
      simulators.push(simulator);

      const result = await simulator.install();
      const installedPayload = installed.get(simulator.url);
      if (!result.ok || installedPayload === undefined) {
        throw new Error(`Installing the test app into simulator ${name} failed: ${result.error ?? 'no installed payload arrived'}.`);
      }
      provided[name] = { url: simulator.url, installedPayload };
    }
  } catch (error) {
    await teardown();
    throw error;
  }

  project.provide('simulators', provided);
  return teardown;
}
