/**
 * The framework's one error type. Every failure that can reach a caller has a
 * stable code from a closed list, and each code maps to exactly one HTTP status.
 * A message names the check that failed; it never contains a token, a secret or
 * a hono/jwt error message (those embed the whole token).
 */

/** Stable error codes and the HTTP status of the response for each. */
export const CONNECT_ERROR_STATUS = {
  // 400: the request itself is malformed.
  invalid_request: 400,
  invalid_payload: 400,
  wrong_app_key: 400,
  body_too_large: 413,
  route_not_found: 404,
  method_not_allowed: 405,

  // 401: authentication failed.
  missing_token: 401,
  malformed_token: 401,
  token_too_large: 401,
  conflicting_tokens: 401,
  unsupported_algorithm: 401,
  bad_signature: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  missing_claim: 401,
  invalid_claim: 401,
  qsh_mismatch: 401,
  issuer_mismatch: 401,
  unknown_installation: 401,
  installation_uninstalled: 401,
  session_token_not_allowed: 401,

  // 403: the request names a host outside the allow-list.
  forbidden_host: 403,

  // 500: the deployment is misconfigured (never caused by request input).
  configuration_error: 500,

  // 502/503/504: Bitbucket or storage failed.
  token_exchange_failed: 502,
  bitbucket_error: 502,
  bitbucket_unauthorized: 502,
  bitbucket_not_found: 502,
  bitbucket_rate_limited: 503,
  bitbucket_unavailable: 503,
  bitbucket_timeout: 504,
  storage_failed: 503,
} as const;

export type ConnectErrorCode = keyof typeof CONNECT_ERROR_STATUS;

export type ConnectErrorStatus = (typeof CONNECT_ERROR_STATUS)[ConnectErrorCode];

/** Context kept with an error for logging; none of it is a secret. */
export interface ConnectErrorDetails {
  clientKey?: string;
  /** HTTP status that Bitbucket returned, for outbound failures. */
  upstreamStatus?: number;
  /** Short machine-readable cause for the log line, such as `kv_read` or an error name. */
  reason?: string;
  /** Original error, kept for `cause` but never rendered or logged verbatim. */
  cause?: unknown;
}

export class ConnectError extends Error {
  readonly code: ConnectErrorCode;
  readonly status: ConnectErrorStatus;
  readonly clientKey: string | undefined;
  readonly upstreamStatus: number | undefined;
  readonly reason: string | undefined;

  constructor(code: ConnectErrorCode, message: string, details: ConnectErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ConnectError';
    this.code = code;
    this.status = CONNECT_ERROR_STATUS[code];
    this.clientKey = details.clientKey;
    this.upstreamStatus = details.upstreamStatus;
    this.reason = details.reason;
  }
}

export function isConnectError(value: unknown): value is ConnectError {
  return value instanceof ConnectError;
}

/** JSON body of an error response. */
export interface ConnectErrorBody {
  error: { code: ConnectErrorCode; message: string };
}

export function toErrorBody(error: ConnectError): ConnectErrorBody {
  return { error: { code: error.code, message: error.message } };
}

/** Maximum length of request input quoted in a message or log field, in characters. */
export const MAX_QUOTED_INPUT_LENGTH = 100;

/** Cuts request input for quoting in a message or log line. */
export function quoteInput(text: string, maxLength: number = MAX_QUOTED_INPUT_LENGTH): string {
  return text.length > maxLength ? `${text.slice(0, maxLength)}...` : text;
}
