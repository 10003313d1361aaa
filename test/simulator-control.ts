/**
 * Test-side access to the Bitbucket simulators that test/global-setup.ts
 * starts in Node: their installed payloads, their control endpoints under
 * `/_sim/`, and an installation stored in KV through the real store.
 */
import { env } from 'cloudflare:workers';
import { inject } from 'vitest';
import { parseAllowList, type AllowList } from '../src/connect/allow-list';
import { validateInstalledPayload } from '../src/connect/installation-payload';
import { InstallationStore, recordFromPayload, type Installation } from '../src/connect/installations';
import { testCipher } from './helpers';
import type { FailureRuleInput, SimulatorStats } from '../tools/simulator/types';
import { SIMULATOR_APP_KEY, type SimulatorName } from './simulators';

/** Counters from `GET /_sim/stats`, as far as these tests read them. */
export type { SimulatorStats } from '../tools/simulator/types';
/** A failure rule for `POST /_sim/failures`. */
export type FailureRule = FailureRuleInput;

/** Token lifetime the simulator issues by default, in seconds, as Bitbucket does. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 7200;

export class SimulatorControl {
  constructor(readonly url: string) {}

  async stats(): Promise<SimulatorStats> {
    return (await this.call('GET', '/_sim/stats')) as SimulatorStats;
  }

  async addFailure(rule: FailureRule): Promise<void> {
    await this.call('POST', '/_sim/failures', rule);
  }

  async expireTokens(): Promise<void> {
    await this.call('POST', '/_sim/expire-tokens');
  }

  async setTokenLifetime(seconds: number): Promise<void> {
    await this.call('POST', '/_sim/token-lifetime', { seconds });
  }

  /** Clears failure rules and counters and restores the default token lifetime. */
  async reset(): Promise<void> {
    await this.call('DELETE', '/_sim/failures');
    await this.setTokenLifetime(DEFAULT_TOKEN_LIFETIME_SECONDS);
    await this.call('POST', '/_sim/reset-stats');
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Simulator control request ${method} ${path} failed with HTTP ${response.status}: ${text}`);
    }
    return text === '' ? undefined : JSON.parse(text);
  }
}

/** An installation of the test app, stored in KV, with the allow-list that admits its simulator. */
export interface SimulatorFixture {
  readonly control: SimulatorControl;
  readonly installation: Installation;
  readonly allowList: AllowList;
  readonly store: InstallationStore;
}

/**
 * Stores the simulator's installation in KV with the real payload validation
 * and store, and builds the allow-list from the simulator's origin.
 */
export async function useSimulator(name: SimulatorName): Promise<SimulatorFixture> {
  const provided = inject('simulators')[name];
  const allowList = parseAllowList(new URL(provided.url).origin);
  const payload = validateInstalledPayload(provided.installedPayload, { appKey: SIMULATOR_APP_KEY, allowList });
  const installation: Installation = { ...recordFromPayload(payload, null, new Date()), state: 'installed' };

  const store = new InstallationStore(env.CONNECT_KV, testCipher);
  await store.put(installation);
  return { control: new SimulatorControl(provided.url), installation, allowList, store };
}

/** Creates a fetch function that keeps a copy of every request it sends. */
export function recordingFetch(): { fetch: (request: Request) => Promise<Response>; requests: Request[] } {
  const requests: Request[] = [];
  return {
    requests,
    fetch: (request) => {
      requests.push(request.clone());
      return fetch(request);
    },
  };
}

/** Creates a sleep function that records each requested delay and returns at once. */
export function recordingSleep(): { sleep: (milliseconds: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (milliseconds) => {
      delays.push(milliseconds);
    },
  };
}

/** Waits in real time, for letting a delayed simulator response finish. */
export function pause(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
