// The fixed workspace, users, repositories, commits and pull requests that the
// simulator serves. Identifiers are derived from names, so they are the same
// in every run and tests can assert on them.

import { createHash } from 'node:crypto';

export const WORKSPACE_SLUG = 'test-workspace';
export const DEMO_REPOSITORY_SLUG = 'demo-repo';
export const DEMO_COMMIT_COUNT = 25;
export const DEMO_PULL_REQUEST_COUNT = 12;

// Newest seeded commit; older ones follow at COMMIT_INTERVAL_HOURS steps.
const NEWEST_COMMIT_DATE = Date.parse('2026-01-15T09:00:00Z');
const COMMIT_INTERVAL_HOURS = 5;

export interface SeedUser {
  uuid: string;
  accountId: string;
  displayName: string;
  nickname: string;
  email: string;
}

export interface SeedWorkspace {
  uuid: string;
  slug: string;
  name: string;
}

export interface SeedRepository {
  uuid: string;
  slug: string;
  name: string;
  description: string;
  language: string;
  createdOn: string;
}

export interface SeedCommit {
  hash: string;
  message: string;
  date: string;
  author: SeedUser;
  parentHash?: string;
}

export type PullRequestState = 'OPEN' | 'MERGED' | 'DECLINED';

export interface SeedPullRequest {
  id: number;
  title: string;
  description: string;
  state: PullRequestState;
  author: SeedUser;
  sourceBranch: string;
  sourceCommitHash: string;
  destinationBranch: string;
  createdOn: string;
  updatedOn: string;
}

export interface SeedData {
  workspace: SeedWorkspace;
  /** The account that installs the app and acts in page loads and webhooks. */
  installer: SeedUser;
  users: SeedUser[];
  repositories: SeedRepository[];
  /** Commits per repository slug, newest first. */
  commits: Map<string, SeedCommit[]>;
  /** Pull requests per repository slug, highest id first. */
  pullRequests: Map<string, SeedPullRequest[]>;
}

const COMMIT_MESSAGES = [
  'Add pagination to the repository list',
  'Fix off-by-one error in the diff viewer',
  'Update dependencies',
  'Refactor webhook dispatch into its own module',
  'Document the configuration options',
  'Handle empty pull request descriptions',
  'Retry token exchange once after a 401',
  'Remove unused feature flag',
  'Add tests for the descriptor builder',
  'Rename settings page',
];

const PULL_REQUEST_STATES: readonly PullRequestState[] = [
  'MERGED', 'DECLINED', 'MERGED', 'OPEN', 'MERGED', 'OPEN',
  'OPEN', 'DECLINED', 'OPEN', 'OPEN', 'OPEN', 'OPEN',
];

/** Builds a braced UUID from a name, so that seeded ids are stable across runs. */
export function uuidFromName(name: string): string {
  const hex = createHash('sha1').update(`bitbucket-simulator:${name}`).digest('hex');
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `{${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}}`;
}

function hashFromName(name: string): string {
  return createHash('sha1').update(name).digest('hex');
}

/** Formats a time the way Bitbucket does: ISO 8601 with an explicit +00:00 offset. */
export function formatBitbucketDate(milliseconds: number): string {
  return new Date(milliseconds).toISOString().replace('Z', '+00:00');
}

function createUser(displayName: string, nickname: string): SeedUser {
  return {
    uuid: uuidFromName(`user:${nickname}`),
    accountId: `557058:${uuidFromName(`account:${nickname}`).slice(1, -1)}`,
    displayName,
    nickname,
    email: `${nickname}@example.com`,
  };
}

function createCommits(repositorySlug: string, count: number, authors: SeedUser[]): SeedCommit[] {
  const hashes = Array.from({ length: count }, (_, index) => hashFromName(`${repositorySlug}:commit:${index}`));
  return hashes.map((hash, index) => ({
    hash,
    message: `${COMMIT_MESSAGES[index % COMMIT_MESSAGES.length]}\n`,
    date: formatBitbucketDate(NEWEST_COMMIT_DATE - index * COMMIT_INTERVAL_HOURS * 3_600_000),
    author: authors[index % authors.length] as SeedUser,
    parentHash: hashes[index + 1],
  }));
}

function createPullRequests(commits: SeedCommit[], authors: SeedUser[]): SeedPullRequest[] {
  const pullRequests: SeedPullRequest[] = [];
  for (let id = DEMO_PULL_REQUEST_COUNT; id >= 1; id -= 1) {
    const commit = commits[(DEMO_PULL_REQUEST_COUNT - id) % commits.length] as SeedCommit;
    const created = NEWEST_COMMIT_DATE - (DEMO_PULL_REQUEST_COUNT - id + 1) * 86_400_000;
    pullRequests.push({
      id,
      title: `${COMMIT_MESSAGES[id % COMMIT_MESSAGES.length]} (#${id})`,
      description: `Pull request ${id} of the seeded demo repository.`,
      state: PULL_REQUEST_STATES[id - 1] ?? 'OPEN',
      author: authors[id % authors.length] as SeedUser,
      sourceBranch: `feature/change-${id}`,
      sourceCommitHash: commit.hash,
      destinationBranch: 'main',
      createdOn: formatBitbucketDate(created),
      updatedOn: formatBitbucketDate(created + 7_200_000),
    });
  }
  return pullRequests;
}

/** Creates the seeded workspace `test-workspace` with `demo-repo` and two smaller repositories. */
export function createSeedData(): SeedData {
  const installer = createUser('Alex Admin', 'alex-admin');
  const users = [installer, createUser('Sam Reviewer', 'sam-reviewer'), createUser('Jo Developer', 'jo-developer')];
  const workspace = { uuid: uuidFromName(`workspace:${WORKSPACE_SLUG}`), slug: WORKSPACE_SLUG, name: 'Test Workspace' };

  const repositories: SeedRepository[] = [
    ['demo-repo', 'Demo repository with commits and pull requests', 'typescript'],
    ['api-service', 'Backend service without history', 'go'],
    ['web-frontend', 'Frontend without history', 'javascript'],
  ].map(([slug, description, language], index) => ({
    uuid: uuidFromName(`repository:${WORKSPACE_SLUG}/${slug}`),
    slug: slug as string,
    name: slug as string,
    description: description as string,
    language: language as string,
    createdOn: formatBitbucketDate(Date.parse('2025-06-01T12:00:00Z') + index * 86_400_000),
  }));

  const demoCommits = createCommits(DEMO_REPOSITORY_SLUG, DEMO_COMMIT_COUNT, users);
  const commits = new Map<string, SeedCommit[]>(repositories.map((repository) => [repository.slug, []]));
  commits.set(DEMO_REPOSITORY_SLUG, demoCommits);
  const pullRequests = new Map<string, SeedPullRequest[]>(repositories.map((repository) => [repository.slug, []]));
  pullRequests.set(DEMO_REPOSITORY_SLUG, createPullRequests(demoCommits, users));

  return { workspace, installer, users, repositories, commits, pullRequests };
}
