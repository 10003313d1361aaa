/**
 * Turns failed Bitbucket API calls into ConnectError and writes one log line
 * for each. Bitbucket's error bodies look like
 * `{"type": "error", "error": {"message": "...", "detail": "..."}}`, but a 429
 * response is plain text and a proxy in front of Bitbucket may respond with
 * HTML, so a body is parsed as JSON only when it is JSON.
 */
import { ConnectError, type ConnectErrorCode } from './errors';
import { isRecord } from './installation-payload';
import { errorName } from './installations';
import { logEvent } from './log';

/** Maximum length of a response body quoted in an error message, in characters. */
const MAX_QUOTED_BODY_LENGTH = 300;

/** The failed request, as named in messages and log lines. The query is left out because it may contain search terms. */
export interface FailedRequest {
  readonly method: string;
  readonly url: URL;
  readonly clientKey: string;
  /** How the request was authenticated, which decides the wording of a 401. */
  readonly auth: 'bearer' | 'jwt';
  /** Retries made before this failure. */
  readonly retries: number;
}

/** Builds the error for a response with status 400 or above and logs it. */
export async function responseError(response: Response, request: FailedRequest): Promise<ConnectError> {
  const { method, url, clientKey } = request;
  const status = response.status;
  const code = errorCodeForStatus(status);
  const bitbucketMessage = describeBody(await readTextOrEmpty(response), response.headers.get('Content-Type'));
  const suffix = bitbucketMessage === '' ? '' : `: ${bitbucketMessage}`;

  let message: string;
  if (status === 401 && request.auth === 'bearer') {
    message = `Bitbucket rejected the access token for ${method} ${url.pathname} (HTTP 401) also after a new token exchange${suffix}`;
  } else if (status === 401) {
    message = `Bitbucket rejected the request JWT for ${method} ${url.pathname} (HTTP 401)${suffix}`;
  } else if (request.retries > 0) {
    message = `Bitbucket returned HTTP ${status} for ${method} ${url.pathname} after ${request.retries} retries${suffix}`;
  } else {
    message = `Bitbucket returned HTTP ${status} for ${method} ${url.pathname}${suffix}`;
  }

  logFailure(code, method, url, clientKey, status);
  return new ConnectError(code, message, { clientKey, upstreamStatus: status });
}

export function timeoutError(method: string, url: URL, clientKey: string, timeoutMs: number, cause: unknown): ConnectError {
  logFailure('bitbucket_timeout', method, url, clientKey, undefined);
  return new ConnectError('bitbucket_timeout', `The request ${method} ${url.pathname} to Bitbucket timed out after ${timeoutMs} ms.`, {
    clientKey,
    cause,
  });
}

/** Builds the error for a request that failed before any response, such as a refused connection. */
export function transportError(method: string, url: URL, clientKey: string, cause: unknown): ConnectError {
  logFailure('bitbucket_unavailable', method, url, clientKey, undefined, errorName(cause));
  return new ConnectError('bitbucket_unavailable', `The connection to Bitbucket for ${method} ${url.pathname} failed before a response arrived.`, {
    clientKey,
    cause,
  });
}

/** Builds the error for a successful response whose content is unusable, such as a page without `values`, and logs it. */
export function invalidResponseError(
  message: string,
  method: string,
  url: URL,
  clientKey: string,
  status: number,
  cause?: unknown,
): ConnectError {
  logFailure('bitbucket_error', method, url, clientKey, status);
  return new ConnectError('bitbucket_error', message, { clientKey, upstreamStatus: status, cause });
}

/** Reads a successful response's body; a timeout while reading becomes bitbucket_timeout. */
export async function readResponseText(
  response: Response,
  method: string,
  url: URL,
  clientKey: string,
  timeoutMs: number,
): Promise<string> {
  try {
    return await response.text();
  } catch (error) {
    if (errorName(error) === 'TimeoutError' || errorName(error) === 'AbortError') {
      throw timeoutError(method, url, clientKey, timeoutMs, error);
    }
    logFailure('bitbucket_error', method, url, clientKey, response.status, errorName(error));
    throw new ConnectError('bitbucket_error', `Reading Bitbucket's response to ${method} ${url.pathname} failed.`, {
      clientKey,
      upstreamStatus: response.status,
      cause: error,
    });
  }
}

function errorCodeForStatus(status: number): ConnectErrorCode {
  if (status === 401) {
    return 'bitbucket_unauthorized';
  }
  if (status === 404) {
    return 'bitbucket_not_found';
  }
  if (status === 429) {
    return 'bitbucket_rate_limited';
  }
  return status >= 500 ? 'bitbucket_unavailable' : 'bitbucket_error';
}

/** Extracts Bitbucket's error message and detail, or quotes a plain-text body; HTML is left out. */
function describeBody(text: string, contentType: string | null): string {
  const trimmed = text.trim();
  if (trimmed === '') {
    return '';
  }

  if (trimmed.startsWith('{')) {
    const message = bitbucketErrorMessage(trimmed);
    if (message !== undefined) {
      return message;
    }
  }

  if (contentType?.toLowerCase().includes('html') === true || trimmed.startsWith('<')) {
    return '';
  }
  return excerpt(trimmed);
}

function bitbucketErrorMessage(text: string): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(body) || !isRecord(body.error) || typeof body.error.message !== 'string') {
    return undefined;
  }

  const { message, detail } = body.error;
  return typeof detail === 'string' && detail !== '' ? excerpt(`${message} (${detail})`) : excerpt(message);
}

async function readTextOrEmpty(response: Response): Promise<string> {
  try {
    return await response.text();
  } catch {
    return '';
  }
}

function excerpt(text: string): string {
  return text.length > MAX_QUOTED_BODY_LENGTH ? `${text.slice(0, MAX_QUOTED_BODY_LENGTH)}...` : text;
}

function logFailure(
  code: ConnectErrorCode,
  method: string,
  url: URL,
  clientKey: string,
  status: number | undefined,
  reason?: string,
): void {
  logEvent('warn', 'bitbucket_request_failed', { code, clientKey, method, path: url.pathname, status, reason });
}
