/**
 * The machine and software versions a run used, for the results page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem, type } from 'node:os';
import { dirname, join } from 'node:path';
import type { MachineInfo } from './report';
import { BENCH_DIR, ROOT_DIR } from './env';

/** Packages whose versions the results name, and the directory each is resolved from. */
const VERSIONED_PACKAGES: ReadonlyArray<readonly [name: string, resolvedFrom: string]> = [
  ['wrangler', ROOT_DIR],
  ['miniflare', ROOT_DIR],
  ['workerd', join(ROOT_DIR, 'node_modules', 'miniflare')],
  ['hono', ROOT_DIR],
  ['atlassian-connect-express', BENCH_DIR],
  ['express', BENCH_DIR],
  ['sequelize', BENCH_DIR],
  ['sqlite3', BENCH_DIR],
  ['autocannon', BENCH_DIR],
  ['atlassian-jwt', ROOT_DIR],
];

export function describeMachine(): MachineInfo {
  const processors = cpus();
  const versions: Record<string, string> = { Node: process.version };
  for (const [name, resolvedFrom] of VERSIONED_PACKAGES) {
    versions[name] = packageVersion(name, resolvedFrom);
  }
  return {
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    cores: processors.length,
    memoryGiB: totalmem() / 1024 ** 3,
    os: `${type()} ${release()}`,
    versions,
  };
}

/**
 * Finds `name` the way Node resolves a bare import from `resolvedFrom`, in
 * node_modules of that directory and of each parent. Reading package.json
 * directly also works for packages whose `exports` hide it, such as hono.
 */
function packageVersion(name: string, resolvedFrom: string): string {
  for (let directory = resolvedFrom; ; directory = dirname(directory)) {
    const manifest = join(directory, 'node_modules', name, 'package.json');
    if (existsSync(manifest)) {
      return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
    }
    if (dirname(directory) === directory) {
      return 'not found';
    }
  }
}
