/**
 * `npm start`: runs the sample app with the local Bitbucket simulator,
 * installs it, and prints the repository page to open in a browser.
 * Ctrl-C stops both.
 */
import { parseArgs } from 'node:util';
import { startDevStack } from './dev-stack';

const DEFAULT_APP_PORT = 8787;
const DEFAULT_SIMULATOR_PORT = 9090;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: String(DEFAULT_APP_PORT) },
    'simulator-port': { type: 'string', default: String(DEFAULT_SIMULATOR_PORT) },
    quiet: { type: 'boolean', default: false },
  },
});

function step(line: string): void {
  console.log(`[start] ${line}`);
}

async function main(): Promise<void> {
  step('starting the Bitbucket simulator and wrangler dev (the first start takes a few seconds)');
  const stack = await startDevStack({
    appPort: Number(values.port),
    simulatorPort: Number(values['simulator-port']),
    log: (line) => (line.startsWith('worker: ') || line.startsWith('simulator: ') ? !values.quiet && console.log(`  ${line}`) : step(line)),
    showWorkerOutput: !values.quiet,
  });

  let stopping = false;
  const shutdown = async () => {
    if (stopping) {
      return;
    }
    stopping = true;
    step('stopping');
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());

  const report = await stack.simulator.checkDescriptor();
  if (report.problems.length === 0) {
    step('descriptor: no problems found');
  }
  for (const problem of report.problems) {
    step(`descriptor ${problem.severity}: ${problem.path}: ${problem.message}`);
  }

  const install = await stack.simulator.install();
  if (!install.ok) {
    step(`install failed (status ${install.status ?? 'none'}): ${install.error ?? 'see the worker output above'}`);
    await shutdown();
    return;
  }
  step(`installed: clientKey ${install.clientKey} (${install.kind})`);

  const workspace = stack.simulator.data.workspace.slug;
  const repository = stack.simulator.data.repositories[0]?.slug ?? 'demo-repo';
  step(`open the repository page: ${stack.simulator.url}/${workspace}/${repository}`);
  step(`simulator counters: ${stack.simulator.url}/_sim/stats`);
  step('press Ctrl-C to stop');
}

main().catch((error: unknown) => {
  console.error(`[start] failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
