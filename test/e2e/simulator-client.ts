/**
 * Drives the Bitbucket simulator over its loopback control endpoints, as the
 * end-to-end tests run in another process than the global setup that owns it.
 */
import { inject } from 'vitest';
import type { SimulatorStats } from '../../tools/simulator/types';

export type { SimulatorStats };

export const simulatorUrl = (): string => inject('simulatorUrl');
export const appUrl = (): string => inject('appUrl');

async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${simulatorUrl()}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`simulator ${method} ${path} failed with ${response.status}: ${text}`);
  }
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

export const simulator = {
  stats: () => control<SimulatorStats>('GET', '/_sim/stats'),
  install: () => control<{ ok: boolean; status: number | null; kind: string | null; clientKey: string | null }>('POST', '/_sim/install'),
  uninstall: () => control<{ ok: boolean; status: number | null }>('POST', '/_sim/uninstall'),
  webhook: (event: string) =>
    control<{ deliveries: Array<{ status: number | null }> }>('POST', '/_sim/webhook', { event }),
  expireTokens: () => control<{ expired: number }>('POST', '/_sim/expire-tokens'),
  addFailure: (rule: Record<string, unknown>) => control<unknown>('POST', '/_sim/failures', rule),
  clearFailures: () => control<unknown>('DELETE', '/_sim/failures'),
  descriptorReport: () => control<{ ok: boolean; problems: unknown[] }>('GET', '/_sim/descriptor-report'),
  iframeUrl: async (module: string) => (await control<{ url: string }>('GET', `/_sim/iframe-url?module=${module}`)).url,
};

/** Loads a page module the way Bitbucket's iframe does, with a freshly signed URL. */
export async function loadPage(module: string): Promise<Response> {
  return fetch(await simulator.iframeUrl(module));
}
