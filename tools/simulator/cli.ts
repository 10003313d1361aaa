// Command line entry point: runs the simulator until Ctrl-C.
//
//   npx tsx tools/simulator/cli.ts --app http://127.0.0.1:8787 [--port 0] [--token-lifetime 7200]

import { parseArgs } from 'node:util';

import { DEMO_REPOSITORY_SLUG, WORKSPACE_SLUG } from './seed';
import { startSimulator } from './server';
import { DEFAULT_TOKEN_LIFETIME_SECONDS } from './state';

const USAGE = `Usage: npx tsx tools/simulator/cli.ts --app <url> [options]

Plays Bitbucket Cloud toward a Connect app on loopback.

Options:
  --app <url>               base URL of the Connect app at its origin root (required)
  --host <address>          interface to listen on (default 127.0.0.1)
  --port <number>           port to listen on; 0 picks a free port (default 0)
  --token-lifetime <s>      lifetime of issued access tokens in seconds (default 7200)
  --legacy-scope-field      also send the older "scope" field in token responses
  --install                 install the app right after starting
  --help                    show this help
`;

function parsePositiveInteger(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) {
    return fallback;
  }
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new Error(`--${name} must be ${allowZero ? 'a non-negative' : 'a positive'} integer, got ${JSON.stringify(text)}`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      app: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'token-lifetime': { type: 'string' },
      'legacy-scope-field': { type: 'boolean' },
      install: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.app === undefined) {
    throw new Error('--app is missing; pass the Connect app base URL, e.g. --app http://127.0.0.1:8787');
  }

  const log = (line: string): void => {
    process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  };
  const simulator = await startSimulator({
    appBaseUrl: values.app,
    host: values.host,
    port: parsePositiveInteger('port', values.port, 0, true),
    tokenLifetimeSeconds: parsePositiveInteger('token-lifetime', values['token-lifetime'], DEFAULT_TOKEN_LIFETIME_SECONDS),
    legacyScopeField: values['legacy-scope-field'] ?? false,
    log,
  });
  process.stdout.write(`Bitbucket simulator: ${simulator.url}\n`);
  process.stdout.write(`Repository page: ${simulator.url}/${WORKSPACE_SLUG}/${DEMO_REPOSITORY_SLUG}\n`);

  const stop = (): void => {
    void simulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  if (values.install === true) {
    const result = await simulator.install();
    if (!result.ok) {
      log(`install failed: ${result.error ?? 'unknown reason'}`);
      for (const problem of result.problems ?? []) {
        log(`  ${problem.severity} ${problem.path}: ${problem.message}`);
      }
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`simulator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
