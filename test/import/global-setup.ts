/**
 * Installs bench/'s dependencies when they are missing: the ACE tests run
 * atlassian-connect-express from bench/node_modules, the same copy the
 * benchmarks compare against.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_PACKAGE_JSON, REPO_ROOT } from './harness';

export function setup(): void {
  if (existsSync(join(REPO_ROOT, 'bench', 'node_modules', 'atlassian-connect-express', 'package.json'))) {
    return;
  }
  if (!existsSync(BENCH_PACKAGE_JSON)) {
    throw new Error(`${BENCH_PACKAGE_JSON} is missing, so atlassian-connect-express cannot be installed for the import tests.`);
  }
  console.log('Installing bench/ dependencies for the import tests (npm ci --prefix bench)');
  execFileSync('npm', ['ci', '--prefix', 'bench', '--no-audit', '--no-fund'], { cwd: REPO_ROOT, stdio: 'inherit' });
}
