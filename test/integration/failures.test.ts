/**
 * Failures are never silent and never noisy: a KV failure and an outbound
 * failure each produce exactly one warning or error log line, with the error
 * code and ids and without secrets.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  bitbucketClient,
  ConnectError,
  createConnectApp,
  type ConnectBindings,
} from '../../src/connect';
import { SECRET_OLD, installedPayload, send, testBindings, testDescriptor, tokenFor, uniqueClientKey } from '../helpers';
import { captureLogs } from '../log-capture';

const logs = captureLogs();

/** A loopback port with nothing listening, so connections are refused at once. */
const CLOSED_ORIGIN = 'http://127.0.0.1:9';

function failureLines(): Array<Record<string, unknown>> {
  return logs.parsed().filter((line) => line.level === 'warn' || line.level === 'error');
}

/** Wraps KV so that every read fails, as during a KV outage. */
function failingReadsKv(): KVNamespace {
  return new Proxy(env.CONNECT_KV, {
    get(target, property) {
      if (property === 'get') {
        return () => Promise.reject(new Error('KV GET failed: 503 Service Unavailable'));
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('KV failure', () => {
  it('answers 503 and logs exactly one line', async () => {
    const app = createConnectApp<ConnectBindings>({ descriptor: testDescriptor });
    app.get('/page', authenticate(), (c) => c.text('ok'));
    const clientKey = uniqueClientKey();
    const token = await tokenFor('GET', '/page', { clientKey });

    const response = await send(app, 'GET', '/page', { token, bindings: testBindings({ CONNECT_KV: failingReadsKv() }) });
    expect(response.status).toBe(503);

    const lines = failureLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: 'request_rejected', code: 'storage_failed', clientKey, reason: 'kv_read:Error' });
  });
});

describe('outbound failure', () => {
  it('logs exactly one line when Bitbucket cannot be reached', async () => {
    const app = createConnectApp<ConnectBindings>({ descriptor: testDescriptor });
    app.get('/page', authenticate(), async (c) => {
      try {
        await bitbucketClient(c, { retry: { maxRetries: 0 } }).getJson('/2.0/user');
        return c.text('unexpected success');
      } catch (error) {
        return c.text(error instanceof ConnectError ? error.code : 'other', 502);
      }
    });

    const bindings = testBindings({ ALLOWED_BASE_URLS: CLOSED_ORIGIN });
    const clientKey = uniqueClientKey();
    const installed = await send(app, 'POST', '/installed', {
      body: installedPayload(clientKey, { baseUrl: CLOSED_ORIGIN, baseApiUrl: CLOSED_ORIGIN }),
      bindings,
    });
    expect(installed.status).toBe(204);
    logs.lines = [];

    const response = await send(app, 'GET', '/page', { token: await tokenFor('GET', '/page', { clientKey }), bindings });
    expect(response.status).toBe(502);
    expect(await response.text()).toBe('token_exchange_failed');

    const lines = failureLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: 'token_exchange_failed', clientKey });
    expect(logs.lines.join('\n')).not.toContain(SECRET_OLD);
  });
});
