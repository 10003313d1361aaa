/**
 * The sample app's pages, XHR endpoints and webhook handlers, built only on
 * the framework's public API.
 */
import type { Context, Hono } from 'hono';
import {
  authenticate,
  bitbucketClient,
  bitbucketPath,
  connectPageHeaders,
  ConnectError,
  describePushChanges,
  issueSessionToken,
  logEvent,
  WebhookDispatcher,
  withQuery,
  type AuthenticatedEnv,
  type ConnectEnv,
} from '../connect';
import { configurePage, repositoryPage, unavailablePage, type Commit, type PullRequest, type Repository } from './pages';
import { MAX_COMMIT_COUNT, readLastEvent, readSettings, writeLastEvent, writeSettings } from './store';

/** Most open pull requests listed on the repository page. */
const MAX_PULL_REQUESTS = 20;

const BRACED_UUID = /^\{[0-9a-fA-F-]{36}\}$/;
const FULL_NAME = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

export function registerSampleRoutes(app: Hono<ConnectEnv>): void {
  app.get('/repo-overview', connectPageHeaders(), authenticate(), renderRepositoryPage);
  app.get('/configure', connectPageHeaders(), authenticate(), renderConfigurePage);
  app.get('/api/last-event', authenticate({ allowSessionToken: true }), async (c) => {
    const repositoryUuid = requireRepositoryUuid(c.req.query('repoUuid'));
    const lastEvent = await readLastEvent(c.get('connect').kv, c.get('clientKey'), repositoryUuid);
    return c.json({ lastEvent });
  });
  app.post('/api/settings', authenticate({ allowSessionToken: true }), saveSettings);
  app.post('/webhooks', ...createWebhooks().route());
}

async function renderRepositoryPage(c: Context<AuthenticatedEnv>): Promise<Response> {
  const installation = c.get('installation');
  const repositoryUuid = requireRepositoryUuid(c.req.query('repoUuid'));
  const fullName = c.req.query('repoPath') ?? '';
  if (!FULL_NAME.test(fullName)) {
    throw new ConnectError('invalid_request', 'repoPath must be a repository full name such as "workspace/repo".');
  }

  const [workspace = '', slug = ''] = fullName.split('/');
  const repositoryPath = bitbucketPath`/2.0/repositories/${workspace}/${slug}`;
  const kv = c.get('connect').kv;
  const settings = await readSettings(kv, installation.clientKey);
  const client = bitbucketClient(c);

  let repository: Repository;
  let commits: Commit[];
  let pullRequests: PullRequest[];
  try {
    [repository, commits, pullRequests] = await Promise.all([
      client.getJson<Repository>(repositoryPath),
      client
        .getJson<{ values: Commit[] }>(withQuery(`${repositoryPath}/commits`, { pagelen: settings.commitCount }))
        .then((page) => page.values.slice(0, settings.commitCount)),
      collect(client.paginate<PullRequest>(withQuery(`${repositoryPath}/pullrequests`, { state: 'OPEN' })), MAX_PULL_REQUESTS),
    ]);
  } catch (error) {
    if (error instanceof ConnectError && error.status >= 500) {
      c.status(502);
      return c.html(unavailablePage(installation.baseUrl, error.message));
    }
    throw error;
  }

  const lastEvent = await readLastEvent(kv, installation.clientKey, repositoryUuid);
  return c.html(
    repositoryPage({
      hostOrigin: installation.baseUrl,
      sessionToken: await issueSessionToken(c),
      repository,
      commits,
      pullRequests,
      lastEvent,
    }),
  );
}

async function renderConfigurePage(c: Context<AuthenticatedEnv>): Promise<Response> {
  const installation = c.get('installation');
  const settings = await readSettings(c.get('connect').kv, installation.clientKey);
  return c.html(
    configurePage({
      hostOrigin: installation.baseUrl,
      sessionToken: await issueSessionToken(c),
      workspace: installation.principal.username ?? installation.principal.display_name ?? installation.principal.uuid,
      installedAt: installation.installedAt,
      settings,
      maxCommitCount: MAX_COMMIT_COUNT,
    }),
  );
}

async function saveSettings(c: Context<AuthenticatedEnv>): Promise<Response> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ConnectError('invalid_payload', 'The settings body must be JSON such as {"commitCount": 5}.');
  }

  const commitCount = (body as { commitCount?: unknown } | null)?.commitCount;
  if (typeof commitCount !== 'number' || !Number.isInteger(commitCount) || commitCount < 1 || commitCount > MAX_COMMIT_COUNT) {
    throw new ConnectError('invalid_payload', `commitCount must be a whole number from 1 to ${MAX_COMMIT_COUNT}.`);
  }

  await writeSettings(c.get('connect').kv, c.get('clientKey'), { commitCount });
  return c.json({ commitCount });
}

function createWebhooks(): WebhookDispatcher {
  return new WebhookDispatcher()
    .on('repo:push', async (delivery, c) => {
      const updates = describePushChanges(delivery.data.push?.changes ?? []);
      const summary = updates.map((update) => `${update.refType} ${update.name} ${update.kind}`).join(', ') || 'no ref changes';
      await writeLastEvent(c.get('connect').kv, delivery.clientKey, delivery.data.repository.uuid, {
        event: delivery.event,
        receivedAt: new Date().toISOString(),
        ...(delivery.data.actor?.display_name === undefined ? {} : { actor: delivery.data.actor.display_name }),
        summary,
      });
    })
    .on('pullrequest:created', async (delivery, c) => {
      const pullRequest = delivery.data.pullrequest;
      await writeLastEvent(c.get('connect').kv, delivery.clientKey, delivery.data.repository.uuid, {
        event: delivery.event,
        receivedAt: new Date().toISOString(),
        ...(delivery.data.actor?.display_name === undefined ? {} : { actor: delivery.data.actor.display_name }),
        summary: `#${pullRequest.id} ${pullRequest.title}`,
      });
      logEvent('info', 'pull_request_recorded', { clientKey: delivery.clientKey, pullRequestId: pullRequest.id });
    });
}

function requireRepositoryUuid(value: string | undefined): string {
  if (value === undefined || !BRACED_UUID.test(value)) {
    throw new ConnectError('invalid_request', 'repoUuid must be a repository UUID in braces.');
  }
  return value.toLowerCase();
}

async function collect<T>(items: AsyncIterable<T>, limit: number): Promise<T[]> {
  const collected: T[] = [];
  for await (const item of items) {
    collected.push(item);
    if (collected.length >= limit) {
      break;
    }
  }
  return collected;
}
