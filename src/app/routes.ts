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
  readJsonBody,
  WebhookDispatcher,
  withQuery,
  type AuthenticatedEnv,
  type ConnectEnv,
  type WebhookDelivery,
} from '../connect';
import { configurePage, repositoryPage, unavailablePage, type Commit, type PullRequest, type Repository } from './pages';
import { MAX_COMMIT_COUNT, readLastEvent, readSettings, writeLastEvent, writeSettings } from './store';

/** Session scope of the configure page's token, the only one that may change settings. */
const ADMIN_SESSION_SCOPE = 'admin';

/** Most open pull requests listed on the repository page. */
const MAX_PULL_REQUESTS = 20;

/** Largest settings body accepted, in bytes. */
const MAX_SETTINGS_BODY_BYTES = 1024;

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
  // Only the configure page, which Bitbucket shows to workspace admins, issues ADMIN_SESSION_SCOPE tokens.
  app.post('/api/settings', authenticate({ allowSessionToken: true, sessionScope: ADMIN_SESSION_SCOPE }), saveSettings);
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
      sessionToken: await issueSessionToken(c, { scope: ADMIN_SESSION_SCOPE }),
      workspace: installation.principal.username ?? installation.principal.display_name ?? installation.principal.uuid,
      installedAt: installation.installedAt,
      settings,
      maxCommitCount: MAX_COMMIT_COUNT,
    }),
  );
}

async function saveSettings(c: Context<AuthenticatedEnv>): Promise<Response> {
  const body = await readJsonBody(c.req.raw, MAX_SETTINGS_BODY_BYTES);
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
      const updates = describePushChanges(delivery.data?.push?.changes);
      const summary = updates.map((update) => `${update.refType} ${update.name} ${update.kind}`).join(', ') || 'no ref changes';
      await recordEvent(c, delivery, summary);
    })
    .on('pullrequest:created', async (delivery, c) => {
      const pullRequest = delivery.data?.pullrequest;
      await recordEvent(c, delivery, `#${String(pullRequest?.id)} ${String(pullRequest?.title)}`);
    });
}

/** Stores the event as the repository's last one; deliveries without a repository are logged and dropped. */
async function recordEvent(
  c: Context<AuthenticatedEnv>,
  delivery: WebhookDelivery<'repo:push'> | WebhookDelivery<'pullrequest:created'>,
  summary: string,
): Promise<void> {
  const repositoryUuid = delivery.data?.repository?.uuid;
  if (typeof repositoryUuid !== 'string' || repositoryUuid === '') {
    logEvent('warn', 'webhook_without_repository', { clientKey: delivery.clientKey, webhookEvent: delivery.event });
    return;
  }

  const actor = delivery.data.actor?.display_name;
  await writeLastEvent(c.get('connect').kv, delivery.clientKey, repositoryUuid.toLowerCase(), {
    event: delivery.event,
    receivedAt: new Date().toISOString(),
    ...(typeof actor === 'string' ? { actor } : {}),
    summary,
  });
}

function requireRepositoryUuid(value: string | undefined): string {
  if (value === undefined || value === '') {
    throw new ConnectError('invalid_request', 'The repoUuid query parameter is missing.');
  }
  if (!BRACED_UUID.test(value)) {
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
