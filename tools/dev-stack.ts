/**
 * Starts the whole local flow: the Bitbucket simulator and the worker under
 * `wrangler dev`, both on loopback, with the simulator's origin added to the
 * worker's ALLOWED_BASE_URLS. Used by `npm start` and the end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEVELOPMENT_ENCRYPTION_KEY } from '../src/connect/secret-cipher';
import { startSimulator, type Simulator } from './simulator/index';

const LOOPBACK_HOST = '127.0.0.1';
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** How long `wrangler dev` may take to serve the descriptor, in milliseconds. */
const WORKER_READY_TIMEOUT_MS = 90_000;
const WORKER_READY_POLL_MS = 250;

/** Grace period between SIGTERM and SIGKILL when stopping wrangler, in milliseconds. */
const WORKER_STOP_GRACE_MS = 5_000;

export interface DevStackOptions {
  /** Worker port; 0 picks a free one. */
  appPort?: number;
  /** Simulator port; 0 picks a free one. */
  simulatorPort?: number;
  /** Directory for wrangler's local KV; defaults to `.wrangler/state`. */
  persistTo?: string;
  /** Access token lifetime the simulator grants, in seconds. */
  tokenLifetimeSeconds?: number;
  /** Receives one line per step and the worker's output. */
  log?: (line: string) => void;
  /** Also pass the worker's own output to `log`. */
  showWorkerOutput?: boolean;
}

export interface DevStack {
  readonly appUrl: string;
  readonly simulator: Simulator;
  /** Stops the worker and the simulator; safe to call more than once. */
  stop(): Promise<void>;
}

export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const log = options.log ?? (() => undefined);
  const appPort = options.appPort === undefined || options.appPort === 0 ? await findFreePort() : options.appPort;
  const appUrl = `http://${LOOPBACK_HOST}:${appPort}`;
  await assertPortFree(appPort, 'the worker', '--port');
  if (options.simulatorPort !== undefined && options.simulatorPort !== 0) {
    await assertPortFree(options.simulatorPort, 'the simulator', '--simulator-port');
  }

  const simulator = await startSimulator({
    host: LOOPBACK_HOST,
    port: options.simulatorPort ?? 0,
    appBaseUrl: appUrl,
    ...(options.tokenLifetimeSeconds === undefined ? {} : { tokenLifetimeSeconds: options.tokenLifetimeSeconds }),
    log: (line) => log(`simulator: ${line}`),
  });
  log(`simulator listening on ${simulator.url}`);

  let worker: ChildProcess | undefined;
  const stop = async () => {
    await stopProcess(worker);
    worker = undefined;
    await simulator.close();
  };

  try {
    worker = spawnWorker(appPort, simulator.url, options, log);
    await waitForWorker(appUrl, worker);
    log(`worker listening on ${appUrl}`);
  } catch (error) {
    await stop();
    throw error;
  }

  return { appUrl, simulator, stop };
}

/** Builds the `npx` arguments of `wrangler dev` on loopback with the given vars. */
export function wranglerDevArguments(options: {
  port: number;
  vars: Readonly<Record<string, string>>;
  config?: string;
  persistTo?: string;
}): string[] {
  return [
    'wrangler',
    'dev',
    ...(options.config === undefined ? [] : ['--config', options.config]),
    '--ip',
    LOOPBACK_HOST,
    '--port',
    String(options.port),
    '--inspector-port',
    '0',
    '--show-interactive-dev-session=false',
    ...(options.persistTo === undefined ? [] : ['--persist-to', options.persistTo]),
    ...Object.entries(options.vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ];
}

function spawnWorker(port: number, simulatorUrl: string, options: DevStackOptions, log: (line: string) => void): ChildProcess {
  const args = wranglerDevArguments({
    port,
    vars: {
      ALLOWED_BASE_URLS: `https://bitbucket.org,https://api.bitbucket.org,${simulatorUrl}`,
      APP_BASE_URL: `http://${LOOPBACK_HOST}:${port}`,
      // The public development key: local KV data is throwaway, and the worker logs that it is in use.
      CONNECT_ENCRYPTION_KEY: DEVELOPMENT_ENCRYPTION_KEY,
    },
    ...(options.persistTo === undefined ? {} : { persistTo: options.persistTo }),
  });

  const child = spawn('npx', args, {
    cwd: PROJECT_ROOT,
    // CLOUDFLARE_CF_FETCH_ENABLED=false stops Miniflare from fetching the Request.cf object from the internet.
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const forward = (chunk: Buffer) => {
    if (options.showWorkerOutput === true) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') {
          log(`worker: ${line}`);
        }
      }
    }
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

async function waitForWorker(appUrl: string, worker: ChildProcess): Promise<void> {
  const deadline = Date.now() + WORKER_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (worker.exitCode !== null) {
      throw new Error(`wrangler dev exited with code ${worker.exitCode} before serving ${appUrl}.`);
    }
    try {
      const response = await fetch(`${appUrl}/atlassian-connect.json`);
      // The descriptor contains the base URL this worker was started with, so it
      // distinguishes our worker from another process on the same port.
      if (response.ok && ((await response.json()) as { baseUrl?: unknown }).baseUrl === appUrl) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, WORKER_READY_POLL_MS));
  }
  throw new Error(`wrangler dev did not serve ${appUrl}/atlassian-connect.json within ${WORKER_READY_TIMEOUT_MS / 1000} s.`);
}

/** Stops a detached child and its process group (npx, wrangler and workerd). */
async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child.pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child.pid as number, 'SIGKILL'), WORKER_STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  // workerd may outlive its parent for a moment; make sure the group is gone.
  signalGroup(child.pid, 'SIGKILL');
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group has already exited.
  }
}

/** Fails with a clear message when something already listens on the port. */
async function assertPortFree(port: number, owner: string, option: string): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, LOOPBACK_HOST, () => server.close(() => resolve(true)));
  });
  if (!free) {
    throw new Error(
      `Port ${port} on ${LOOPBACK_HOST} is already in use (another npm start?). Stop that process or pass ${option} <port> for ${owner}.`,
    );
  }
}

export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK_HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
