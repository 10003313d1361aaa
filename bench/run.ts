/**
 * `npm run bench`: benchmarks of the framework side by side with
 * atlassian-connect-express (ACE), written to bench/RESULTS.md.
 *
 * 1. Throughput and latency of an authenticated page route and of an
 *    unauthenticated floor route: ours in workerd through Miniflare's API,
 *    the peer on ACE, and ours under `wrangler dev` for reference.
 * 2. The cost of each verification step inside workerd.
 * 3. Token exchanges under N concurrent API calls against the simulator.
 * 4. Worker bundle sizes.
 * 5. KV operations per authenticated request.
 *
 * Everything listens on 127.0.0.1, every load run is bounded in time or in
 * requests, and every server and child process is stopped before the
 * process exits, also after a failure or Ctrl-C. Timings never fail the
 * bench, but a response other than 200 in any load run does.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findFreePort } from '../tools/dev-stack';
import { startSimulator, type InstallResult } from '../tools/simulator/index';
import { buildBundle, type BundleSize } from './harness/bundles';
import { BENCH_DIR, childEnv, LOOPBACK_HOST, OFFLINE_ENV, ROOT_DIR, WORK_DIR } from './harness/env';
import { measureExchanges } from './harness/exchanges';
import { createBenchInstallation, postFirstInstall, signPageTokens, type BenchInstallation } from './harness/installation';
import { countKvOperations } from './harness/kv-operations';
import { assertAllOk, runLoad, type LoadResult } from './harness/load';
import { describeMachine } from './harness/machine';
import { runCommand } from './harness/processes';
import { renderResults, type BenchResults } from './harness/report';
import { startAce, startWranglerDev } from './harness/servers';
import { measureSteps } from './harness/steps';
import { measureThroughput, type Target } from './harness/throughput';
import { startWorkerd } from './harness/workerd';
import { PAGE_PATH, STATIC_PATH } from './worker/constants';

const PLAN = {
  connections: 50,
  /** Distinct page tokens: a 10 s run at 2,000 requests/s uses each about once. */
  tokenCount: 20_000,
  pageRounds: 5,
  pageWarmupSeconds: 2,
  pageDurationSeconds: 10,
  floorRounds: 5,
  floorWarmupSeconds: 1,
  floorDurationSeconds: 5,
  wranglerDevWarmupSeconds: 1,
  wranglerDevDurationSeconds: 5,
  stepIterations: 2_000,
  stepRepeats: 5,
  exchangeCounts: [1, 10, 100, 1_000],
  kvCountedRequests: 1_000,
} as const;

const RESULTS_FILE = join(BENCH_DIR, 'RESULTS.md');

/** Maximum time for `npm ci --prefix bench`, which compiles sqlite3 from source. */
const INSTALL_TIMEOUT_MS = 8 * 60_000;
const TYPECHECK_TIMEOUT_MS = 120_000;

/** Bitbucket's origins, the default of ALLOWED_BASE_URLS, to which the bench adds the simulator's origin. */
const BITBUCKET_ORIGINS = 'https://bitbucket.org,https://api.bitbucket.org';

// Miniflare runs inside this process, so its offline settings go here too.
Object.assign(process.env, OFFLINE_ENV);

/** Returns the 1-minute load average, because other work on the machine lowers every figure of a run. */
function oneMinuteLoad(): number {
  return loadavg()[0] ?? 0;
}

function progress(line: string): void {
  console.log(`[bench] ${line}`);
}

/** Servers to stop at the end, newest first. Each stop function may run more than once. */
class RunningServers {
  private readonly stops: Array<{ name: string; stop: () => Promise<void> }> = [];

  add(name: string, stop: () => Promise<void>): void {
    this.stops.push({ name, stop });
  }

  async stopAll(): Promise<void> {
    for (let entry = this.stops.pop(); entry !== undefined; entry = this.stops.pop()) {
      try {
        await entry.stop();
      } catch (error) {
        console.error(`[bench] stopping ${entry.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const started = performance.now();
  await installBenchDependencies();
  const loadAtStart = oneMinuteLoad();
  rmSync(WORK_DIR, { recursive: true, force: true });
  mkdirSync(WORK_DIR, { recursive: true });

  progress(`1-minute load average before measuring: ${loadAtStart.toFixed(2)} (other work on the machine lowers every figure)`);
  const servers = new RunningServers();
  const interrupt = (signal: NodeJS.Signals) => {
    progress(`${signal} received; stopping every server`);
    void servers.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  try {
    const results = await runBenchmarks(servers, startedAt, started, loadAtStart);
    writeFileSync(RESULTS_FILE, renderResults(results));
    progress(`wrote ${RESULTS_FILE} after ${Math.round(results.runSeconds)} s`);
  } finally {
    await servers.stopAll();
  }
}

async function installBenchDependencies(): Promise<void> {
  if (existsSync(join(BENCH_DIR, 'node_modules'))) {
    return;
  }
  progress('bench/node_modules is missing: running npm ci --prefix bench (sqlite3 compiles, about 2 min)');
  await runCommand('npm', ['ci', '--prefix', 'bench', '--no-audit', '--no-fund'], {
    cwd: ROOT_DIR,
    env: childEnv(),
    timeoutMs: INSTALL_TIMEOUT_MS,
    inheritOutput: true,
  });
}

async function runBenchmarks(
  servers: RunningServers,
  startedAt: Date,
  started: number,
  loadAtStart: number,
): Promise<BenchResults> {
  progress('type-checking the bench worker');
  await runCommand('npx', ['tsc', '--noEmit', '-p', 'bench/worker/tsconfig.json'], {
    cwd: ROOT_DIR,
    env: childEnv(),
    timeoutMs: TYPECHECK_TIMEOUT_MS,
  });

  progress('building worker bundles with wrangler deploy --dry-run');
  const benchBundle = await buildBundle({
    label: 'bench worker (`bench/worker/index.ts`)',
    config: 'bench/wrangler.toml',
    minify: false,
    outdir: join(WORK_DIR, 'bundle-bench'),
  });
  const bareBundle = await buildBundle({
    label: 'bare worker (`bench/worker/bare.ts`)',
    config: 'bench/wrangler.toml',
    entry: 'bench/worker/bare.ts',
    minify: false,
    outdir: join(WORK_DIR, 'bundle-bare'),
  });
  const bundles = await buildSizeBundles();

  const installation = createBenchInstallation();
  const encryptionKey = `bench:${randomBytes(32).toString('base64')}`;
  const oursUrl = `http://${LOOPBACK_HOST}:${await findFreePort()}`;
  const peerUrl = `http://${LOOPBACK_HOST}:${await findFreePort()}`;

  const oursSimulator = await startSimulator({ host: LOOPBACK_HOST, port: 0, appBaseUrl: oursUrl });
  servers.add('simulator of ours', () => oursSimulator.close());
  const peerSimulator = await startSimulator({ host: LOOPBACK_HOST, port: 0, appBaseUrl: peerUrl });
  servers.add('simulator of the peer', () => peerSimulator.close());

  const workerBindings = (appUrl: string): Record<string, string> => ({
    APP_BASE_URL: appUrl,
    ALLOWED_BASE_URLS: `${BITBUCKET_ORIGINS},${oursSimulator.url}`,
    CONNECT_ENCRYPTION_KEY: encryptionKey,
    LOG_LEVEL: 'warn',
  });

  progress(`starting workerd (Miniflare API) on ${oursUrl} and ACE on ${peerUrl}`);
  const ours = await startWorkerd({
    scriptPath: benchBundle.mainModule,
    port: Number(new URL(oursUrl).port),
    bindings: workerBindings(oursUrl),
    logFile: join(WORK_DIR, 'workerd.log'),
  });
  servers.add('workerd', () => ours.dispose());
  const peer = await startAce(Number(new URL(peerUrl).port), join(WORK_DIR, 'ace.log'));
  servers.add('ACE', () => peer.group.stop());
  const barePort = await findFreePort();
  const bare = await startWorkerd({
    scriptPath: bareBundle.mainModule,
    port: barePort,
    bindings: {},
    logFile: join(WORK_DIR, 'workerd-bare.log'),
  });
  servers.add('workerd with the bare worker', () => bare.dispose());

  progress('installing: the same installed payload to both apps, and each simulator into its app');
  await postFirstInstall(ours.url, installation);
  await postFirstInstall(peer.url, installation);
  const oursSimulatorInstall = requireInstalled('ours', await oursSimulator.install());
  const peerSimulatorInstall = requireInstalled('the peer', await peerSimulator.install());

  progress(`signing ${PLAN.tokenCount} page tokens`);
  const tokens = signPageTokens(installation, PLAN.tokenCount);
  const targets: Target[] = [
    { side: 'ours', url: ours.url },
    { side: 'peer', url: peer.url },
  ];

  const page = await measureThroughput(
    targets,
    {
      path: PAGE_PATH,
      tokens,
      rounds: PLAN.pageRounds,
      warmupSeconds: PLAN.pageWarmupSeconds,
      durationSeconds: PLAN.pageDurationSeconds,
      connections: PLAN.connections,
    },
    progress,
  );
  const floor = await measureThroughput(
    [...targets, { side: 'bare', url: bare.url }],
    {
      path: STATIC_PATH,
      rounds: PLAN.floorRounds,
      warmupSeconds: PLAN.floorWarmupSeconds,
      durationSeconds: PLAN.floorDurationSeconds,
      connections: PLAN.connections,
    },
    progress,
  );

  progress('timing verification steps inside workerd');
  const steps = await measureSteps(ours.url, installation.clientKey, {
    iterations: PLAN.stepIterations,
    repeats: PLAN.stepRepeats,
  });

  progress('counting token exchanges under concurrency');
  const exchanges = {
    ours: await measureExchanges(ours.url, oursSimulatorInstall, oursSimulator, PLAN.exchangeCounts),
    peer: await measureExchanges(peer.url, peerSimulatorInstall, peerSimulator, PLAN.exchangeCounts),
  };
  await ours.dispose();
  await peer.group.stop();
  await bare.dispose();

  progress('counting KV operations per request');
  const kv = await countKv(servers, benchBundle, workerBindings, installation, tokens);

  progress('measuring wrangler dev for reference');
  const wranglerDev = await measureWranglerDev(servers, workerBindings, installation, tokens);

  return {
    startedAt,
    runSeconds: (performance.now() - started) / 1000,
    machine: describeMachine(),
    loadAverage: { atStart: loadAtStart, atEnd: oneMinuteLoad() },
    tokenCount: PLAN.tokenCount,
    page,
    floor,
    wranglerDev,
    stepIterations: PLAN.stepIterations,
    stepRepeats: PLAN.stepRepeats,
    steps,
    exchanges,
    bundles,
    kv,
  };
}

/** Builds the sample app and the framework-only entry, each plain and minified. */
async function buildSizeBundles(): Promise<BundleSize[]> {
  const specs = [
    { label: 'sample app (`src/index.ts`, wrangler.toml)', key: 'sample' },
    { label: 'framework only (`bench/worker/minimal.ts`)', key: 'minimal', config: 'bench/wrangler.toml', entry: 'bench/worker/minimal.ts' },
  ];
  const bundles: BundleSize[] = [];
  for (const spec of specs) {
    for (const minify of [false, true]) {
      bundles.push(
        await buildBundle({
          label: spec.label,
          ...(spec.config === undefined ? {} : { config: spec.config }),
          ...(spec.entry === undefined ? {} : { entry: spec.entry }),
          minify,
          outdir: join(WORK_DIR, `bundle-${spec.key}${minify ? '-minified' : ''}`),
        }),
      );
    }
  }
  return bundles;
}

function requireInstalled(side: string, result: InstallResult): string {
  if (!result.ok || result.clientKey === null) {
    throw new Error(`The simulator failed to install into ${side}: ${result.error ?? `HTTP ${result.status}`}.`);
  }
  return result.clientKey;
}

/** Serves the bundle again with the counting KV wrapper on, and counts KV operations per request. */
async function countKv(
  servers: RunningServers,
  bundle: BundleSize,
  workerBindings: (appUrl: string) => Record<string, string>,
  installation: BenchInstallation,
  tokens: readonly string[],
) {
  const port = await findFreePort();
  const counted = await startWorkerd({
    scriptPath: bundle.mainModule,
    port,
    bindings: { ...workerBindings(`http://${LOOPBACK_HOST}:${port}`), BENCH_COUNT_KV: 'true' },
    logFile: join(WORK_DIR, 'workerd-kv-count.log'),
  });
  servers.add('workerd with counting KV', () => counted.dispose());

  await postFirstInstall(counted.url, installation);
  const rows = [
    await countKvOperations(counted.url, PAGE_PATH, PLAN.kvCountedRequests, tokens),
    await countKvOperations(counted.url, STATIC_PATH, PLAN.kvCountedRequests),
  ];
  await counted.dispose();
  return rows;
}

/** Runs the page and floor routes once each under `wrangler dev`, for reference. */
async function measureWranglerDev(
  servers: RunningServers,
  workerBindings: (appUrl: string) => Record<string, string>,
  installation: BenchInstallation,
  tokens: readonly string[],
): Promise<BenchResults['wranglerDev']> {
  const url = `http://${LOOPBACK_HOST}:${await findFreePort()}`;
  const dev = await startWranglerDev(
    Number(new URL(url).port),
    workerBindings(url),
    join(WORK_DIR, 'wrangler-dev-state'),
    join(WORK_DIR, 'wrangler-dev.log'),
  );
  servers.add('wrangler dev', () => dev.group.stop());
  await postFirstInstall(dev.url, installation);

  const run = async (path: string, pathTokens?: readonly string[]): Promise<LoadResult> => {
    const load = { url: dev.url, path, connections: PLAN.connections, ...(pathTokens === undefined ? {} : { tokens: pathTokens }) };
    assertAllOk(`wrangler dev ${path} (warm-up)`, await runLoad({ ...load, durationSeconds: PLAN.wranglerDevWarmupSeconds }));
    const result = await runLoad({ ...load, durationSeconds: PLAN.wranglerDevDurationSeconds });
    assertAllOk(`wrangler dev ${path}`, result);
    progress(`wrangler dev ${path}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.latencyP50Ms} ms, p99 ${result.latencyP99Ms} ms`);
    return result;
  };

  const page = await run(PAGE_PATH, tokens);
  const floor = await run(STATIC_PATH);
  await dev.group.stop();
  return {
    warmupSeconds: PLAN.wranglerDevWarmupSeconds,
    durationSeconds: PLAN.wranglerDevDurationSeconds,
    page,
    floor,
  };
}

main().catch((error: unknown) => {
  console.error(`[bench] failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
