/**
 * Retry timing for outgoing calls: exponential backoff with full jitter, and
 * the `Retry-After` header of RFC 9110 in either of its forms, a number of
 * seconds or an HTTP date.
 *
 * Bitbucket Cloud counts API requests per hour and may respond with 429 without
 * `Retry-After`, so the backoff must work without it and stay bounded.
 */
import { ConnectError } from './errors';

/** How often and how long a failed call is retried. */
export interface RetryPolicy {
  /** Retries after the first attempt; 0 turns retries off. */
  readonly maxRetries: number;
  /** Upper bound of the first backoff delay, doubled for each further retry. */
  readonly baseDelayMs: number;
  /** Cap on one backoff delay computed without `Retry-After`. */
  readonly maxDelayMs: number;
  /** Longest `Retry-After` that is waited for; a longer one fails the call at once. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 3,
  baseDelayMs: 1_000,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000,
};

/** Merges overrides into the default policy and checks every value. */
export function resolveRetryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...overrides };
  if (!Number.isInteger(policy.maxRetries) || policy.maxRetries < 0) {
    throw new ConnectError('configuration_error', `retry.maxRetries must be a non-negative integer, not ${policy.maxRetries}.`);
  }
  for (const field of ['baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    const value = policy[field];
    if (!Number.isFinite(value) || value < 0) {
      throw new ConnectError('configuration_error', `retry.${field} must be a non-negative number of milliseconds, not ${value}.`);
    }
  }
  return policy;
}

/**
 * Computes the delay before retry number `retryIndex` (0 for the first
 * retry) with full jitter: a uniform random value between 0 and
 * min(maxDelayMs, baseDelayMs * 2^retryIndex). `random` returns values in [0, 1).
 */
export function backoffDelayMs(retryIndex: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retryIndex);
  return Math.floor(random() * ceiling);
}

/**
 * Parses a `Retry-After` value into milliseconds from `nowMs`. Returns
 * undefined when the header is missing or malformed; a date in the past gives 0.
 */
export function parseRetryAfterMs(value: string | null, nowMs: number): number | undefined {
  if (value === null) {
    return undefined;
  }

  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1000;
  }

  const date = Date.parse(text);
  if (Number.isNaN(date)) {
    return undefined;
  }
  return Math.max(0, date - nowMs);
}

/**
 * Decides how long to wait before retrying after `response`: its
 * `Retry-After` when present, otherwise the jittered backoff. Returns
 * undefined when `Retry-After` requests more than `maxRetryAfterMs`, so the
 * caller fails instead of holding the request that long.
 */
export function retryDelayMs(
  response: Response,
  retryIndex: number,
  policy: RetryPolicy,
  random: () => number,
  nowMs: number,
): number | undefined {
  const retryAfterMs = parseRetryAfterMs(response.headers.get('Retry-After'), nowMs);
  if (retryAfterMs === undefined) {
    return backoffDelayMs(retryIndex, policy, random);
  }
  return retryAfterMs <= policy.maxRetryAfterMs ? retryAfterMs : undefined;
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
