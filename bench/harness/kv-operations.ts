/**
 * KV operations per request, counted by the bench worker's counting KV
 * wrapper (worker/counting-kv.ts) while it serves a fixed number of requests.
 */
import { KV_COUNTS_PATH, type KvOperationCounts } from '../worker/constants';
import { assertAllOk, runLoad } from './load';

/** Connections for the counted requests, few because only the count matters here. */
const COUNTED_CONNECTIONS = 10;

export interface KvOperationsRow {
  readonly path: string;
  readonly requests: number;
  /** Concurrent connections the requests came over. */
  readonly connections: number;
  readonly counts: KvOperationCounts;
  /** get + getWithMetadata per request. */
  readonly readsPerRequest: number;
  /** put + delete per request. */
  readonly writesPerRequest: number;
  readonly listsPerRequest: number;
}

export async function countKvOperations(
  appUrl: string,
  path: string,
  requests: number,
  tokens?: readonly string[],
): Promise<KvOperationsRow> {
  await readCounts(appUrl, true);
  const result = await runLoad({
    url: appUrl,
    path,
    connections: COUNTED_CONNECTIONS,
    amount: requests,
    ...(tokens === undefined ? {} : { tokens }),
  });
  assertAllOk(`KV count ${path}`, result);
  const counts = await readCounts(appUrl, false);

  return {
    path,
    requests: result.total,
    connections: COUNTED_CONNECTIONS,
    counts,
    readsPerRequest: (counts.get + counts.getWithMetadata) / result.total,
    writesPerRequest: (counts.put + counts.delete) / result.total,
    listsPerRequest: counts.list / result.total,
  };
}

async function readCounts(appUrl: string, reset: boolean): Promise<KvOperationCounts> {
  const response = await fetch(`${appUrl}${KV_COUNTS_PATH}${reset ? '?reset=1' : ''}`);
  if (!response.ok) {
    throw new Error(`Reading the KV counters at ${appUrl} failed with HTTP ${response.status}.`);
  }
  return (await response.json()) as KvOperationCounts;
}
