// Small helpers around node:http requests and responses, and the outbound
// requests the simulator sends to the app.

import type { IncomingMessage, ServerResponse } from 'node:http';

/** Largest request body the simulator reads; larger bodies are rejected with 413. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

/** Time the app gets to respond to a lifecycle callback, webhook or descriptor request. */
export const APP_REQUEST_TIMEOUT_MS = 10_000;

export class BodyTooLargeError extends Error {
  constructor() {
    super(`request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    length += buffer.length;
    if (length > MAX_REQUEST_BODY_BYTES) {
      throw new BodyTooLargeError();
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Returns the media type of a Content-Type header in lower case, without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

export function sendText(
  response: ServerResponse,
  status: number,
  text: string,
  contentType = 'text/plain; charset=utf-8',
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

/** Sends an error in the shape of Bitbucket's REST API: `{type: 'error', error: {message, detail?}}`. */
export function sendApiError(response: ServerResponse, status: number, message: string, detail?: unknown): void {
  const error: Record<string, unknown> = { message };
  if (detail !== undefined) {
    error.detail = detail;
  }
  sendJson(response, status, { type: 'error', error });
}

/** Sends an OAuth 2.0 error response: `{error, error_description}`. */
export function sendOAuthError(response: ServerResponse, status: number, error: string, description: string): void {
  sendJson(response, status, { error, error_description: description }, { 'Cache-Control': 'no-store' });
}

/** Returns the path and query of a URL with the values of credential parameters replaced, for log lines. */
export function redactUrl(pathAndQuery: string): string {
  return pathAndQuery.replace(/([?&](?:jwt|access_token)=)[^&]*/g, '$1[redacted]');
}

export interface AppResponse {
  status: number | null;
  /** Why no status is available: network error or timeout. */
  error?: string;
  /** The app's own error message from a `{error: {message}}` body, cut to 300 characters. */
  appMessage?: string;
}

/** Maximum length of an app error message quoted in simulator output, in characters. */
const MAX_APP_MESSAGE_LENGTH = 300;

/** POSTs JSON to the app and returns its status; never throws for network errors. */
export async function postJsonToApp(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<AppResponse> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(APP_REQUEST_TIMEOUT_MS),
      redirect: 'manual',
    });
    // Reading the body also lets the connection be reused.
    const text = await response.text();
    const appMessage = response.ok ? undefined : appErrorMessage(text);
    return appMessage === undefined ? { status: response.status } : { status: response.status, appMessage };
  } catch (error) {
    return { status: null, error: describeFetchError(error) };
  }
}

function appErrorMessage(text: string): string | undefined {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? message.slice(0, MAX_APP_MESSAGE_LENGTH) : undefined;
  } catch {
    return undefined;
  }
}

export function describeFetchError(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `timed out after ${APP_REQUEST_TIMEOUT_MS} ms`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return cause === undefined ? message : `${message}: ${cause}`;
}
