/**
 * Every Workers KV key the framework writes is built here.
 *
 * Schema (one namespace, binding `CONNECT_KV`):
 *
 * | key                                             | value                          | TTL |
 * |-------------------------------------------------|--------------------------------|-----|
 * | `installation:{clientKey}`                      | `InstallationRecord` JSON      | none |
 * | `cache:{clientKey}:access-token:{restriction}`  | cached OAuth access token JSON | token lifetime minus a margin, at least 60 s |
 * | `cache:{clientKey}:webhook:{deliveryHash}`      | `"1"`, marks a handled delivery | WEBHOOK_DELIVERY_TTL_SECONDS |
 *
 * `{clientKey}` is percent-encoded with encodeURIComponent, so a clientKey
 * such as `connection:123` cannot collide with the `:` separators and one
 * installation's prefix never matches another's. Everything under
 * `cache:{clientKey}:` is derived data that is deleted on uninstall.
 *
 * KV keys are at most 512 bytes: a clientKey is at most
 * MAX_CLIENT_KEY_LENGTH characters (3 bytes each once encoded) and a
 * restriction is a 64-character hash, which keeps every key below that limit.
 */

/** KV rejects `expirationTtl` below 60 seconds. */
export const KV_MIN_EXPIRATION_TTL_SECONDS = 60;

/** Maximum clientKey length accepted, in characters. */
export const MAX_CLIENT_KEY_LENGTH = 128;

const INSTALLATION_PREFIX = 'installation:';
const CACHE_PREFIX = 'cache:';

export function installationKey(clientKey: string): string {
  return `${INSTALLATION_PREFIX}${encodeURIComponent(clientKey)}`;
}

/** Prefix of every installation record, for listing. */
export function installationKeyPrefix(): string {
  return INSTALLATION_PREFIX;
}

/** Prefix of all derived data of one installation, deleted on uninstall. */
export function installationCachePrefix(clientKey: string): string {
  return `${CACHE_PREFIX}${encodeURIComponent(clientKey)}:`;
}

/** Key of a cached access token; `restrictionHash` is a hex digest of the scope/repository restriction. */
export function accessTokenKey(clientKey: string, restrictionHash: string): string {
  return `${installationCachePrefix(clientKey)}access-token:${restrictionHash}`;
}

/** Key marking a webhook delivery as handled; `deliveryHash` is a hex digest of its id. */
export function webhookDeliveryKey(clientKey: string, deliveryHash: string): string {
  return `${installationCachePrefix(clientKey)}webhook:${deliveryHash}`;
}

/** Clamps a wanted TTL to KV's minimum, or returns undefined when the value would outlive its data. */
export function kvExpirationTtl(lifetimeSeconds: number): number | undefined {
  const ttl = Math.floor(lifetimeSeconds);
  return ttl >= KV_MIN_EXPIRATION_TTL_SECONDS ? ttl : undefined;
}
