/**
 * Descriptor of the bench worker. The `account` scope lets the exchange route
 * call GET /2.0/user on the simulator.
 */
import type { AppDescriptor } from '../../src/connect';
import { BENCH_APP_KEY, PAGE_PATH } from './constants';

export const benchDescriptor: AppDescriptor = {
  key: BENCH_APP_KEY,
  name: 'Connect bench',
  description: 'Benchmark worker of bitbucket-connect-workers; never install it for real.',
  vendor: { name: 'bitbucket-connect-workers' },
  authentication: { type: 'jwt' },
  lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
  scopes: ['account'],
  contexts: ['account'],
  modules: {
    repoPages: [
      {
        key: 'bench-page',
        name: { value: 'Bench page' },
        url: PAGE_PATH,
        location: 'org.bitbucket.repository.navigation',
      },
    ],
  },
};
