/**
 * Real peers for the import tests: an atlassian-connect-express app, a
 * PostgreSQL server and a Redis server, each started on a free loopback port
 * in a temporary directory and stopped by the test that started it. Also
 * runs the import command as a subprocess, signs Connect JWTs with the
 * atlassian-jwt package (independent of the framework's signer) and reads
 * back what the import wrote to local KV.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQueryStringHash, encodeSymmetric, fromMethodAndUrl } from 'atlassian-jwt';
import { Miniflare } from 'miniflare';
import pg from 'pg';
import { createClient } from 'redis';
import { decodeInstallationRecord, type InstallationRecord } from '../../src/connect/installations';
import { createSecretCipher } from '../../src/connect/secret-cipher';
import { installationKeyPrefix } from '../../src/connect/storage-keys';
import { findFreePort } from '../../tools/dev-stack';
import { parseImportMetadata, type ImportMetadata } from '../../tools/import/decide';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BENCH_PACKAGE_JSON = join(REPO_ROOT, 'bench', 'package.json');

/** The key in src/app/descriptor.ts, which the worker checks on every install. */
export const SAMPLE_APP_KEY = 'bitbucket-connect-workers-sample';

/** The KV namespace id in wrangler.toml, under which wrangler dev keeps local data. */
const LOCAL_NAMESPACE_ID = '00000000000000000000000000000000';

const LOOPBACK_HOST = '127.0.0.1';
const SERVICE_READY_TIMEOUT_MS = 30_000;
const SERVICE_READY_POLL_MS = 100;
const SERVICE_STOP_GRACE_MS = 5_000;
const CONNECT_JWT_LIFETIME_SECONDS = 180;

export interface Service {
  readonly url: string;
  /** Stops the server and deletes its directory; safe to call more than once. */
  stop(): Promise<void>;
}

/** Creates a temporary directory that the caller removes. */
export function temporaryDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `import-${prefix}-`));
}

/** Returns a random shared secret in the shape Bitbucket sends: 43 base64url characters. */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

export interface TenantPayload {
  key: string;
  clientKey: string;
  sharedSecret: string;
  baseUrl: string;
  baseApiUrl: string;
  productType: string;
  eventType: string;
  publicKey: string;
  principal: { type: string; uuid: string; username: string; display_name: string };
  user: { type: string; uuid: string; display_name: string };
  [field: string]: unknown;
}

/** Returns a new CONNECT_ENCRYPTION_KEY value: `<key id>:<base64 of 32 random bytes>`. */
export function randomEncryptionKey(): string {
  return `test:${randomBytes(32).toString('base64')}`;
}

/** Builds the `installed` body Bitbucket would send for workspace number `index`. */
export function tenantPayload(index: number, overrides: Partial<TenantPayload> = {}): TenantPayload {
  return {
    key: SAMPLE_APP_KEY,
    clientKey: `connection:${1000 + index}`,
    sharedSecret: randomSecret(),
    baseUrl: 'https://bitbucket.org',
    baseApiUrl: 'https://api.bitbucket.org',
    productType: 'bitbucket',
    eventType: 'installed',
    publicKey: `public-key-${index}`,
    principal: { type: 'team', uuid: `{${randomUUID()}}`, username: `workspace-${index}`, display_name: `Workspace ${index}` },
    user: { type: 'user', uuid: `{${randomUUID()}}`, display_name: 'Installer' },
    ...overrides,
  };
}

/** Signs a Connect JWT for a request as Bitbucket does: iss = clientKey, qsh over the request. */
export function signRequestToken(clientKey: string, secret: string, method: string, pathWithQuery: string): string {
  const now = Math.floor(Date.now() / 1000);
  const qsh = createQueryStringHash(fromMethodAndUrl(method, pathWithQuery));
  return encodeSymmetric(
    { iss: clientKey, sub: `{${randomUUID()}}`, iat: now, exp: now + CONNECT_JWT_LIFETIME_SECONDS, qsh },
    secret,
  );
}

/** POSTs an `installed` body, signed with `signingSecret` when given, and returns the status. */
export async function postInstalled(appUrl: string, payload: Record<string, unknown>, signingSecret?: string): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signingSecret !== undefined) {
    headers.authorization = `JWT ${signRequestToken(String(payload.clientKey), signingSecret, 'POST', '/installed')}`;
  }
  const response = await fetch(`${appUrl}/installed`, { method: 'POST', headers, body: JSON.stringify(payload) });
  await response.arrayBuffer();
  return response.status;
}

/** Loads a page the way Bitbucket's iframe does, with the JWT in the `jwt` query parameter. */
export async function getSigned(appUrl: string, path: string, clientKey: string, secret: string): Promise<Response> {
  const token = signRequestToken(clientKey, secret, 'GET', path);
  const separator = path.includes('?') ? '&' : '?';
  return fetch(`${appUrl}${path}${separator}jwt=${encodeURIComponent(token)}`);
}

// ---------------------------------------------------------------------------
// The import command

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tools/import/cli.ts` as `npm run import-installations` would, keeping every output for secret checks. */
export class ImportCommand {
  readonly outputs: string[] = [];

  constructor(private readonly encryptionKey: string) {}

  async run(args: readonly string[], environment: Record<string, string> = {}): Promise<CliResult> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'tools/import/cli.ts', ...args], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        CONNECT_ENCRYPTION_KEY: this.encryptionKey,
        WRANGLER_SEND_METRICS: 'false',
        NO_COLOR: '1',
        ...environment,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode) => resolve(exitCode));
    });

    const result = { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
    this.outputs.push(result.stdout, result.stderr);
    return result;
  }
}

/** Runs the project's wrangler CLI from the repository root and returns its stdout; throws on failure. */
export async function runWrangler(args: readonly string[]): Promise<string> {
  const child = spawn('npx', ['wrangler', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  });
  if (code !== 0) {
    throw new Error(`wrangler ${args.join(' ')} exited with ${code}:\n${Buffer.concat(stderr).toString('utf8')}`);
  }
  return Buffer.concat(stdout).toString('utf8');
}

/** Returns the report line of a clientKey, so a failed assertion shows the whole line. */
export function reportLine(stdout: string, clientKey: string): string | undefined {
  return stdout.split('\n').find((line) => line.split(/\s+/).includes(clientKey) && !line.startsWith('Summary'));
}

/** Returns the status word of a clientKey's report line: imported, unchanged, kept, ignored or skipped. */
export function reportStatus(stdout: string, clientKey: string): string | undefined {
  return reportLine(stdout, clientKey)?.split(/\s+/)[0];
}

export function summaryLine(stdout: string): string | undefined {
  return stdout.split('\n').find((line) => line.startsWith('Summary'));
}

// ---------------------------------------------------------------------------
// Reading local KV

export interface StoredInstallation {
  readonly record: InstallationRecord;
  readonly metadata: ImportMetadata | null;
}

/** Reads every installation record under `wrangler dev --persist-to <persistTo>`, decrypted with `encryptionKey`. */
export async function readLocalInstallations(persistTo: string, encryptionKey: string): Promise<Map<string, StoredInstallation>> {
  const miniflare = new Miniflare({
    modules: true,
    script: 'export default {}',
    kvNamespaces: { CONNECT_KV: LOCAL_NAMESPACE_ID },
    kvPersist: join(persistTo, 'v3', 'kv'),
  });
  try {
    const kv = await miniflare.getKVNamespace('CONNECT_KV');
    const cipher = createSecretCipher(encryptionKey);
    const listing = await kv.list({ prefix: installationKeyPrefix() });
    const installations = new Map<string, StoredInstallation>();
    for (const entry of listing.keys) {
      const clientKey = decodeURIComponent(entry.name.slice(installationKeyPrefix().length));
      const { value, metadata } = await kv.getWithMetadata(entry.name, 'text');
      const record = await decodeInstallationRecord(value ?? '', clientKey, () => cipher);
      installations.set(clientKey, { record, metadata: parseImportMetadata(metadata) });
    }
    return installations;
  } finally {
    await miniflare.dispose();
  }
}

// ---------------------------------------------------------------------------
// Servers

/** Starts a detached process group, so stopping it also stops its children. */
function spawnGroup(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): {
  child: ChildProcess;
  output: () => string;
} {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const chunks: string[] = [];
  const keep = (chunk: Buffer) => {
    chunks.push(chunk.toString('utf8'));
    if (chunks.length > 200) {
      chunks.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => chunks.join('') };
}

async function stopGroup(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child.pid, signal);
  const timer = setTimeout(() => signalGroup(child.pid as number, 'SIGKILL'), SERVICE_STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group has already exited.
  }
}

async function waitUntilReady(name: string, child: ChildProcess, output: () => string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + SERVICE_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.exitCode} before it was ready. Output:\n${output()}`);
    }
    if (await probe().catch(() => false)) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, SERVICE_READY_POLL_MS));
  }
  throw new Error(`${name} was not ready within ${SERVICE_READY_TIMEOUT_MS / 1000} s. Output:\n${output()}`);
}

/** Starts a service and stops it again when the readiness check fails. */
async function startService(
  name: string,
  directory: string,
  start: () => { child: ChildProcess; output: () => string },
  probe: () => Promise<boolean>,
  url: string,
  stopSignal: NodeJS.Signals,
): Promise<Service> {
  let started: { child: ChildProcess; output: () => string } | undefined;
  const stop = async () => {
    if (started !== undefined) {
      await stopGroup(started.child, stopSignal);
    }
    rmSync(directory, { recursive: true, force: true });
  };

  try {
    started = start();
    const { child, output } = started;
    await waitUntilReady(name, child, output, probe);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

export interface AceAppOptions {
  /** ACE's `store` setting, such as `{ adapter: 'sequelize', dialect: 'sqlite', storage: file }`. */
  readonly store: Record<string, unknown>;
}

/** Starts the ACE app of ace-app.cjs on a free loopback port. */
export async function startAceApp(options: AceAppOptions): Promise<Service> {
  if (!existsSync(join(REPO_ROOT, 'bench', 'node_modules', 'atlassian-connect-express'))) {
    throw new Error('bench/node_modules has no atlassian-connect-express; run npm ci --prefix bench.');
  }
  const directory = temporaryDirectory('ace');
  const port = await findFreePort();
  const url = `http://${LOOPBACK_HOST}:${port}`;
  writeFileSync(
    join(directory, 'config.json'),
    JSON.stringify({
      production: {
        port,
        localBaseUrl: url,
        product: 'bitbucket',
        // ACE accepts installs only from hosts on this list; the test payloads name bitbucket.org.
        whitelist: 'bitbucket.org',
        store: { logging: false, ...options.store },
      },
    }),
  );
  writeFileSync(
    join(directory, 'atlassian-connect.json'),
    JSON.stringify({
      key: SAMPLE_APP_KEY,
      name: 'Import test app on ACE',
      baseUrl: '{{localBaseUrl}}',
      authentication: { type: 'jwt' },
      lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
      scopes: ['account'],
      contexts: ['account'],
      modules: {},
    }),
  );

  const script = fileURLToPath(new URL('./ace-app.cjs', import.meta.url));
  return startService(
    'atlassian-connect-express',
    directory,
    () =>
      spawnGroup(process.execPath, [script], {
        cwd: directory,
        env: { ...process.env, NODE_ENV: 'production', ACE_PACKAGE_JSON: BENCH_PACKAGE_JSON },
      }),
    async () => (await fetch(`${url}/atlassian-connect.json`)).ok,
    url,
    'SIGTERM',
  );
}

/** Fails with the install command when a server program the import tests need is missing. */
function requireProgram(program: string, server: string, debianPackage: string): void {
  const found = program.includes('/') ? existsSync(program) : spawnSync('which', [program]).status === 0;
  if (!found) {
    throw new Error(`${server} is not installed, and the import tests start a real one: run "apt-get install ${debianPackage}" (.ci/run does).`);
  }
}

/** Finds Debian's PostgreSQL programs, which are not on PATH. */
function postgresProgram(name: 'initdb' | 'postgres'): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((version) => existsSync(join(root, version, 'bin', name)))
      .sort((left, right) => Number(right) - Number(left));
    if (versions[0] !== undefined) {
      return join(root, versions[0], 'bin', name);
    }
  }
  return name;
}

/**
 * Starts PostgreSQL with a new cluster in a temporary directory. PostgreSQL
 * refuses to run as root, so as root it runs as the `postgres` user that
 * Debian's package creates, in a directory that user owns.
 */
export async function startPostgres(): Promise<Service> {
  const directory = temporaryDirectory('postgres');
  const dataDirectory = join(directory, 'data');
  const asRoot = process.getuid?.() === 0;
  const runAs = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];

  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(directory, uid, gid);
  }
  requireProgram(postgresProgram('initdb'), 'PostgreSQL', 'postgresql');
  const [initdb, initdbArgs] = runAs(postgresProgram('initdb'), [
    '-D', dataDirectory, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync',
  ]);
  execFileSync(initdb, initdbArgs, { stdio: 'pipe' });

  const port = await findFreePort();
  const url = `postgres://postgres@${LOOPBACK_HOST}:${port}/postgres`;
  const [postgres, postgresArgs] = runAs(postgresProgram('postgres'), [
    '-D', dataDirectory, '-h', LOOPBACK_HOST, '-p', String(port), '-k', directory, '-c', 'fsync=off',
  ]);
  return startService(
    'PostgreSQL',
    directory,
    () => spawnGroup(postgres, postgresArgs),
    async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.end();
      return true;
    },
    url,
    // SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
    'SIGINT',
  );
}

/** Starts redis-server without persistence. */
export async function startRedis(): Promise<Service> {
  requireProgram('redis-server', 'Redis', 'redis-server');
  const directory = temporaryDirectory('redis');
  const port = await findFreePort();
  const url = `redis://${LOOPBACK_HOST}:${port}`;
  return startService(
    'redis-server',
    directory,
    () =>
      spawnGroup('redis-server', [
        '--bind', LOOPBACK_HOST, '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', directory,
      ]),
    async () => {
      const client = createClient({ url, socket: { reconnectStrategy: false } });
      client.on('error', () => undefined);
      await client.connect();
      await client.ping();
      client.destroy();
      return true;
    },
    url,
    'SIGTERM',
  );
}
