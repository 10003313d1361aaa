/**
 * Bindings and request-parameter helpers shared by the bench routes.
 */
import type { Context } from 'hono';
import { ConnectError, isInstalled, type ConnectBindings, type ConnectEnv, type Installation } from '../../src/connect';

export interface BenchBindings extends ConnectBindings {
  /** Switch of the counting KV wrapper in counting-kv.ts: "true" wraps CONNECT_KV in it. */
  BENCH_COUNT_KV?: string;
}

export type BenchContext = Context<ConnectEnv<BenchBindings>>;

/** Reads a whole number from 1 to `max` from the query, or rejects the request with 400. */
export function requireCount(c: BenchContext, name: string, max: number): number {
  const text = c.req.query(name) ?? '';
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 1 || value > max) {
    throw new ConnectError('invalid_request', `Query parameter "${name}" must be a whole number from 1 to ${max}.`);
  }
  return value;
}

/** Loads the installed installation named by the `clientKey` query parameter. */
export async function requireInstallation(c: BenchContext): Promise<Installation> {
  const clientKey = c.req.query('clientKey');
  if (clientKey === undefined || clientKey === '') {
    throw new ConnectError('invalid_request', 'Query parameter "clientKey" is missing.');
  }
  const record = await c.get('connect').installations.get(clientKey);
  if (!isInstalled(record)) {
    throw new ConnectError('unknown_installation', 'No installed installation exists for this clientKey; install it first.', {
      clientKey,
    });
  }
  return record;
}
