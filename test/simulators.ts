/**
 * Names and shapes shared by the Node-side global setup and the tests in
 * workerd. This file imports nothing at run time, so both sides can load it.
 */

/** The app key in the descriptor that the global setup serves. */
export const SIMULATOR_APP_KEY = 'test-app-key';

/**
 * Names of the simulators the global setup starts. Each test file that counts
 * exchanges or injects failures gets its own, because test files run in
 * parallel and a simulator's counters and failure rules are shared.
 */
export const SIMULATOR_NAMES = ['access-tokens', 'bitbucket-client', 'recorded-cases'] as const;
export type SimulatorName = (typeof SIMULATOR_NAMES)[number];

/** A running simulator and the installed payload it sent to the app's lifecycle endpoint. */
export interface ProvidedSimulator {
  readonly url: string;
  readonly installedPayload: Record<string, unknown>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    simulators: Record<SimulatorName, ProvidedSimulator>;
  }
}
