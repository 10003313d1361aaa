/**
 * The sample app's descriptor. Replace `key` with your registered app key:
 * Bitbucket accepts installs only for registered keys.
 */
import type { AppDescriptor } from '../connect';

export const sampleDescriptor: AppDescriptor = {
  key: 'bitbucket-connect-workers-sample',
  name: 'Connect on Workers sample',
  description: 'Shows recent commits, open pull requests and the last webhook event of a repository.',
  vendor: { name: 'bitbucket-connect-workers', url: 'https://github.com/' },
  authentication: { type: 'jwt' },
  lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
  scopes: ['account', 'repository', 'pullrequest'],
  contexts: ['account'],
  modules: {
    repoPages: [
      {
        key: 'repo-overview',
        name: { value: 'Overview on Workers' },
        url: '/repo-overview?repoUuid={repository.uuid}&repoPath={repository.full_name}',
        location: 'org.bitbucket.repository.navigation',
        params: { auiIcon: 'aui-iconfont-doc' },
      },
    ],
    configurePage: {
      key: 'configure',
      name: { value: 'Configure' },
      url: '/configure',
    },
    webhooks: [
      { event: 'repo:push', url: '/webhooks' },
      { event: 'pullrequest:created', url: '/webhooks' },
    ],
  },
};
