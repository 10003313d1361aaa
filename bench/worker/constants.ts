/**
 * Names and values that the bench worker, the atlassian-connect-express peer
 * and the Node harness must agree on. Plain values only, so that both the
 * worker and Node import this file.
 */

/** App key of both benchmarked apps, also carried by the installed payload. */
export const BENCH_APP_KEY = 'connect-bench';

/** Authenticated page route: Connect JWT verification, then a small JSON body. */
export const PAGE_PATH = '/bench/page';

/** Unauthenticated route with the same JSON shape: the floor of each side. */
export const STATIC_PATH = '/bench/static';

/** Runs one verification step many times in one request. */
export const STEP_PATH = '/bench/step';

/** Makes N concurrent Bitbucket API calls on a cold access-token cache. */
export const EXCHANGES_PATH = '/bench/exchanges';

/** Returns, or with `?reset=1` also zeroes, the KV operation counters. */
export const KV_COUNTS_PATH = '/bench/kv-counts';

/** Binding that turns on the counting KV wrapper when it is "true". */
export const COUNT_KV_BINDING = 'BENCH_COUNT_KV';

/** Steps that the step route runs. `empty` is the loop alone, whose time is subtracted from the others. */
export const STEP_NAMES = [
  'empty',
  'hmac',
  'sha256',
  'floor',
  'decode',
  'verify',
  'qsh',
  'kv-get',
  'kv-read',
  'cached-read',
  'full',
] as const;

export type StepName = (typeof STEP_NAMES)[number];

/** Maximum `n` of the step route, which keeps one request bounded. */
export const MAX_STEP_ITERATIONS = 20_000;

/** Maximum `n` of the exchange route; bench/ace/server.cjs has the same limit. */
export const MAX_CONCURRENT_CALLS = 1_000;

/** KV operation counts of the counting wrapper since the last reset. */
export interface KvOperationCounts {
  get: number;
  getWithMetadata: number;
  put: number;
  delete: number;
  list: number;
}
