/**
 * Throughput and latency of one route on each side, in alternating runs
 * (ours, peer, ours, peer, ...), each after its own warm-up run. Every
 * response must be 200: a run with any other status fails the bench.
 */
import { loadavg } from 'node:os';
import { assertAllOk, runLoad, type LoadResult } from './load';

/** Side of a comparison. `bare` is the control: workerd with a worker that uses neither Hono nor the framework. */
export type SideName = 'ours' | 'peer' | 'bare';

export interface Target {
  readonly side: SideName;
  readonly url: string;
}

export interface ThroughputPlan {
  readonly path: string;
  /** Tokens for the `jwt` query parameter, or none for an unauthenticated route. */
  readonly tokens?: readonly string[];
  readonly rounds: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  readonly connections: number;
}

export interface ThroughputRun {
  readonly side: SideName;
  readonly round: number;
  readonly result: LoadResult;
  /** The machine's 1-minute load average right after the run, which shows other work competing with it. */
  readonly loadAverage: number;
}

export interface ThroughputSummary {
  readonly requestsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

export interface ThroughputReport {
  readonly plan: ThroughputPlan;
  readonly runs: readonly ThroughputRun[];
  /** Median of each figure over the runs of each side that took part. */
  readonly median: Readonly<Partial<Record<SideName, ThroughputSummary>>>;
}

export async function measureThroughput(
  targets: readonly Target[],
  plan: ThroughputPlan,
  progress: (line: string) => void,
): Promise<ThroughputReport> {
  const runs: ThroughputRun[] = [];
  for (let round = 1; round <= plan.rounds; round += 1) {
    for (const target of targets) {
      const label = `${target.side} ${plan.path} round ${round}`;
      const load = {
        url: target.url,
        path: plan.path,
        connections: plan.connections,
        ...(plan.tokens === undefined ? {} : { tokens: plan.tokens }),
      };

      assertAllOk(`${label} (warm-up)`, await runLoad({ ...load, durationSeconds: plan.warmupSeconds }));
      const result = await runLoad({ ...load, durationSeconds: plan.durationSeconds });
      assertAllOk(label, result);
      runs.push({ side: target.side, round, result, loadAverage: loadavg()[0] ?? 0 });
      progress(`${label}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.latencyP50Ms} ms, p99 ${result.latencyP99Ms} ms`);
    }
  }

  const medians: Partial<Record<SideName, ThroughputSummary>> = {};
  for (const target of targets) {
    medians[target.side] = summarize(runs, target.side);
  }
  return { plan, runs, median: medians };
}

function summarize(runs: readonly ThroughputRun[], side: SideName): ThroughputSummary {
  const results = runs.filter((run) => run.side === side).map((run) => run.result);
  return {
    requestsPerSecond: median(results.map((result) => result.requestsPerSecond)),
    latencyP50Ms: median(results.map((result) => result.latencyP50Ms)),
    latencyP99Ms: median(results.map((result) => result.latencyP99Ms)),
  };
}

/** Returns the median of a list: the mean of the middle two for an even count, NaN for an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) {
    return Number.NaN;
  }
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
