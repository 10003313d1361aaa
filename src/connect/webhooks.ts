/**
 * Webhook route helper. It verifies the Connect JWT (with qsh) and reads the
 * event from the `{event, data}` envelope, falling back to the `X-Event-Key`
 * header and the bare body. It responds 204 at once and runs the handlers
 * under `executionCtx.waitUntil`, so a slow handler does not delay the response.
 * https://developer.atlassian.com/cloud/bitbucket/modules/webhook/
 *
 * Bitbucket re-sends a delivery that failed or timed out. A delivery id
 * (X-Event-Key + X-Request-UUID, else a hash of the raw body) is remembered
 * in KV for WEBHOOK_DELIVERY_TTL_SECONDS so a repeat runs no handler twice.
 * NOTE: KV is eventually consistent, so two repeats that reach different
 * locations within about a minute can both run.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { authenticate, type AuthenticatedEnv } from './authenticate';
import { ConnectError } from './errors';
import { isRecord } from './installation-payload';
import type { Installation } from './installations';
import { errorName } from './installations';
import { logEvent } from './log';
import { sha256Hex } from './qsh';
import { readBodyText } from './request-body';
import { webhookDeliveryKey } from './storage-keys';
import type { WebhookData, WebhookEventKey } from './webhook-events';

/** How long a handled delivery id is remembered, in seconds. */
export const WEBHOOK_DELIVERY_TTL_SECONDS = 60 * 60;

/** Subscribes a handler to every event. */
export const ANY_EVENT = '*';

export interface WebhookDelivery<E extends string = string> {
  readonly event: E;
  readonly data: WebhookData<E>;
  readonly clientKey: string;
  readonly installation: Installation;
  /** `X-Request-UUID`, when Bitbucket sent one. */
  readonly requestUuid: string | undefined;
  /** `X-Attempt-Number`, 1 for the first delivery. */
  readonly attempt: number;
}

export type WebhookHandler<E extends string = string> = (
  delivery: WebhookDelivery<E>,
  c: Context<AuthenticatedEnv>,
) => void | Promise<void>;

export class WebhookDispatcher {
  private readonly handlers = new Map<string, Array<WebhookHandler<string>>>();

  /** Registers a handler for an event key such as `repo:push`, or ANY_EVENT. */
  on<E extends WebhookEventKey>(event: E, handler: WebhookHandler<E>): this {
    const list = this.handlers.get(event) ?? [];
    list.push(handler as WebhookHandler<string>);
    this.handlers.set(event, list);
    return this;
  }

  /** Route handlers for `app.post(path, ...dispatcher.route())`. */
  route(): [MiddlewareHandler<AuthenticatedEnv>, (c: Context<AuthenticatedEnv>) => Promise<Response>] {
    return [authenticate(), (c) => this.receive(c)];
  }

  private async receive(c: Context<AuthenticatedEnv>): Promise<Response> {
    const rawBody = await readBodyText(c.req.raw);
    const { event, data } = readEnvelope(rawBody, c.req.header('X-Event-Key'));
    const clientKey = c.get('clientKey');

    const handlers = [...(this.handlers.get(event) ?? []), ...(this.handlers.get(ANY_EVENT) ?? [])];
    if (handlers.length === 0) {
      logEvent('debug', 'webhook_ignored', { clientKey, webhookEvent: event });
      return c.body(null, 204);
    }

    const requestUuid = c.req.header('X-Request-UUID');
    const deliveryKey = webhookDeliveryKey(clientKey, await sha256Hex(requestUuid === undefined ? rawBody : `${event}\n${requestUuid}`));
    if (await isDuplicateDelivery(c, deliveryKey)) {
      logEvent('info', 'webhook_duplicate', { clientKey, webhookEvent: event, requestUuid });
      return c.body(null, 204);
    }

    const delivery: WebhookDelivery = {
      event,
      data,
      clientKey,
      installation: c.get('installation'),
      requestUuid,
      attempt: Number(c.req.header('X-Attempt-Number') ?? '1') || 1,
    };
    const work = runHandlers(handlers, delivery, c, deliveryKey);
    if (hasExecutionContext(c)) {
      c.executionCtx.waitUntil(work);
    } else {
      await work;
    }
    return c.body(null, 204);
  }
}

/** Reads `{event, data}`; falls back to the X-Event-Key header with the whole body as data. */
export function readEnvelope(rawBody: string, eventHeader: string | undefined): { event: string; data: unknown } {
  let body: unknown;
  try {
    body = rawBody === '' ? {} : JSON.parse(rawBody);
  } catch {
    throw new ConnectError('invalid_payload', 'The webhook body is not valid JSON.');
  }

  if (isRecord(body) && typeof body.event === 'string' && body.event !== '' && 'data' in body) {
    return { event: body.event, data: body.data };
  }
  if (eventHeader !== undefined && eventHeader !== '') {
    return { event: eventHeader, data: body };
  }
  if (isRecord(body) && typeof body.event === 'string' && body.event !== '') {
    return { event: body.event, data: body };
  }
  throw new ConnectError('invalid_payload', 'The webhook names no event: expected {"event", "data"} or an X-Event-Key header.');
}

async function isDuplicateDelivery(c: Context<AuthenticatedEnv>, deliveryKey: string): Promise<boolean> {
  try {
    return (await c.get('connect').kv.get(deliveryKey)) !== null;
  } catch (error) {
    logEvent('warn', 'webhook_dedupe_read_failed', { clientKey: c.get('clientKey'), reason: errorName(error) });
    return false;
  }
}

async function runHandlers(
  handlers: Array<WebhookHandler<string>>,
  delivery: WebhookDelivery,
  c: Context<AuthenticatedEnv>,
  deliveryKey: string,
): Promise<void> {
  let failed = false;
  for (const handler of handlers) {
    try {
      await handler(delivery, c);
    } catch (error) {
      failed = true;
      const fields = { clientKey: delivery.clientKey, webhookEvent: delivery.event, reason: errorName(error) };
      logEvent('error', 'webhook_handler_failed', error instanceof ConnectError ? { ...fields, code: error.code } : fields);
    }
  }
  if (failed) {
    return;
  }

  try {
    await c.get('connect').kv.put(deliveryKey, '1', { expirationTtl: WEBHOOK_DELIVERY_TTL_SECONDS });
  } catch (error) {
    logEvent('warn', 'webhook_dedupe_write_failed', { clientKey: delivery.clientKey, reason: errorName(error) });
  }
}

function hasExecutionContext(c: Context): boolean {
  try {
    return c.executionCtx !== undefined;
  } catch {
    return false;
  }
}
