/**
 * The whole Connect flow against `wrangler dev` and the Bitbucket simulator:
 * install, page loads backed by the REST API, webhooks, token expiry,
 * secret rotation, uninstall and install again.
 */
import { describe, expect, it } from 'vitest';
import { appUrl, loadPage, simulator } from './simulator-client';

const PAGE_LOADS = 20;

describe('Connect flow', () => {
  it('serves a descriptor the simulator accepts', async () => {
    const report = await simulator.descriptorReport();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('installs unsigned the first time', async () => {
    const result = await simulator.install();
    expect(result.status).toBe(204);
    expect(result.kind).toBe('first-install');
  });

  it('serves the repository page from the API with one token exchange', async () => {
    const before = await simulator.stats();
    for (let load = 0; load < PAGE_LOADS; load += 1) {
      const response = await loadPage('repo-overview');
      const html = await response.text();
      expect(response.status).toBe(200);
      expect(html).toContain('test-workspace/demo-repo');
      expect(html).toContain('Add pagination to the repository list');
    }
    const after = await simulator.stats();
    expect(after.tokenExchanges - before.tokenExchanges).toBe(1);
    expect(after.apiCalls.byStatus['200']! - (before.apiCalls.byStatus['200'] ?? 0)).toBe(PAGE_LOADS * 3);
  });

  it('shows the last push on the page', async () => {
    const result = await simulator.webhook('repo:push');
    expect(result.deliveries.map((delivery) => delivery.status)).toEqual([204]);
    await expect.poll(async () => (await loadPage('repo-overview')).text()).toContain('repo:push');
  });

  it('shows the last pull request event on the page', async () => {
    const result = await simulator.webhook('pullrequest:created');
    expect(result.deliveries.map((delivery) => delivery.status)).toEqual([204]);
    await expect.poll(async () => (await loadPage('repo-overview')).text()).toContain('pullrequest:created');
  });

  it('exchanges exactly once more after the token expires', async () => {
    await simulator.expireTokens();
    const before = await simulator.stats();
    for (let load = 0; load < 3; load += 1) {
      expect((await loadPage('repo-overview')).status).toBe(200);
    }
    const after = await simulator.stats();
    expect(after.tokenExchanges - before.tokenExchanges).toBe(1);
  });

  it('answers 502 with an explanation when Bitbucket fails', async () => {
    await simulator.addFailure({ path: '/2.0/**', status: 503, count: 100 });
    try {
      const response = await loadPage('repo-overview');
      expect(response.status).toBe(502);
      expect(await response.text()).toContain('Bitbucket could not be reached');
    } finally {
      await simulator.clearFailures();
    }
  });

  it('keeps working after a re-install rotates the secret', async () => {
    const result = await simulator.install();
    expect(result.status).toBe(204);
    expect(result.kind).toBe('reinstall');
    expect((await loadPage('repo-overview')).status).toBe(200);
    expect((await loadPage('configure')).status).toBe(200);
  });

  it('rejects page loads after uninstall', async () => {
    // Bitbucket signs no page for an uninstalled app, so the test replays a URL signed just before.
    const signedBefore = await simulator.iframeUrl('repo-overview');
    const result = await simulator.uninstall();
    expect(result.status).toBe(204);
    const response = await fetch(signedBefore);
    expect(response.status).toBe(401);
  });

  it('accepts an install signed with the old secret', async () => {
    const result = await simulator.install();
    expect(result.status).toBe(204);
    expect(result.kind).toBe('install-after-uninstall');
    const response = await loadPage('repo-overview');
    expect(response.status).toBe(200);
  });

  it('keeps serving after an oversized chunked body', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 6) {
          controller.close();
          return;
        }
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const oversized = await fetch(`${appUrl()}/installed`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(oversized.status).toBe(413);

    const next = await fetch(`${appUrl()}/installed`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(next.status).toBe(400);
  });

  it('rejects a forged first install for an unknown host', async () => {
    const response = await fetch(`${appUrl()}/installed`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        key: 'bitbucket-connect-workers-sample',
        clientKey: 'connection:forged',
        sharedSecret: 'forged-secret-0000000000000000',
        baseUrl: 'https://evil.example.com',
        baseApiUrl: 'https://evil.example.com',
        productType: 'bitbucket',
        principal: { uuid: '{00000000-0000-0000-0000-000000000001}' },
      }),
    });
    expect(response.status).toBe(403);
  });
});
