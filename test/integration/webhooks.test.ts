import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import {
  connectPageHeaders,
  createConnectApp,
  describePushChanges,
  WebhookDispatcher,
  type ConnectBindings,
  type PushChange,
  type WebhookDelivery,
} from '../../src/connect';
import webhookCases from '../fixtures/cases/bug-cases-2.json';
import { nowSeconds, seedInstallation, send, signToken, testDescriptor, tokenFor, uniqueClientKey } from '../helpers';
import { captureLogs } from '../log-capture';

interface WebhookCase {
  id: string;
  input: Record<string, unknown>;
  expected: Record<string, unknown>;
}
function webhookCase(id: string): WebhookCase {
  const found = (webhookCases as unknown as WebhookCase[]).find((entry) => entry.id === id);
  if (found === undefined) {
    throw new Error(`case ${id} missing from fixtures`);
  }
  return found;
}

const logs = captureLogs();

/** An app whose push handler records deliveries and can be made to fail or wait. */
function webhookApp() {
  const deliveries: Array<WebhookDelivery<'repo:push'>> = [];
  const control = { failNext: 0, gate: undefined as Promise<void> | undefined };
  const app = createConnectApp<ConnectBindings>({ descriptor: testDescriptor });
  const dispatcher = new WebhookDispatcher().on('repo:push', async (delivery) => {
    if (control.gate !== undefined) {
      await control.gate;
    }
    if (control.failNext > 0) {
      control.failNext -= 1;
      throw new Error('handler failed');
    }
    deliveries.push(delivery);
  });
  app.post('/webhooks/repo-push', ...dispatcher.route());
  return { app, deliveries, control };
}

async function deliver(app: ReturnType<typeof webhookApp>['app'], clientKey: string, body: unknown, headers: Record<string, string> = {}) {
  const token = await tokenFor('POST', '/webhooks/repo-push', { clientKey });
  return send(app, 'POST', '/webhooks/repo-push', { token, body, headers });
}

describe('webhook envelope', () => {
  it('dispatches {event, data} to the typed handler', async () => {
    const { app, deliveries } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const response = await deliver(app, clientKey, { event: 'repo:push', data: { repository: { uuid: '{r}', full_name: 'w/r' }, push: { changes: [] } } });
    expect(response.status).toBe(204);
    expect(deliveries[0]?.data.repository.full_name).toBe('w/r');
    expect(deliveries[0]?.clientKey).toBe(clientKey);
  });

  it('falls back to the X-Event-Key header with the bare body', async () => {
    const { app, deliveries } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    await deliver(app, clientKey, { repository: { uuid: '{r}', full_name: 'w/bare' }, push: { changes: [] } }, { 'X-Event-Key': 'repo:push' });
    expect(deliveries[0]?.data.repository.full_name).toBe('w/bare');
  });

  it('answers 204 to an event without handlers and logs it at debug level', async () => {
    const { app, deliveries } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const response = await send(app, 'POST', '/webhooks/repo-push', {
      token: await tokenFor('POST', '/webhooks/repo-push', { clientKey }),
      body: { event: 'issue:created', data: {} },
      bindings: { ...(await import('../helpers')).testBindings({ LOG_LEVEL: 'debug' }) },
    });
    expect(response.status).toBe(204);
    expect(deliveries).toHaveLength(0);
    expect(logs.lines.some((line) => line.includes('"webhook_ignored"'))).toBe(true);
  });

  it('rejects a body that names no event', async () => {
    const { app } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const response = await deliver(app, clientKey, { data: {} });
    expect(response.status).toBe(400);
  });

  it('rejects a body that is not JSON', async () => {
    const { app } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const response = await send(app, 'POST', '/webhooks/repo-push', {
      token: await tokenFor('POST', '/webhooks/repo-push', { clientKey }),
      rawBody: '{"event":',
    });
    expect(response.status).toBe(400);
  });

  it('rejects an unsigned webhook', async () => {
    const { app, deliveries } = webhookApp();
    const response = await send(app, 'POST', '/webhooks/repo-push', { body: { event: 'repo:push', data: {} } });
    expect(response.status).toBe(401);
    expect(deliveries).toHaveLength(0);
  });

  it('rejects a webhook whose qsh names another path', async () => {
    const { app } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const token = await tokenFor('POST', '/webhooks/other', { clientKey });
    const response = await send(app, 'POST', '/webhooks/repo-push', { token, body: { event: 'repo:push', data: {} } });
    expect(response.status).toBe(401);
  });
});

describe('C01 webhook retries and deferral', () => {
  const entry = webhookCase('C01');
  const requests = entry.input.requests as Array<{ headers: Record<string, string>; body: unknown }>;
  const headersOf = (index: number) => {
    const { Authorization: _authorization, ...rest } = requests[index]!.headers;
    return rest;
  };

  it('runs the handler once for a repeated delivery', async () => {
    const { app, deliveries } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const first = await deliver(app, clientKey, requests[0]!.body, headersOf(0));
    const second = await deliver(app, clientKey, requests[1]!.body, headersOf(1));
    expect([first.status, second.status]).toEqual([204, 204]);
    expect(deliveries).toHaveLength(entry.expected.sideEffects as number);
  });

  it('runs the handler again when the first attempt failed', async () => {
    const { app, deliveries, control } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    control.failNext = 1;
    const first = await deliver(app, clientKey, requests[0]!.body, headersOf(0));
    const second = await deliver(app, clientKey, requests[1]!.body, headersOf(1));
    expect([first.status, second.status]).toEqual([204, 204]);
    expect(deliveries).toHaveLength(1);
    expect(logs.lines.some((line) => line.includes('"webhook_handler_failed"'))).toBe(true);
  });

  it('answers before a slow handler finishes', async () => {
    const { app, deliveries, control } = webhookApp();
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    let release: () => void = () => undefined;
    control.gate = new Promise<void>((resolve) => {
      release = resolve;
    });

    const executionCtx = createExecutionContext();
    const response = await send(app, 'POST', '/webhooks/repo-push', {
      token: await tokenFor('POST', '/webhooks/repo-push', { clientKey }),
      body: requests[0]!.body,
      headers: { ...headersOf(0), 'X-Request-UUID': crypto.randomUUID() },
      executionCtx,
    });
    expect(response.status).toBe(204);
    expect(deliveries).toHaveLength(0);

    release();
    await waitOnExecutionContext(executionCtx);
    expect(deliveries).toHaveLength(1);
  });
});

describe('push changes', () => {
  it('C02 classifies deleted branches and tags by new === null', () => {
    const entry = webhookCase('C02');
    const data = (entry.input.body as { data: { push: { changes: PushChange[] } } }).data;
    const updates = describePushChanges(data.push.changes).map(({ kind, refType, name, oldHash }) => ({ kind, refType, name, oldHash }));
    expect(updates).toEqual(entry.expected.changes);
  });

  it('C03 marks a truncated commit list as incomplete', () => {
    const entry = webhookCase('C03');
    const data = (entry.input.body as { data: { push: { changes: PushChange[] } } }).data;
    const [update] = describePushChanges(data.push.changes);
    expect(update?.commitsComplete).toBe(false);
    expect(update?.kind).toBe('updated');
  });

  it('treats a missing side as null', () => {
    const changes = [{ new: { type: 'branch', name: 'fresh', target: { hash: 'n' } } }, { old: { type: 'tag', name: 'gone' } }];
    expect(describePushChanges(changes).map((update) => update.kind)).toEqual(['created', 'deleted']);
  });

  it.each([undefined, null, {}, 'changes', [null, 1, { old: null, new: null }]])('ignores malformed changes %j', (changes) => {
    expect(describePushChanges(changes)).toEqual([]);
  });

  it('classifies a new branch as created', () => {
    const [update] = describePushChanges([{ old: null, new: { type: 'branch', name: 'feature', target: { hash: 'abc' } } }]);
    expect(update).toEqual({ kind: 'created', refType: 'branch', name: 'feature', newHash: 'abc', commitsComplete: true });
  });
});

describe('iframe page headers', () => {
  it('C09 allows framing by the product host and drops X-Frame-Options', async () => {
    const app = createConnectApp<ConnectBindings>({ descriptor: testDescriptor });
    app.get('/page', connectPageHeaders(), (c) => {
      c.header('X-Frame-Options', 'SAMEORIGIN');
      return c.html('<p>page</p>');
    });
    const response = await send(app, 'GET', '/page');
    expect(response.headers.get('X-Frame-Options')).toBeNull();
    expect(response.headers.get('Content-Security-Policy')).toBe("frame-ancestors 'self' https://bitbucket.org https://api.bitbucket.org");
    expect(response.headers.get('Referrer-Policy')).toBe('no-referrer');
  });
});

describe('C12 error handling', () => {
  const app = createConnectApp<ConnectBindings>({ descriptor: testDescriptor });
  app.get('/boom', () => {
    throw new Error('secret detail from a library');
  });
  app.get('/hx', () => {
    throw new HTTPException(401, { message: 'bad jwt eyJhbGciOi' });
  });

  it('answers an unknown route with JSON 404', async () => {
    const response = await send(app, 'GET', '/missing');
    expect(response.status).toBe(404);
    expect(response.headers.get('Content-Type')).toBe('application/json');
  });

  it('answers a thrown error with a generic 500', async () => {
    const response = await send(app, 'GET', '/boom');
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain('secret detail');
  });

  it('keeps the status of an HTTPException without its message', async () => {
    const response = await send(app, 'GET', '/hx');
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain('eyJhbGciOi');
  });

  it('never answers 5xx to a junk token', async () => {
    const clientKey = uniqueClientKey();
    await seedInstallation(clientKey);
    const junk = [`${await signToken({ claims: { iss: clientKey, exp: nowSeconds() + 60 } })}.AAAA`, '...', 'e30.e30.', `eyJ.${'A'.repeat(10)}.x`];
    for (const token of junk) {
      const response = await send(app, 'GET', '/config', { token });
      expect(response.status).toBeLessThan(500);
    }
  });
});
