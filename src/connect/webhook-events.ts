/**
 * Types of the Bitbucket Cloud webhook payloads the framework names, and a
 * helper that reads push changes the way Bitbucket defines them.
 * https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/
 */

export interface WebhookRepository {
  uuid: string;
  full_name: string;
  name?: string;
  type?: string;
  [field: string]: unknown;
}

export interface WebhookAccount {
  uuid?: string;
  display_name?: string;
  account_id?: string;
  [field: string]: unknown;
}

export interface PushReference {
  type: 'branch' | 'tag' | string;
  name: string;
  target?: { hash: string; [field: string]: unknown };
}

export interface PushChange {
  old: PushReference | null;
  new: PushReference | null;
  created?: boolean;
  closed?: boolean;
  forced?: boolean;
  truncated?: boolean;
  commits?: Array<{ hash: string; message?: string; [field: string]: unknown }>;
}

export interface RepoPushData {
  repository: WebhookRepository;
  actor?: WebhookAccount;
  push: { changes: PushChange[] };
}

export interface PullRequestData {
  repository: WebhookRepository;
  actor?: WebhookAccount;
  pullrequest: {
    id: number;
    title: string;
    state?: string;
    author?: WebhookAccount;
    [field: string]: unknown;
  };
}

/** Payload types by event key; other events are `unknown` until the app narrows them. */
export interface BitbucketWebhookEvents {
  'repo:push': RepoPushData;
  'pullrequest:created': PullRequestData;
  'pullrequest:updated': PullRequestData;
  'pullrequest:fulfilled': PullRequestData;
  'pullrequest:rejected': PullRequestData;
}

export type WebhookEventKey = keyof BitbucketWebhookEvents | (string & {});

export type WebhookData<E extends string> = E extends keyof BitbucketWebhookEvents ? BitbucketWebhookEvents[E] : unknown;

/** One ref update of a push, classified. */
export interface RefUpdate {
  kind: 'created' | 'deleted' | 'updated';
  refType: string;
  name: string;
  oldHash?: string;
  newHash?: string;
  /**
   * False when Bitbucket truncated the commit list (it sends at most a few
   * commits per change); fetch `/commits?include=new&exclude=old` for all of them.
   */
  commitsComplete: boolean;
}

/**
 * Classifies each change: deleted when `new` is null, created when `old` is
 * null, updated otherwise. The `closed` and `created` flags are not used,
 * because they have been reported inconsistent.
 */
export function describePushChanges(changes: unknown): RefUpdate[] {
  if (!Array.isArray(changes)) {
    return [];
  }

  const updates: RefUpdate[] = [];
  for (const change of changes as Array<Partial<PushChange> | null>) {
    // A missing side counts as null: Bitbucket omits it in some payloads.
    const oldReference = change?.old ?? null;
    const newReference = change?.new ?? null;
    const reference = newReference ?? oldReference;
    if (reference === null || typeof reference.name !== 'string') {
      continue;
    }

    let kind: RefUpdate['kind'] = 'updated';
    if (newReference === null) {
      kind = 'deleted';
    } else if (oldReference === null) {
      kind = 'created';
    }

    const update: RefUpdate = {
      kind,
      refType: typeof reference.type === 'string' ? reference.type : 'unknown',
      name: reference.name,
      commitsComplete: change?.truncated !== true,
    };
    if (typeof oldReference?.target?.hash === 'string') {
      update.oldHash = oldReference.target.hash;
    }
    if (typeof newReference?.target?.hash === 'string') {
      update.newHash = newReference.target.hash;
    }
    updates.push(update);
  }
  return updates;
}
