/**
 * Renders bench/RESULTS.md from the figures of one run.
 */
import type { BundleSize } from './bundles';
import type { ExchangeRow } from './exchanges';
import type { KvOperationsRow } from './kv-operations';
import type { LoadResult } from './load';
import type { StepCost } from './steps';
import type { SideName, ThroughputReport, ThroughputSummary } from './throughput';
import type { StepName } from '../worker/constants';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  /** Package versions, by name, plus Node's. */
  readonly versions: Readonly<Record<string, string>>;
}

export interface BenchResults {
  readonly startedAt: Date;
  readonly runSeconds: number;
  readonly machine: MachineInfo;
  /** The machine's 1-minute load average when measuring started (after any install) and when it ended. */
  readonly loadAverage: { readonly atStart: number; readonly atEnd: number };
  readonly tokenCount: number;
  readonly page: ThroughputReport;
  readonly floor: ThroughputReport;
  readonly wranglerDev: {
    readonly warmupSeconds: number;
    readonly durationSeconds: number;
    readonly page: LoadResult;
    readonly floor: LoadResult;
  };
  readonly stepIterations: number;
  readonly stepRepeats: number;
  readonly steps: readonly StepCost[];
  readonly exchanges: { readonly ours: readonly ExchangeRow[]; readonly peer: readonly ExchangeRow[] };
  readonly bundles: readonly BundleSize[];
  readonly kv: readonly KvOperationsRow[];
}

const STEP_DESCRIPTIONS: Record<Exclude<StepName, 'empty'>, string> = {
  hmac: 'WebCrypto `crypto.subtle.verify` HMAC-SHA256 of the token, key imported beforehand',
  sha256: 'WebCrypto `crypto.subtle.digest` SHA-256 of the canonical request',
  floor: '`hmac` then `sha256`: the least any verifier of a Connect JWT with a qsh does',
  decode: '`decodeUnverified(token)`: size, shape, header and claims checks, base64url and JSON decoding',
  verify: '`verifyConnectToken(decoded, sharedSecret)`: signature through hono/jwt with the cached CryptoKey, then the time claims',
  qsh: '`createQueryStringHash("GET", url, appBaseUrl)`: canonical request and SHA-256',
  'kv-get': '`kv.get(installationKey, "text")`: the raw KV read of the installation record',
  'kv-read': '`InstallationStore.get(clientKey)`: KV read, JSON parse, record checks, shared secret decryption (memoized)',
  'cached-read': '`InstallationStore.getCached(clientKey)`: the isolate\'s memory copy of the record, as `authenticate()` reads it',
  full: 'what `authenticate()` runs without Hono: `extractToken`, `decodeUnverified`, `InstallationStore.getCached`, `verifyTokenForRecord`',
};

export function renderResults(results: BenchResults): string {
  const sections = [
    renderHeader(results),
    renderSetup(results),
    renderThroughput(results),
    renderSteps(results),
    renderExchanges(results),
    renderBundles(results),
    renderKv(results),
    renderLimits(),
  ];
  return `${sections.join('\n\n')}\n`;
}

function renderHeader(results: BenchResults): string {
  const { machine } = results;
  const minutes = Math.floor(results.runSeconds / 60);
  const seconds = Math.round(results.runSeconds % 60);
  const versionRows = Object.entries(machine.versions).map(([name, version]) => `| ${name} | ${version} |`);
  return [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${results.startedAt.toISOString()}; the whole run took ${minutes} min ${seconds} s.`,
    'Every figure below comes from that one run. Timings vary from run to run, so compare',
    'figures of the same run, and read small differences as noise.',
    '',
    '| machine | |',
    '|---|---|',
    `| CPU | ${machine.cpuModel}, ${machine.cores} cores |`,
    `| memory | ${machine.memoryGiB.toFixed(0)} GiB |`,
    `| OS | ${machine.os} |`,
    `| 1-minute load average | ${results.loadAverage.atStart.toFixed(2)} when measuring started, ${results.loadAverage.atEnd.toFixed(2)} at the end |`,
    ...versionRows,
  ].join('\n');
}

function renderSetup(results: BenchResults): string {
  const { plan } = results.page;
  return [
    '## How to run',
    '',
    '`npm run bench` from the repository root runs everything on this page and rewrites it. It installs',
    '`bench/`\'s own dependencies with `npm ci --prefix bench` when `bench/node_modules` is missing, and keeps',
    'builds, local state and server logs under `bench/.work/`.',
    '',
    '## What runs where',
    '',
    '- **ours**: `bench/worker/index.ts`, built on `src/connect` (`createConnectApp` and `authenticate()`), bundled by',
    '  `wrangler deploy --dry-run` and served by workerd through Miniflare\'s API on 127.0.0.1. Requests reach',
    '  workerd\'s own socket, with no proxy in front of it.',
    '- **peer**: atlassian-connect-express (ACE) on Express 4 in one Node process (`bench/ace/server.cjs`),',
    '  `NODE_ENV=production`, its default store (Sequelize on in-memory SQLite, query logging off), and',
    '  `addon.authenticate()` on the page route.',
    '- **bare** (floor only): `bench/worker/bare.ts`, a worker without Hono or the framework, served the same way',
    '  as ours. It is the control for what workerd and Miniflare cost on this machine.',
    '- **wrangler dev**: the same bundle under `wrangler dev`. Its proxy in front of the worker caps throughput, so',
    '  its figures are a reference for local development only and are not compared with the peer.',
    `- **load**: autocannon\'s programmatic API in the harness\'s Node process, ${plan.connections} connections, on the same`,
    '  machine as the server under test, all on loopback.',
    '',
    'Both apps receive the same Bitbucket-shaped `installed` payload (a first install, so without a JWT).',
    `Then both get the same ${results.tokenCount.toLocaleString('en-US')} distinct page tokens, signed by the npm package atlassian-jwt:`,
    'HS256 with that payload\'s sharedSecret, `iss` = clientKey, a distinct `sub` each, `exp` one hour ahead',
    'and the qsh of `GET /bench/page`. Requests take the tokens in turn as the `jwt` query parameter.',
    'Both page routes check the signature, the time claims and the qsh, look the installation up, and return',
    '`{"clientKey": ...}`. Ours looks it up in the isolate\'s memory copy, which it reads again from KV once',
    'the copy is older than `INSTALLATION_MEMORY_CACHE_SECONDS`. The peer queries its store on every',
    'request. Both floor routes (`/bench/static`) return a small JSON body without authentication.',
  ].join('\n');
}

function renderThroughput(results: BenchResults): string {
  const { page, floor, wranglerDev } = results;
  const runRow = (path: string) => (run: ThroughputReport['runs'][number]) =>
    `| \`${path}\` | ${run.round} | ${run.side} | ${rate(run.result.requestsPerSecond)} | ` +
    `${ms(run.result.latencyP50Ms)} | ${ms(run.result.latencyP99Ms)} | ${run.result.total.toLocaleString('en-US')} | ${statuses(run.result)} | ` +
    `${run.loadAverage.toFixed(2)} |`;
  const runRows = [...page.runs.map(runRow(page.plan.path)), ...floor.runs.map(runRow(floor.plan.path))];

  const medianRow = (label: string, report: ThroughputReport) => {
    const ours = summaryOf(report, 'ours');
    const peer = summaryOf(report, 'peer');
    return (
      `| ${label} | ${rate(ours.requestsPerSecond)} | ${rate(peer.requestsPerSecond)} | ` +
      `**${(ours.requestsPerSecond / peer.requestsPerSecond).toFixed(2)}** | ${ms(ours.latencyP50Ms)} / ${ms(peer.latencyP50Ms)} | ` +
      `${ms(ours.latencyP99Ms)} / ${ms(peer.latencyP99Ms)} |`
    );
  };
  const pageOurs = summaryOf(page, 'ours');
  const pagePeer = summaryOf(page, 'peer');
  const floorOurs = summaryOf(floor, 'ours');
  const floorPeer = summaryOf(floor, 'peer');
  const floorBare = summaryOf(floor, 'bare');

  return [
    '## 1. Authenticated request throughput and latency',
    '',
    'Runs alternate between the sides: ours, peer, ours, peer and so on, with the control after the peer in',
    `the floor rounds. Each page run lasts ${page.plan.durationSeconds} s after its own ${page.plan.warmupSeconds} s warm-up run, and each floor run`,
    `lasts ${floor.plan.durationSeconds} s after a ${floor.plan.warmupSeconds} s warm-up.`,
    'Every response of every run, warm-ups included, was checked: a status other than 200, a connection',
    'error or a timeout fails the bench, so the figures count only successful authenticated responses.',
    '',
    `Medians over ${page.plan.rounds} runs per side (latency in ms, ours / peer):`,
    '',
    '| route | ours req/s | peer req/s | ours / peer | p50 | p99 |',
    '|---|---:|---:|---:|---:|---:|',
    medianRow('`GET /bench/page` (authenticated)', page),
    medianRow('`GET /bench/static` (floor)', floor),
    '',
    `The authenticated route keeps ${percent(pageOurs.requestsPerSecond / floorOurs.requestsPerSecond)} of the floor's throughput on our side ` +
      `and ${percent(pagePeer.requestsPerSecond / floorPeer.requestsPerSecond)} on the peer's.`,
    '',
    'Control: in the same floor rounds, workerd served the same JSON body from `bench/worker/bare.ts`, a worker',
    `without Hono or the framework, at ${rate(floorBare.requestsPerSecond)} req/s (p50 ${ms(floorBare.latencyP50Ms)} ms, ` +
      `p99 ${ms(floorBare.latencyP99Ms)} ms).`,
    'The difference between that and our floor, within the noise of single runs, is what Hono and the',
    'framework add to a request that needs no authentication.',
    '',
    'Each run:',
    '',
    '| route | round | side | req/s | p50 ms | p99 ms | responses | statuses | load average after |',
    '|---|---:|---|---:|---:|---:|---:|---|---:|',
    ...runRows,
    '',
    `Reference, \`wrangler dev\` serving the same bundle (one run each, ${wranglerDev.durationSeconds} s after a ${wranglerDev.warmupSeconds} s warm-up):`,
    '',
    '| route | req/s | p50 ms | p99 ms | statuses |',
    '|---|---:|---:|---:|---|',
    `| \`GET /bench/page\` | ${rate(wranglerDev.page.requestsPerSecond)} | ${ms(wranglerDev.page.latencyP50Ms)} | ${ms(wranglerDev.page.latencyP99Ms)} | ${statuses(wranglerDev.page)} |`,
    `| \`GET /bench/static\` | ${rate(wranglerDev.floor.requestsPerSecond)} | ${ms(wranglerDev.floor.latencyP50Ms)} | ${ms(wranglerDev.floor.latencyP99Ms)} | ${statuses(wranglerDev.floor)} |`,
  ].join('\n');
}

function summaryOf(report: ThroughputReport, side: SideName): ThroughputSummary {
  const summary = report.median[side];
  if (summary === undefined) {
    throw new Error(`The ${report.plan.path} runs have no ${side} side.`);
  }
  return summary;
}

function renderSteps(results: BenchResults): string {
  const byName = new Map(results.steps.map((step) => [step.name, step]));
  const floor = byName.get('floor')?.microsecondsPerStep ?? Number.NaN;
  const rows = results.steps.map((step) => {
    const description = STEP_DESCRIPTIONS[step.name as Exclude<StepName, 'empty'>];
    return `| \`${step.name}\` | ${description} | ${micro(step.microsecondsPerStep)} | ${multiple(step.microsecondsPerStep / floor)} |`;
  });

  return [
    '## 2. Verification cost inside workerd',
    '',
    'Inside workerd, `Date.now()` and `performance.now()` do not advance during CPU-only work, so each step is',
    `timed from outside: \`GET /bench/step?name=STEP&n=${results.stepIterations}\` runs the step ${results.stepIterations.toLocaleString('en-US')} times in one request,`,
    'the harness times that request, and subtracts the time of the `empty` step (the same loop with nothing',
    `in it). Requests alternate between the step and \`empty\`, ${results.stepRepeats} of each, and the medians are used.`,
    'The floor is one WebCrypto HMAC-SHA256 verify plus one SHA-256 digest.',
    '',
    '| step | what runs | µs per step | × floor |',
    '|---|---|---:|---:|',
    ...rows,
    '',
    'The loop awaits each step, so for `kv-get` and `kv-read` the figure is the latency of one read of',
    'Miniflare\'s local KV rather than CPU time, and it varies widely between runs. KV in production has a',
    'different latency. `cached-read` and `full` read the record from the isolate\'s memory copy, which',
    '`authenticate()` keeps for `INSTALLATION_MEMORY_CACHE_SECONDS` after a KV read. One step request lasts',
    'far less than that, so at most its first iteration reads KV.',
  ].join('\n');
}

function renderExchanges(results: BenchResults): string {
  const row = (entry: ExchangeRow) =>
    `| ${entry.n.toLocaleString('en-US')} | ${entry.succeeded.toLocaleString('en-US')} | ${failures(entry.failures)} | ` +
    `**${entry.tokenExchanges}** | ${entry.apiCalls.toLocaleString('en-US')} | ${statusCounts(entry.apiStatuses)} | ${Math.round(entry.elapsedMs).toLocaleString('en-US')} |`;
  const header = [
    '| N | calls succeeded | failed calls | token exchanges | API requests at the simulator | API statuses | time, ms |',
    '|---:|---:|---|---:|---:|---|---:|',
  ];

  return [
    '## 3. Token exchanges under concurrency',
    '',
    'Each side installs into its own Bitbucket simulator (`tools/simulator`, started from Node) with the',
    'simulator\'s own `install()`. For each N, one request to `GET /bench/exchanges?n=N` makes N concurrent',
    '`GET /2.0/user` calls, and the simulator\'s `stats()` counts the token exchanges and API requests.',
    '',
    '**Ours**: the calls run inside workerd through `createBitbucketClient(...).getJson(\'/2.0/user\')` with bearer',
    'auth. Before each N the route deletes the installation\'s cached tokens from KV and gives the calls a new,',
    'empty memory cache, so every N starts cold. The target is one exchange per N.',
    '',
    ...header,
    ...results.exchanges.ours.map(row),
    '',
    '**Peer**: ACE\'s HTTP client (`addon.httpClient({clientKey})`, `lib/internal/host-request.js` in ACE 11.5.3)',
    'never requests an access token from Bitbucket. For a Bitbucket app it signs every request with its own',
    'Connect JWT (`iss` = app key, `sub` = clientKey, the qsh of that request), and `asUserByAccountId()`,',
    'its only path to a bearer token, throws for Bitbucket. So the count that applies is one JWT signed and',
    'one store read per call, and zero exchanges:',
    '',
    ...header,
    ...results.exchanges.peer.map(row),
  ].join('\n');
}

function renderBundles(results: BenchResults): string {
  const rows = results.bundles.map(
    (bundle) =>
      `| ${bundle.label} | ${bundle.minify ? 'yes' : 'no'} | ${kib(bundle.bytes)} | ${kib(bundle.gzipBytes)} | ${bundle.wranglerSummary.replace('Total Upload: ', '')} |`,
  );
  return [
    '## 4. Worker bundle size',
    '',
    'Sizes of the JavaScript modules that `wrangler deploy --dry-run --outdir` writes (source maps excluded),',
    'gzip at zlib\'s default level, next to wrangler\'s own "Total Upload" line.',
    '',
    '| entry | minified | KiB | gzip KiB | wrangler\'s "Total Upload" |',
    '|---|---|---:|---:|---|',
    ...rows,
    '',
    'Commands:',
    '',
    ...results.bundles.map((bundle) => `- \`${bundle.command}\``),
  ].join('\n');
}

function renderKv(results: BenchResults): string {
  const rows = results.kv.map(
    (row) =>
      `| \`GET ${row.path}\` | ${row.requests.toLocaleString('en-US')} | ${counts({ ...row.counts })} | ` +
      `**${row.readsPerRequest.toFixed(3)}** | **${row.writesPerRequest.toFixed(3)}** | ${row.listsPerRequest.toFixed(3)} |`,
  );
  return [
    '## 5. KV operations per request',
    '',
    'A second workerd instance serves the same bundle with `BENCH_COUNT_KV=true`, which makes the bench',
    'worker wrap `env.CONNECT_KV` in a counting proxy before the framework sees it. After the installed',
    'payload is posted, the counters are reset and the requests below are counted. The budget for an',
    'authenticated request is at most 1 read and no write. `authenticate()` reads KV only when the isolate',
    'has no memory copy of the installation younger than `INSTALLATION_MEMORY_CACHE_SECONDS`. Requests that',
    'miss the copy together each read KV, so the count also depends on how many arrive before the first',
    `read returns; these requests came over ${results.kv[0]?.connections ?? 'several'} connections to one isolate.`,
    '',
    '| route | requests | operations | reads per request | writes per request | lists per request |',
    '|---|---:|---|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

function renderLimits(): string {
  return [
    '## Limits of these figures',
    '',
    '- The server under test and autocannon share the machine\'s cores, so each side\'s throughput is lower than',
    '  on a machine of its own. Both sides are measured under the same conditions, one after the other.',
    '- Other processes on the machine compete with both sides, and the load averages above show how much.',
    '  Alternating runs and medians spread that competition over both sides, but single runs still vary.',
    '- Miniflare serves the worker from one isolate, and the peer runs in one Node process without a cluster.',
    '- Miniflare\'s KV and ACE\'s SQLite store both run in memory on this machine. In production a KV read goes',
    '  to Cloudflare\'s KV service and an ACE store is usually a network database, with other latencies.',
  ].join('\n');
}

function rate(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function ms(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

/** Step costs below this many microseconds are within the timing noise of the method. */
const MEASURABLE_MICROSECONDS = 0.1;

function micro(value: number): string {
  return value < MEASURABLE_MICROSECONDS ? `< ${MEASURABLE_MICROSECONDS}` : value.toFixed(1);
}

function multiple(ratio: number): string {
  return ratio < 0.1 ? '< 0.1' : ratio.toFixed(1);
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}

function statusCounts(values: Readonly<Record<string, number>>): string {
  const parts = Object.entries(values).map(([status, count]) => `${count.toLocaleString('en-US')} × ${status}`);
  return parts.join(', ') || 'none';
}

function statuses(result: LoadResult): string {
  const parts = Object.entries(result.statusCounts).map(([status, count]) => `${count.toLocaleString('en-US')} × ${status}`);
  if (result.errors > 0) {
    parts.push(`${result.errors} errors`);
  }
  return parts.join(', ') || 'none';
}

function counts(values: Readonly<Record<string, number>>): string {
  const parts = Object.entries(values)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name} ${count.toLocaleString('en-US')}`);
  return parts.join(', ') || 'none';
}

function failures(values: Readonly<Record<string, number>>): string {
  return Object.keys(values).length === 0 ? 'none' : counts(values);
}
