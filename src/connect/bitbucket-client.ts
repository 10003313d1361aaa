/**
 * REST client for the Bitbucket Cloud API on behalf of one installation.
 * https://developer.atlassian.com/cloud/bitbucket/rest/intro/
 *
 * Requests carry `Authorization: Bearer <access token>` from the JWT grant,
 * or, with `auth: 'jwt'`, a Connect JWT minted for that one request. Every
 * URL is checked against the host allow-list before a credential is sent to
 * it, redirects are not followed, and every attempt has a timeout. Pages are
 * read by following `next` exactly as Bitbucket returns it.
 */
import type { AccessTokenProvider, AccessTokenRestriction } from './access-tokens';
import { createAccessTokenProvider } from './access-tokens';
import { assertAllowedUrl, type AllowList } from './allow-list';
import { ConnectError } from './errors';
import { isRecord } from './installation-payload';
import type { Installation } from './installations';
import { currentTimeSeconds, signConnectToken } from './jwt';
import { logEvent } from './log';
import type { SecretCipher } from './secret-cipher';
import { createQueryStringHash } from './qsh';
import { GRANT_TOKEN_LIFETIME_SECONDS } from './token-exchange';
import { backoffDelayMs, resolveRetryPolicy, retryDelayMs, sleep as defaultSleep, type RetryPolicy } from './http-retry';
import { invalidResponseError, readResponseText, responseError, timeoutError, transportError } from './bitbucket-errors';
import { withQuery, type QueryParameters } from './bitbucket-paths';

export { bitbucketPath, encodePathSegment, withQuery, type QueryParameters } from './bitbucket-paths';

/**
 * Time allowed for one attempt of a request, until the response headers arrive.
 * NOTE: the Fetch standard lets the same signal also abort a body that is still
 * being read after the limit. Whether workerd does so is not tested here.
 */
export const BITBUCKET_REQUEST_TIMEOUT_MS = 10_000;

/** Methods that are retried after a 5xx response or a network failure, because repeating them is harmless. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export type BitbucketAuth = 'bearer' | 'jwt';

/** A request body that can be sent again when the request is retried. */
export type ReusableBody = string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams;

export interface BitbucketRequestInit {
  readonly headers?: HeadersInit;
  readonly body?: ReusableBody | null;
  /** Parameters appended to the URL, each name and value encoded with encodeURIComponent. */
  readonly query?: QueryParameters;
}

export interface BitbucketClientOptions {
  /** Origins that requests and `next` links may go to. */
  readonly allowList: AllowList;
  /** `bearer` (the default) uses the JWT grant's access token; `jwt` signs each request. */
  readonly auth?: BitbucketAuth;
  /** Access token source for bearer auth; one is built on `kv` when this is missing. */
  readonly tokens?: AccessTokenProvider;
  readonly kv?: KVNamespace;
  /** Encrypts the access tokens cached in `kv`; required with `kv`. */
  readonly cipher?: SecretCipher;
  /** Scopes and repository the access token is limited to. */
  readonly restriction?: AccessTokenRestriction;
  readonly fetch?: (request: Request) => Promise<Response>;
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Waits between retries; tests pass a function that does not wait. */
  readonly sleep?: (milliseconds: number) => Promise<void>;
  /** Source of backoff jitter, returning values in [0, 1). */
  readonly random?: () => number;
  /** Clock in epoch seconds, for JWT claims. */
  readonly now?: () => number;
}

export interface BitbucketClient {
  readonly installation: Installation;
  /**
   * Sends a request and returns the response when its status is below 400.
   * A 3xx response is returned as it is, because redirects are not followed.
   * Error statuses, timeouts and exhausted retries throw ConnectError.
   */
  request(method: string, pathOrUrl: string, init?: BitbucketRequestInit): Promise<Response>;
  get(pathOrUrl: string, init?: BitbucketRequestInit): Promise<Response>;
  post(pathOrUrl: string, init?: BitbucketRequestInit): Promise<Response>;
  put(pathOrUrl: string, init?: BitbucketRequestInit): Promise<Response>;
  delete(pathOrUrl: string, init?: BitbucketRequestInit): Promise<Response>;
  getJson<T>(pathOrUrl: string, init?: BitbucketRequestInit): Promise<T>;
  /**
   * Sends `json` (when given) as a JSON body and parses the JSON response.
   * An empty response body, as with 204, resolves to undefined; type such
   * calls as `requestJson<void>`.
   */
  requestJson<T>(method: string, pathOrUrl: string, json?: unknown, init?: BitbucketRequestInit): Promise<T>;
  /** Yields the `values` of every page, following each page's `next` URL until there is none. */
  paginate<T>(pathOrUrl: string, init?: BitbucketRequestInit): AsyncGenerator<T, void, undefined>;
}

/** Creates a client for one installation; options are checked here, once. */
export function createBitbucketClient(installation: Installation, options: BitbucketClientOptions): BitbucketClient {
  const { allowList, restriction } = options;
  const auth = options.auth ?? 'bearer';
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const timeoutMs = options.timeoutMs ?? BITBUCKET_REQUEST_TIMEOUT_MS;
  const policy = resolveRetryPolicy(options.retry);
  const wait = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const now = options.now ?? currentTimeSeconds;
  const { clientKey } = installation;

  if (auth !== 'bearer' && auth !== 'jwt') {
    throw new ConnectError('configuration_error', `auth must be "bearer" or "jwt", not ${JSON.stringify(auth)}.`);
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ConnectError('configuration_error', `timeoutMs must be a positive number of milliseconds, not ${timeoutMs}.`);
  }
  const tokens = auth === 'bearer' ? bearerTokenProvider(options, send) : undefined;

  /** Returns the Authorization header value for one attempt and the bearer token it carries, if any. */
  async function authorize(method: string, url: URL): Promise<{ header: string; accessToken?: string }> {
    if (tokens === undefined) {
      const issuedAt = now();
      const jwt = await signConnectToken(
        {
          iss: installation.key,
          sub: clientKey,
          iat: issuedAt,
          exp: issuedAt + GRANT_TOKEN_LIFETIME_SECONDS,
          qsh: await createQueryStringHash(method, url.href),
        },
        installation.sharedSecret,
      );
      return { header: `JWT ${jwt}` };
    }

    const token = await tokens.getAccessToken(installation, restriction);
    return { header: `Bearer ${token.accessToken}`, accessToken: token.accessToken };
  }

  async function sendOnce(method: string, url: URL, init: BitbucketRequestInit, authorization: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('Authorization', authorization);
    if (!headers.has('Accept')) {
      headers.set('Accept', 'application/json');
    }

    const signal = AbortSignal.timeout(timeoutMs);
    const request = new Request(url.href, { method, headers, body: init.body ?? null, redirect: 'manual', signal });
    try {
      return await send(request);
    } catch (error) {
      if (signal.aborted) {
        throw timeoutError(method, url, clientKey, timeoutMs, error);
      }
      throw error;
    }
  }

  async function requestUrl(method: string, url: URL, init: BitbucketRequestInit): Promise<Response> {
    const upperMethod = method.toUpperCase();
    const retrySafe = IDEMPOTENT_METHODS.has(upperMethod);
    let retries = 0;
    let renewedToken = false;

    for (;;) {
      const authorization = await authorize(upperMethod, url);

      let response: Response;
      try {
        response = await sendOnce(upperMethod, url, init, authorization.header);
      } catch (error) {
        if (error instanceof ConnectError) {
          throw error;
        }
        // The connection failed before any response arrived, as with a reset or refused connection.
        if (retrySafe && retries < policy.maxRetries) {
          const delayMs = backoffDelayMs(retries, policy, random);
          logRetry(upperMethod, url, undefined, retries, delayMs);
          retries += 1;
          await wait(delayMs);
          continue;
        }
        throw transportError(upperMethod, url, clientKey, error);
      }

      if (response.status === 401 && tokens !== undefined && authorization.accessToken !== undefined && !renewedToken) {
        // The cached token may have been revoked or expired early: drop it and exchange once more.
        renewedToken = true;
        await discardBody(response);
        await tokens.invalidate(installation, restriction, authorization.accessToken);
        logEvent('info', 'bitbucket_token_renewed', { clientKey, method: upperMethod, path: url.pathname, status: 401 });
        continue;
      }

      const retryable = response.status === 429 || (response.status >= 500 && retrySafe);
      if (retryable && retries < policy.maxRetries) {
        const delayMs = retryDelayMs(response, retries, policy, random, now() * 1000);
        if (delayMs !== undefined) {
          await discardBody(response);
          logRetry(upperMethod, url, response.status, retries, delayMs);
          retries += 1;
          await wait(delayMs);
          continue;
        }
      }

      if (response.status >= 400) {
        throw await responseError(response, { method: upperMethod, url, clientKey, auth, retries });
      }
      return response;
    }
  }

  function logRetry(method: string, url: URL, status: number | undefined, retryIndex: number, delayMs: number): void {
    logEvent('info', 'bitbucket_request_retry', { clientKey, method, path: url.pathname, status, retry: retryIndex + 1, delayMs });
  }

  function resolveUrl(pathOrUrl: string, query: QueryParameters | undefined): URL {
    const target = query === undefined ? pathOrUrl : withQuery(pathOrUrl, query);
    let absolute: string;
    if (target.startsWith('/') && !target.startsWith('//')) {
      absolute = `${installation.baseApiUrl.replace(/\/+$/, '')}${target}`;
    } else if (/^https?:\/\//i.test(target)) {
      absolute = target;
    } else {
      throw new ConnectError(
        'invalid_request',
        `Invalid Bitbucket API path ${JSON.stringify(pathOrUrl.slice(0, 100))}: expected a path starting with /2.0/ or an absolute URL.`,
      );
    }
    return assertAllowedUrl(absolute, allowList, 'The Bitbucket API URL');
  }

  async function request(method: string, pathOrUrl: string, init: BitbucketRequestInit = {}): Promise<Response> {
    return requestUrl(method, resolveUrl(pathOrUrl, init.query), init);
  }

  async function requestJson<T>(method: string, pathOrUrl: string, json?: unknown, init: BitbucketRequestInit = {}): Promise<T> {
    const url = resolveUrl(pathOrUrl, init.query);
    let sent = init;
    if (json !== undefined) {
      const headers = new Headers(init.headers);
      headers.set('Content-Type', 'application/json');
      sent = { ...init, headers, body: JSON.stringify(json) };
    }

    const response = await requestUrl(method, url, sent);
    return (await readJson(response, method.toUpperCase(), url)) as T;
  }

  async function readJson(response: Response, method: string, url: URL): Promise<unknown> {
    const text = await readResponseText(response, method, url, clientKey, timeoutMs);
    if (text === '') {
      return undefined;
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      const contentType = response.headers.get('Content-Type') ?? 'no content type';
      throw invalidResponseError(
        `Bitbucket returned HTTP ${response.status} for ${method} ${url.pathname} with a body that is not JSON (${contentType}).`,
        method,
        url,
        clientKey,
        response.status,
        error,
      );
    }
  }

  async function* paginate<T>(pathOrUrl: string, init: BitbucketRequestInit = {}): AsyncGenerator<T, void, undefined> {
    let url: URL | undefined = resolveUrl(pathOrUrl, init.query);
    const visited = new Set<string>();

    while (url !== undefined) {
      visited.add(url.href);
      const response = await requestUrl('GET', url, { ...(init.headers === undefined ? {} : { headers: init.headers }) });
      const page = await readJson(response, 'GET', url);
      if (!isRecord(page) || !Array.isArray(page.values)) {
        const message = `Bitbucket returned no "values" array for GET ${url.pathname}, so the response is not a paginated list.`;
        throw invalidResponseError(message, 'GET', url, clientKey, response.status);
      }

      for (const value of page.values) {
        yield value as T;
      }

      url = nextPageUrl(page.next, url, response.status, visited);
    }
  }

  /** Checks a page's `next` link, which Bitbucket gives as an absolute URL and which is used without change. */
  function nextPageUrl(next: unknown, current: URL, status: number, visited: ReadonlySet<string>): URL | undefined {
    if (next === undefined || next === null) {
      return undefined;
    }
    if (typeof next !== 'string') {
      const message = `The page of GET ${current.pathname} has a "next" link that is not a string.`;
      throw invalidResponseError(message, 'GET', current, clientKey, status);
    }

    let url: URL;
    try {
      url = assertAllowedUrl(next, allowList, 'The "next" page URL');
    } catch (error) {
      logEvent('warn', 'bitbucket_request_failed', { code: errorCode(error), clientKey, method: 'GET', path: current.pathname, status });
      throw error;
    }

    if (visited.has(url.href)) {
      const message = `The "next" link of GET ${current.pathname} points to a page already read, so pagination stopped.`;
      throw invalidResponseError(message, 'GET', current, clientKey, status);
    }
    return url;
  }

  return {
    installation,
    request,
    get: (pathOrUrl, init) => request('GET', pathOrUrl, init),
    post: (pathOrUrl, init) => request('POST', pathOrUrl, init),
    put: (pathOrUrl, init) => request('PUT', pathOrUrl, init),
    delete: (pathOrUrl, init) => request('DELETE', pathOrUrl, init),
    getJson: <T>(pathOrUrl: string, init?: BitbucketRequestInit) => requestJson<T>('GET', pathOrUrl, undefined, init),
    requestJson,
    paginate,
  };
}

function bearerTokenProvider(
  options: BitbucketClientOptions,
  send: (request: Request) => Promise<Response>,
): AccessTokenProvider {
  if (options.tokens !== undefined) {
    return options.tokens;
  }
  if (options.kv === undefined || options.cipher === undefined) {
    throw new ConnectError('configuration_error', 'Bearer auth needs an access token provider: pass `tokens`, or `kv` and `cipher`.');
  }
  return createAccessTokenProvider({
    kv: options.kv,
    cipher: options.cipher,
    allowList: options.allowList,
    fetch: send,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}

function errorCode(error: unknown): string {
  return error instanceof ConnectError ? error.code : 'unknown';
}

/** Releases a response body that is not read, so its connection can be reused. */
async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Nothing depends on the body of a response that is being retried.
  }
}
