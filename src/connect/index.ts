/**
 * Public API of the Bitbucket Cloud Connect framework for Cloudflare Workers.
 * Everything here uses Web-standard APIs and Hono only, so it also loads
 * under Node for tools, the simulator and benchmarks.
 */
export { createConnectApp, DESCRIPTOR_PATH, type ConnectAppOptions } from './app';
export { renderError } from './error-response';
export { connectPageHeaders } from './page-headers';
export { bitbucketClient, type ContextClientOptions } from './context-client';
export {
  BITBUCKET_REQUEST_TIMEOUT_MS,
  bitbucketPath,
  createBitbucketClient,
  encodePathSegment,
  withQuery,
  type BitbucketAuth,
  type BitbucketClient,
  type BitbucketClientOptions,
  type BitbucketRequestInit,
  type QueryParameters,
} from './bitbucket-client';
export {
  ACCESS_TOKEN_EXPIRY_MARGIN_SECONDS,
  createAccessTokenProvider,
  type AccessTokenProvider,
  type AccessTokenRestriction,
} from './access-tokens';
export {
  authenticate,
  issueSessionToken,
  type AuthenticateOptions,
  type AuthenticatedEnv,
  type AuthenticatedVariables,
  type SessionTokenOptions,
} from './authenticate';
export { DEFAULT_ALLOWED_BASE_URLS, parseAllowList, assertAllowedUrl, type AllowList } from './allow-list';
export {
  BITBUCKET_SCOPES,
  defineDescriptor,
  findDescriptorProblems,
  listPageModules,
  renderDescriptor,
  resolveAppBaseUrl,
  type AppDescriptor,
  type BitbucketScope,
  type DescriptorModule,
  type DescriptorModules,
  type RenderedDescriptor,
  type WebhookModule,
} from './descriptor';
export { CONNECT_ERROR_STATUS, ConnectError, isConnectError, type ConnectErrorCode } from './errors';
export { validateInstalledPayload, type InstalledPayload, type Principal } from './installation-payload';
export {
  INSTALLATION_MEMORY_CACHE_SECONDS,
  InstallationStore,
  isInstalled,
  recordFromPayload,
  type Installation,
  type InstallationRecord,
  type InstallationState,
} from './installations';
export {
  CLOCK_SKEW_LEEWAY_SECONDS,
  CONNECT_JWT_ALGORITHM,
  MAX_TOKEN_LENGTH,
  decodeUnverified,
  signConnectToken,
  verifyConnectToken,
  type UnverifiedToken,
  type VerifiedClaims,
} from './jwt';
export { logEvent, setLogLevel, type LogLevel } from './log';
export { createCanonicalRequest, createQueryStringHash, createQueryStringHashCandidates, sha256Hex } from './qsh';
export type { ConnectBindings, ConnectEnv, ConnectRuntime } from './runtime';
export { DEFAULT_SESSION_SCOPE, SESSION_TOKEN_LIFETIME_SECONDS, createSessionToken } from './session';
export { MAX_BODY_BYTES, readBodyText, readJsonBody } from './request-body';
export { extractToken, verifyTokenForRecord, type ReceivedRequest, type TokenKind } from './verify-request';
export {
  describePushChanges,
  type BitbucketWebhookEvents,
  type PullRequestData,
  type PushChange,
  type RefUpdate,
  type RepoPushData,
  type WebhookEventKey,
} from './webhook-events';
export { ANY_EVENT, WebhookDispatcher, type WebhookDelivery, type WebhookHandler } from './webhooks';
