/**
 * Starts the worker under `wrangler dev` and the Bitbucket simulator on free
 * loopback ports, with a throwaway KV directory, and stops both afterwards,
 * also when a test fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevStack, type DevStack } from '../../tools/dev-stack';

declare module 'vitest' {
  export interface ProvidedContext {
    appUrl: string;
    simulatorUrl: string;
  }
}

let stack: DevStack | undefined;
let persistDirectory: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  persistDirectory = mkdtempSync(join(tmpdir(), 'connect-e2e-'));
  stack = await startDevStack({
    appPort: 0,
    simulatorPort: 0,
    persistTo: persistDirectory,
    log: (line) => {
      if (process.env.E2E_VERBOSE === '1') {
        console.log(line);
      }
    },
    showWorkerOutput: process.env.E2E_VERBOSE === '1',
  });
  project.provide('appUrl', stack.appUrl);
  project.provide('simulatorUrl', stack.simulator.url);
}

export async function teardown(): Promise<void> {
  await stack?.stop();
  if (persistDirectory !== undefined) {
    rmSync(persistDirectory, { recursive: true, force: true });
  }
}
