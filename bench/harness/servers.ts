/**
 * The two servers that run as child processes: the atlassian-connect-express
 * peer, and the bench worker under `wrangler dev` for reference.
 */
import { join } from 'node:path';
import { BENCH_DIR, childEnv, LOOPBACK_HOST, ROOT_DIR } from './env';
import { spawnGroup, waitForHttp, type ChildGroup } from './processes';
import { STATIC_PATH } from '../worker/constants';
import { wranglerDevArguments } from '../../tools/dev-stack';

/** Maximum time until a server responds to its first request, in milliseconds. */
const ACE_READY_TIMEOUT_MS = 30_000;
const WRANGLER_READY_TIMEOUT_MS = 90_000;

export interface ServerProcess {
  readonly url: string;
  readonly group: ChildGroup;
  readonly logFile: string;
}

/**
 * Starts the ACE peer (bench/ace/server.cjs) in production mode on `port`.
 * Production mode keeps ACE from watching the descriptor and from logging
 * each stored installation.
 */
export async function startAce(port: number, logFile: string): Promise<ServerProcess> {
  const url = `http://${LOOPBACK_HOST}:${port}`;
  const group = spawnGroup('atlassian-connect-express', process.execPath, ['server.cjs'], {
    cwd: join(BENCH_DIR, 'ace'),
    env: childEnv({ NODE_ENV: 'production', PORT: String(port) }),
    logFile,
  });
  await startedOrStopped(group, waitForHttp(`${url}${STATIC_PATH}`, group, ACE_READY_TIMEOUT_MS, logFile));
  return { url, group, logFile };
}

/** Starts `wrangler dev` with bench/wrangler.toml, its local KV under `persistTo`. */
export async function startWranglerDev(
  port: number,
  vars: Readonly<Record<string, string>>,
  persistTo: string,
  logFile: string,
): Promise<ServerProcess> {
  const url = `http://${LOOPBACK_HOST}:${port}`;
  const args = wranglerDevArguments({ port, vars, config: 'bench/wrangler.toml', persistTo });
  const group = spawnGroup('wrangler dev', 'npx', args, { cwd: ROOT_DIR, env: childEnv(), logFile });
  await startedOrStopped(group, waitForHttp(`${url}${STATIC_PATH}`, group, WRANGLER_READY_TIMEOUT_MS, logFile));
  return { url, group, logFile };
}

/** Stops the group when it never became ready, so that a failed start leaves nothing running. */
async function startedOrStopped(group: ChildGroup, ready: Promise<void>): Promise<void> {
  try {
    await ready;
  } catch (error) {
    await group.stop();
    throw error;
  }
}
