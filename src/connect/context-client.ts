/**
 * The Bitbucket REST client for the installation of an authenticated request,
 * built from the framework's per-request state. Handlers and webhook
 * handlers call this instead of wiring KV and the allow-list themselves.
 */
import type { Context } from 'hono';
import type { AuthenticatedEnv } from './authenticate';
import { createBitbucketClient, type BitbucketClient, type BitbucketClientOptions } from './bitbucket-client';

export type ContextClientOptions = Omit<BitbucketClientOptions, 'allowList' | 'kv' | 'cipher'>;

export function bitbucketClient(c: Context<AuthenticatedEnv>, options: ContextClientOptions = {}): BitbucketClient {
  const runtime = c.get('connect');
  return createBitbucketClient(c.get('installation'), {
    ...options,
    allowList: runtime.allowList,
    kv: runtime.kv,
    cipher: runtime.cipher(),
  });
}
