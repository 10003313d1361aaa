/**
 * Installs bench/'s dependencies when they are missing: the ACE tests run
 * atlassian-connect-express from bench/node_modules, the same copy the
 * benchmarks compare against, with its SQLite driver (sqlite3, a native
 * module built on install).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_PACKAGE_JSON, REPO_ROOT } from './harness';

export function setup(): void {
  if (!existsSync(join(REPO_ROOT, 'bench', 'node_modules', 'atlassian-connect-express', 'package.json'))) {
    if (!existsSync(BENCH_PACKAGE_JSON)) {
      throw new Error(`${BENCH_PACKAGE_JSON} is missing, so atlassian-connect-express cannot be installed for the import tests.`);
    }
    console.log('Installing bench/ dependencies for the import tests (npm ci --prefix bench)');
    execFileSync('npm', ['ci', '--prefix', 'bench', '--no-audit', '--no-fund'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }

  try {
    execFileSync(process.execPath, ['-e', `require('node:module').createRequire(${JSON.stringify(BENCH_PACKAGE_JSON)})('sqlite3')`], {
      stdio: 'pipe',
    });
  } catch {
    // npm ci deletes and rebuilds the native module, so a concurrent install (npm run bench does one) leaves it missing for a while.
    throw new Error(
      'bench/node_modules/sqlite3 cannot be loaded: its native module is missing or an npm ci --prefix bench is still running. ' +
        'Wait for it, or run npm ci --prefix bench, then run the tests again.',
    );
  }
}
