/**
 * HTTP load through autocannon's programmatic API, with every response
 * status counted. autocannon is loaded from bench/node_modules when first
 * used, because run.ts installs it only after this module is imported.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BENCH_DIR } from './env';

/** The part of autocannon's options that the bench sets. */
interface AutocannonOptions {
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  timeout?: number;
  requests?: Array<{ method?: string; path?: string; setupRequest?: (request: { path: string }) => { path: string } }>;
}

/** The part of autocannon's result that the bench reads. */
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { average: number; p50: number; p99: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}

type Autocannon = (options: AutocannonOptions, callback: (error: Error | null, result: AutocannonResult) => void) => unknown;

/** Seconds without a response after which autocannon counts a timeout. */
const REQUEST_TIMEOUT_SECONDS = 10;

let autocannon: Autocannon | undefined;

function loadAutocannon(): Autocannon {
  autocannon ??= createRequire(join(BENCH_DIR, 'package.json'))('autocannon') as Autocannon;
  return autocannon;
}

export interface LoadOptions {
  readonly url: string;
  readonly path: string;
  /** Tokens sent in turn as the `jwt` query parameter, or none for unauthenticated routes. */
  readonly tokens?: readonly string[];
  readonly connections: number;
  /** Either a duration in seconds or a number of requests bounds the run. */
  readonly durationSeconds?: number;
  readonly amount?: number;
}

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyAverageMs: number;
  readonly total: number;
  readonly durationSeconds: number;
  /** Responses per HTTP status. */
  readonly statusCounts: Readonly<Record<string, number>>;
  /** Connection errors and timeouts, which have no status. */
  readonly errors: number;
  readonly timeouts: number;
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  if ((options.durationSeconds === undefined) === (options.amount === undefined)) {
    throw new Error('runLoad needs exactly one of durationSeconds and amount.');
  }

  const tokens = options.tokens;
  let next = 0;
  const request =
    tokens === undefined || tokens.length === 0
      ? { method: 'GET', path: options.path }
      : {
          method: 'GET',
          path: options.path,
          setupRequest: (current: { path: string }) => {
            const token = tokens[next % tokens.length] as string;
            next += 1;
            return { ...current, path: `${options.path}?jwt=${token}` };
          },
        };

  return new Promise((resolve, reject) => {
    loadAutocannon()(
      {
        url: options.url,
        connections: options.connections,
        timeout: REQUEST_TIMEOUT_SECONDS,
        requests: [request],
        ...(options.durationSeconds === undefined ? {} : { duration: options.durationSeconds }),
        ...(options.amount === undefined ? {} : { amount: options.amount }),
      },
      (error, result) => {
        if (error !== null) {
          reject(error);
          return;
        }
        const statusCounts: Record<string, number> = {};
        for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) {
          statusCounts[status] = Number(count);
        }
        resolve({
          requestsPerSecond: result.requests.average,
          latencyP50Ms: result.latency.p50,
          latencyP99Ms: result.latency.p99,
          latencyAverageMs: result.latency.average,
          total: result.requests.total,
          durationSeconds: result.duration,
          statusCounts,
          errors: result.errors,
          timeouts: result.timeouts,
        });
      },
    );
  });
}

/** Throws unless every request of the run got a 200 response. */
export function assertAllOk(label: string, result: LoadResult): void {
  const other = Object.entries(result.statusCounts).filter(([status]) => status !== '200');
  if (other.length === 0 && result.errors === 0 && result.timeouts === 0 && result.total > 0) {
    return;
  }
  const statuses = Object.entries(result.statusCounts)
    .map(([status, count]) => `${count} x ${status}`)
    .join(', ');
  throw new Error(
    `${label}: every request must get 200, but the run got ${statuses || 'no response'}, ` +
      `${result.errors} connection errors and ${result.timeouts} timeouts. See bench/.work/*.log for the server output.`,
  );
}
