/**
 * Validation of the `installed` lifecycle payload that Bitbucket Cloud POSTs.
 * https://developer.atlassian.com/cloud/bitbucket/app-descriptor/#lifecycle
 *
 * The first install of a clientKey carries no JWT, so every field is checked
 * for type and length, and both base URLs must be on the host allow-list.
 * Unknown fields are kept, because Bitbucket adds fields over time.
 */
import { assertAllowedUrl, type AllowList } from './allow-list';
import { ConnectError, quoteInput } from './errors';
import { MAX_CLIENT_KEY_LENGTH } from './storage-keys';

/** Shortest and longest sharedSecret accepted, in characters. */
export const MIN_SHARED_SECRET_LENGTH = 16;
export const MAX_SHARED_SECRET_LENGTH = 128;

/** Maximum length of the other string fields, in characters. */
const MAX_TEXT_FIELD_LENGTH = 2048;
const MAX_PUBLIC_KEY_LENGTH = 8192;

/**
 * Deepest nesting of objects and arrays accepted in the payload, the body
 * itself being level 1. Bitbucket's payload nests only a few levels, so this
 * leaves a wide margin. The record is stored with JSON.stringify, which ran
 * out of stack between 3,000 and 6,000 levels in workerd under vitest.
 */
export const MAX_PAYLOAD_DEPTH = 32;

/** Printable ASCII without spaces, as in `connection:123` or `ari:cloud:...`. */
const CLIENT_KEY_PATTERN = /^[\x21-\x7e]+$/;
const BRACED_UUID_PATTERN = /^\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}$/;

/** The workspace or user the app is installed into. */
export interface Principal {
  readonly uuid: string;
  readonly type?: string;
  readonly username?: string;
  readonly display_name?: string;
  readonly [field: string]: unknown;
}

/** A validated `installed` payload. */
export interface InstalledPayload {
  readonly key: string;
  readonly clientKey: string;
  readonly sharedSecret: string;
  readonly baseUrl: string;
  readonly baseApiUrl: string;
  readonly productType: 'bitbucket';
  readonly principal: Principal;
  readonly publicKey?: string;
  readonly eventType?: string;
  readonly user?: Readonly<Record<string, unknown>>;
  /** Fields the framework does not use, kept as received. */
  readonly extra: Readonly<Record<string, unknown>>;
}

const KNOWN_FIELDS = new Set([
  'key',
  'clientKey',
  'sharedSecret',
  'baseUrl',
  'baseApiUrl',
  'productType',
  'principal',
  'publicKey',
  'eventType',
  'user',
]);

export interface PayloadRules {
  /** The app key from our descriptor; the payload's `key` must match it. */
  readonly appKey: string;
  readonly allowList: AllowList;
}

/** Validates an `installed` body; throws ConnectError naming the first failed check. */
export function validateInstalledPayload(body: unknown, rules: PayloadRules): InstalledPayload {
  if (!isRecord(body)) {
    throw new ConnectError('invalid_payload', 'The installed payload must be a JSON object.');
  }
  if (exceedsDepth(body, MAX_PAYLOAD_DEPTH)) {
    throw new ConnectError(
      'invalid_payload',
      `The installed payload nests objects and arrays deeper than ${MAX_PAYLOAD_DEPTH} levels.`,
    );
  }

  const key = requireText(body, 'key', MAX_TEXT_FIELD_LENGTH);
  if (key !== rules.appKey) {
    throw new ConnectError('wrong_app_key', `The payload key "${quoteInput(key)}" is not this app's key "${rules.appKey}".`);
  }

  const clientKey = validateClientKey(body.clientKey);

  const sharedSecret = requireText(body, 'sharedSecret', MAX_SHARED_SECRET_LENGTH);
  if (sharedSecret.length < MIN_SHARED_SECRET_LENGTH) {
    throw new ConnectError(
      'invalid_payload',
      `sharedSecret must be at least ${MIN_SHARED_SECRET_LENGTH} characters long.`,
    );
  }

  const productType = requireText(body, 'productType', MAX_TEXT_FIELD_LENGTH);
  if (productType !== 'bitbucket') {
    throw new ConnectError('invalid_payload', `productType must be "bitbucket", not "${quoteInput(productType)}".`);
  }

  const baseUrl = requireText(body, 'baseUrl', MAX_TEXT_FIELD_LENGTH);
  const baseApiUrl = requireText(body, 'baseApiUrl', MAX_TEXT_FIELD_LENGTH);
  const productOrigin = requireBareOrigin(baseUrl, rules.allowList, 'baseUrl');
  const apiOrigin = requireBareOrigin(baseApiUrl, rules.allowList, 'baseApiUrl');

  const principal = validatePrincipal(body.principal);
  const publicKey = optionalText(body, 'publicKey', MAX_PUBLIC_KEY_LENGTH);
  const eventType = optionalText(body, 'eventType', MAX_TEXT_FIELD_LENGTH);

  if (body.user !== undefined && !isRecord(body.user)) {
    throw new ConnectError('invalid_payload', 'user must be a JSON object when present.');
  }

  // Object.fromEntries defines each name as an own property. Assigning with
  // `extra[name] = value` would turn a field named "__proto__" into the
  // object's prototype instead of keeping it.
  const extra: Record<string, unknown> = Object.fromEntries(
    Object.entries(body).filter(([name]) => !KNOWN_FIELDS.has(name)),
  );

  return {
    key,
    clientKey,
    sharedSecret,
    baseUrl: productOrigin,
    baseApiUrl: apiOrigin,
    productType: 'bitbucket',
    principal,
    ...(publicKey === undefined ? {} : { publicKey }),
    ...(eventType === undefined ? {} : { eventType }),
    ...(body.user === undefined ? {} : { user: body.user as Record<string, unknown> }),
    extra,
  };
}

/** Tests a value against the rules of validateClientKey without throwing, for callers with their own error. */
export function isValidClientKey(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value !== '' &&
    value.length <= MAX_CLIENT_KEY_LENGTH &&
    CLIENT_KEY_PATTERN.test(value)
  );
}

/** Checks a clientKey's type, length and characters. */
export function validateClientKey(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConnectError('invalid_payload', 'clientKey is missing or not a string.');
  }
  if (value.length > MAX_CLIENT_KEY_LENGTH) {
    throw new ConnectError('invalid_payload', `clientKey is longer than ${MAX_CLIENT_KEY_LENGTH} characters.`);
  }
  if (!CLIENT_KEY_PATTERN.test(value)) {
    throw new ConnectError('invalid_payload', 'clientKey may contain only printable ASCII characters without spaces.');
  }
  return value;
}

function validatePrincipal(value: unknown): Principal {
  if (!isRecord(value)) {
    throw new ConnectError('invalid_payload', 'principal is missing or not a JSON object.');
  }
  if (typeof value.uuid !== 'string' || !BRACED_UUID_PATTERN.test(value.uuid)) {
    throw new ConnectError('invalid_payload', 'principal.uuid must be a UUID in braces, such as {01234567-89ab-cdef-0123-456789abcdef}.');
  }
  for (const field of ['type', 'username', 'display_name'] as const) {
    const fieldValue = value[field];
    if (fieldValue !== undefined && fieldValue !== null && typeof fieldValue !== 'string') {
      throw new ConnectError('invalid_payload', `principal.${field} must be a string when present.`);
    }
  }
  return value as Principal;
}

function requireText(body: Record<string, unknown>, field: string, maxLength: number): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') {
    throw new ConnectError('invalid_payload', `${field} is missing or not a string.`);
  }
  if (value.length > maxLength) {
    throw new ConnectError('invalid_payload', `${field} is longer than ${maxLength} characters.`);
  }
  return value;
}

function optionalText(body: Record<string, unknown>, field: string, maxLength: number): string | undefined {
  if (body[field] === undefined || body[field] === null) {
    return undefined;
  }
  return requireText(body, field, maxLength);
}

/** Requires an allowed origin with no path, query or fragment, and returns it. */
function requireBareOrigin(url: string, allowList: AllowList, field: string): string {
  const parsed = assertAllowedUrl(url, allowList, field);
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') {
    throw new ConnectError('invalid_payload', `${field} must be an origin such as ${parsed.origin}, with no path or query.`);
  }
  return parsed.origin;
}

/**
 * Reports whether objects and arrays in `value` nest deeper than `maxDepth`.
 * It walks without recursion, so that the check itself cannot exhaust the stack.
 */
function exceedsDepth(value: unknown, maxDepth: number): boolean {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) {
      continue;
    }
    if (next.depth > maxDepth) {
      return true;
    }
    for (const child of Object.values(next.value)) {
      pending.push({ value: child, depth: next.depth + 1 });
    }
  }
  return false;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
