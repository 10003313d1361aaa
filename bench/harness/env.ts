/**
 * Paths, loopback address and child-process environment of the bench harness.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const ROOT_DIR = join(BENCH_DIR, '..');

/** Directory of one run's builds, logs and local state. Git ignores it, and each run starts it anew. */
export const WORK_DIR = join(BENCH_DIR, '.work');

export const LOOPBACK_HOST = '127.0.0.1';

/**
 * Keeps wrangler and Miniflare offline: no usage metrics, and no fetch of the
 * Request.cf object from the internet.
 */
export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
} as const;

/** Environment for every child process: this process's, offline, without colour codes. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...OFFLINE_ENV, NO_COLOR: '1', ...extra };
}
