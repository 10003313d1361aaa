/**
 * Token exchanges under concurrency: for each N, one request to a side's
 * exchange route makes N concurrent GET /2.0/user calls against that side's
 * simulator, and the simulator's counters report how many token exchanges
 * and API calls arrived.
 */
import { performance } from 'node:perf_hooks';
import type { Simulator } from '../../tools/simulator/index';
import { EXCHANGES_PATH } from '../worker/constants';

export interface ExchangeRow {
  readonly n: number;
  /** Calls that returned the user. */
  readonly succeeded: number;
  /** Failed calls per error code (ours) or HTTP status (peer). */
  readonly failures: Readonly<Record<string, number>>;
  /** Token endpoint requests that got a 200 response, counted by the simulator. */
  readonly tokenExchanges: number;
  readonly tokenExchangeFailures: number;
  /** API requests the simulator received, and their statuses. */
  readonly apiCalls: number;
  readonly apiStatuses: Readonly<Record<string, number>>;
  /** Time of the whole route request, in milliseconds. */
  readonly elapsedMs: number;
}

export async function measureExchanges(
  appUrl: string,
  clientKey: string,
  simulator: Simulator,
  counts: readonly number[],
): Promise<ExchangeRow[]> {
  const rows: ExchangeRow[] = [];
  for (const n of counts) {
    simulator.resetStats();
    const url = `${appUrl}${EXCHANGES_PATH}?n=${n}&clientKey=${encodeURIComponent(clientKey)}`;
    const started = performance.now();
    const response = await fetch(url);
    const text = await response.text();
    const elapsedMs = performance.now() - started;
    if (!response.ok) {
      throw new Error(`The exchange route at ${appUrl} failed for N = ${n} with HTTP ${response.status}: ${text.slice(0, 300)}`);
    }

    const body = JSON.parse(text) as { succeeded: number; failures: Record<string, number> };
    const stats = simulator.stats();
    rows.push({
      n,
      succeeded: body.succeeded,
      failures: body.failures,
      tokenExchanges: stats.tokenExchanges,
      tokenExchangeFailures: stats.tokenExchangeFailures,
      apiCalls: stats.apiCalls.total,
      apiStatuses: stats.apiCalls.byStatus,
      elapsedMs,
    });
  }
  return rows;
}
