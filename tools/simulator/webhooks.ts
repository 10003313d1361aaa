// Webhook delivery: POSTs `{event, data}` to every webhook module that
// subscribes to the event (or to `*`), with Bitbucket's headers and a JWT
// signed with the installation's current secret.

import { randomUUID } from 'node:crypto';

import { listModules } from './descriptor';
import { postJsonToApp } from './http';
import { signRequestJwt } from './jwt';
import {
  renderPullRequest,
  renderRepositorySummary,
  renderUser,
} from './representations';
import { DEMO_REPOSITORY_SLUG, type SeedData, type SeedRepository } from './seed';
import type { SimulatorState } from './state';
import { SimulatorError, type WebhookDelivery, type WebhookResult } from './types';

const WEBHOOK_USER_AGENT = 'Bitbucket-Webhooks/2.0';

function demoRepository(seed: SeedData): SeedRepository {
  return seed.repositories.find((repository) => repository.slug === DEMO_REPOSITORY_SLUG) as SeedRepository;
}

function renderPushChange(state: SimulatorState, repository: SeedRepository): Record<string, unknown> {
  const commits = state.seed.commits.get(repository.slug) ?? [];
  const [newest, previous] = commits;
  const branchTarget = (commit: (typeof commits)[number] | undefined) =>
    commit === undefined
      ? null
      : {
          type: 'commit',
          hash: commit.hash,
          message: commit.message,
          date: commit.date,
          author: { type: 'author', raw: `${commit.author.displayName} <${commit.author.email}>`, user: renderUser(state.url, commit.author) },
        };
  const fullName = `${state.seed.workspace.slug}/${repository.slug}`;
  return {
    old: { type: 'branch', name: 'main', target: branchTarget(previous) },
    new: { type: 'branch', name: 'main', target: branchTarget(newest) },
    created: false,
    closed: false,
    forced: false,
    truncated: false,
    commits: newest === undefined ? [] : [branchTarget(newest)],
    links: {
      html: { href: `${state.url}/${fullName}/branches/compare/${newest?.hash ?? ''}..${previous?.hash ?? ''}` },
    },
  };
}

/** Builds the default `data` of an event, in the shape of Bitbucket's payloads for `repo:push` and `pullrequest:*`. */
export function defaultWebhookData(state: SimulatorState, event: string): Record<string, unknown> {
  const { seed } = state;
  const repository = demoRepository(seed);
  const data: Record<string, unknown> = {
    actor: renderUser(state.url, seed.installer),
    repository: renderRepositorySummary(state.url, seed.workspace, repository),
  };
  if (event === 'repo:push') {
    data.push = { changes: [renderPushChange(state, repository)] };
  } else if (event.startsWith('pullrequest:')) {
    const openPullRequest = (seed.pullRequests.get(repository.slug) ?? []).find((pullRequest) => pullRequest.state === 'OPEN');
    if (openPullRequest !== undefined) {
      data.pullrequest = renderPullRequest(state.url, seed, repository, openPullRequest);
    }
  }
  return data;
}

/** Returns the acting user's UUID from webhook data, for the JWT's sub claim. */
function actorUuid(state: SimulatorState, data: object): string {
  const actor = (data as { actor?: { uuid?: unknown } }).actor;
  return typeof actor?.uuid === 'string' ? actor.uuid : state.seed.installer.uuid;
}

export async function sendWebhook(state: SimulatorState, event: string, data?: object): Promise<WebhookResult> {
  if (typeof event !== 'string' || event === '') {
    throw new SimulatorError(400, 'event must be a non-empty string such as "repo:push"');
  }
  const installation = state.currentInstallation();
  if (installation === undefined || !installation.installed || installation.sharedSecret === undefined) {
    throw new SimulatorError(409, 'no app is installed; install it before sending webhooks');
  }
  const sharedSecret = installation.sharedSecret;
  const payloadData = data ?? defaultWebhookData(state, event);

  const subscriptions = listModules(installation.descriptor ?? {}).filter(
    (entry) => entry.kind === 'webhooks' && (entry.module.event === event || entry.module.event === '*'),
  );
  if (subscriptions.length === 0) {
    state.log(`webhook ${event}: no webhook module subscribes to it`);
  }

  const deliveries: WebhookDelivery[] = [];
  for (const { module } of subscriptions) {
    const url = `${state.appBaseUrl}${String(module.url)}`;
    const requestUuid = randomUUID();
    const token = signRequestJwt({
      issuer: installation.clientKey,
      subject: actorUuid(state, payloadData),
      method: 'POST',
      url,
      baseUrl: state.appBaseUrl,
      sharedSecret,
    });
    const response = await postJsonToApp(url, { event, data: payloadData }, {
      Authorization: `JWT ${token}`,
      'User-Agent': WEBHOOK_USER_AGENT,
      'X-Event-Key': event,
      'X-Request-UUID': requestUuid,
      'X-Attempt-Number': '1',
    });
    state.recordWebhookResponse(response.status);
    state.log(`webhook ${event} to ${String(module.url)} -> ${response.status ?? `failed: ${response.error}`}`);

    const delivery: WebhookDelivery = {
      moduleKey: typeof module.key === 'string' ? module.key : null,
      subscribedEvent: String(module.event),
      url,
      requestUuid,
      status: response.status,
    };
    if (response.error !== undefined) {
      delivery.error = response.error;
    }
    deliveries.push(delivery);
  }
  return { event, deliveries };
}
