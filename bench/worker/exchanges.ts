/**
 * The exchange route: N concurrent GET /2.0/user calls through the
 * framework's REST client, on a cold access-token cache. Before the calls it
 * deletes the installation's cached tokens from KV and gives the calls a new,
 * empty memory cache, so every call starts with a miss. The harness counts
 * the token exchanges at the simulator.
 */
import type { Hono } from 'hono';
import {
  createAccessTokenProvider,
  createBitbucketClient,
  isConnectError,
  type ConnectEnv,
} from '../../src/connect';
// Not part of the public API: a new memory cache is what makes each run cold.
import { createAccessTokenMemoryCache } from '../../src/connect/access-tokens';
import { requireCount, requireInstallation, type BenchBindings } from './bindings';
import { EXCHANGES_PATH, MAX_CONCURRENT_CALLS } from './constants';

export function registerExchangeRoute(app: Hono<ConnectEnv<BenchBindings>>): void {
  app.get(EXCHANGES_PATH, async (c) => {
    const n = requireCount(c, 'n', MAX_CONCURRENT_CALLS);
    const installation = await requireInstallation(c);
    const runtime = c.get('connect');

    const deletedCacheEntries = await runtime.installations.deleteCachedData(installation.clientKey);
    const memoryCache = createAccessTokenMemoryCache();
    const cipher = runtime.cipher();

    // One provider and client per call, as N concurrent requests in one
    // isolate would build them, sharing the isolate's memory cache.
    const calls = Array.from({ length: n }, () => {
      const tokens = createAccessTokenProvider({ kv: runtime.kv, cipher, allowList: runtime.allowList, memoryCache });
      const client = createBitbucketClient(installation, { allowList: runtime.allowList, tokens });
      return client.getJson<{ uuid?: unknown }>('/2.0/user');
    });
    const outcomes = await Promise.allSettled(calls);

    const failures: Record<string, number> = {};
    let succeeded = 0;
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled' && typeof outcome.value.uuid === 'string') {
        succeeded += 1;
        continue;
      }
      const code = outcome.status === 'rejected' && isConnectError(outcome.reason) ? outcome.reason.code : 'unexpected';
      failures[code] = (failures[code] ?? 0) + 1;
    }
    return c.json({ n, succeeded, failures, deletedCacheEntries });
  });
}
