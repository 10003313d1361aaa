// JSON representations of the seeded data in the shapes of Bitbucket Cloud's
// REST API 2.0 and webhook payloads. The simulator's URL is both the web and
// the API base URL, so every link points back at the simulator.

import type { SeedCommit, SeedData, SeedPullRequest, SeedRepository, SeedUser, SeedWorkspace } from './seed';

type Json = Record<string, unknown>;

function link(href: string): { href: string } {
  return { href };
}

export function renderUser(baseUrl: string, user: SeedUser): Json {
  return {
    type: 'user',
    uuid: user.uuid,
    account_id: user.accountId,
    display_name: user.displayName,
    nickname: user.nickname,
    links: {
      self: link(`${baseUrl}/2.0/users/${encodeURIComponent(user.uuid)}`),
      html: link(`${baseUrl}/${encodeURIComponent(user.uuid)}/`),
      avatar: link(`${baseUrl}/account/${user.nickname}/avatar/`),
    },
  };
}

/** Renders the user returned by `GET /2.0/user`, which carries a few more fields. */
export function renderCurrentUser(baseUrl: string, user: SeedUser): Json {
  return {
    ...renderUser(baseUrl, user),
    account_status: 'active',
    created_on: '2025-01-10T08:00:00+00:00',
    is_staff: false,
  };
}

/** Renders the workspace as the `team` principal of a Connect installation. */
export function renderTeamPrincipal(baseUrl: string, workspace: SeedWorkspace): Json {
  return {
    type: 'team',
    uuid: workspace.uuid,
    username: workspace.slug,
    display_name: workspace.name,
    links: {
      self: link(`${baseUrl}/2.0/workspaces/${workspace.slug}`),
      html: link(`${baseUrl}/${workspace.slug}/`),
      avatar: link(`${baseUrl}/workspaces/${workspace.slug}/avatar/`),
    },
  };
}

function renderWorkspace(baseUrl: string, workspace: SeedWorkspace): Json {
  return {
    type: 'workspace',
    uuid: workspace.uuid,
    slug: workspace.slug,
    name: workspace.name,
    links: {
      self: link(`${baseUrl}/2.0/workspaces/${workspace.slug}`),
      html: link(`${baseUrl}/${workspace.slug}/`),
    },
  };
}

/** Renders the short repository object that commits, pull requests and webhooks embed. */
export function renderRepositorySummary(baseUrl: string, workspace: SeedWorkspace, repository: SeedRepository): Json {
  const fullName = `${workspace.slug}/${repository.slug}`;
  return {
    type: 'repository',
    uuid: repository.uuid,
    full_name: fullName,
    name: repository.name,
    links: {
      self: link(`${baseUrl}/2.0/repositories/${fullName}`),
      html: link(`${baseUrl}/${fullName}`),
    },
  };
}

export function renderRepository(baseUrl: string, seed: SeedData, repository: SeedRepository): Json {
  const summary = renderRepositorySummary(baseUrl, seed.workspace, repository);
  const newestCommit = seed.commits.get(repository.slug)?.[0];
  return {
    ...summary,
    slug: repository.slug,
    description: repository.description,
    scm: 'git',
    is_private: true,
    language: repository.language,
    created_on: repository.createdOn,
    updated_on: newestCommit?.date ?? repository.createdOn,
    fork_policy: 'no_public_forks',
    has_issues: false,
    has_wiki: false,
    mainbranch: { type: 'branch', name: 'main' },
    owner: renderTeamPrincipal(baseUrl, seed.workspace),
    workspace: renderWorkspace(baseUrl, seed.workspace),
    project: {
      type: 'project',
      key: 'DEMO',
      name: 'Demo project',
      uuid: `{${seed.workspace.uuid.slice(1, 9)}-0000-5000-8000-000000000001}`,
    },
  };
}

function renderAuthor(baseUrl: string, user: SeedUser): Json {
  return {
    type: 'author',
    raw: `${user.displayName} <${user.email}>`,
    user: renderUser(baseUrl, user),
  };
}

export function renderCommit(baseUrl: string, seed: SeedData, repository: SeedRepository, commit: SeedCommit): Json {
  const fullName = `${seed.workspace.slug}/${repository.slug}`;
  return {
    type: 'commit',
    hash: commit.hash,
    date: commit.date,
    message: commit.message,
    author: renderAuthor(baseUrl, commit.author),
    parents: commit.parentHash === undefined ? [] : [{ type: 'commit', hash: commit.parentHash }],
    repository: renderRepositorySummary(baseUrl, seed.workspace, repository),
    links: {
      self: link(`${baseUrl}/2.0/repositories/${fullName}/commit/${commit.hash}`),
      html: link(`${baseUrl}/${fullName}/commits/${commit.hash}`),
    },
  };
}

export function renderPullRequest(
  baseUrl: string,
  seed: SeedData,
  repository: SeedRepository,
  pullRequest: SeedPullRequest,
): Json {
  const fullName = `${seed.workspace.slug}/${repository.slug}`;
  const repositorySummary = renderRepositorySummary(baseUrl, seed.workspace, repository);
  return {
    type: 'pullrequest',
    id: pullRequest.id,
    title: pullRequest.title,
    description: pullRequest.description,
    state: pullRequest.state,
    author: renderUser(baseUrl, pullRequest.author),
    source: {
      branch: { name: pullRequest.sourceBranch },
      commit: { type: 'commit', hash: pullRequest.sourceCommitHash.slice(0, 12) },
      repository: repositorySummary,
    },
    destination: {
      branch: { name: pullRequest.destinationBranch },
      commit: { type: 'commit', hash: seed.commits.get(repository.slug)?.[0]?.hash.slice(0, 12) ?? null },
      repository: repositorySummary,
    },
    close_source_branch: true,
    comment_count: pullRequest.id % 4,
    task_count: 0,
    created_on: pullRequest.createdOn,
    updated_on: pullRequest.updatedOn,
    links: {
      self: link(`${baseUrl}/2.0/repositories/${fullName}/pullrequests/${pullRequest.id}`),
      html: link(`${baseUrl}/${fullName}/pull-requests/${pullRequest.id}`),
    },
  };
}
