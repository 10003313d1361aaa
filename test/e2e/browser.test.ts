/**
 * Loads the simulator's repository page in headless Chromium and checks that
 * the embedded app iframe renders the commits from the REST API and that its
 * session-token XHR works. Needs Debian's `chromium` (/usr/bin/chromium): CI
 * installs it, and a local run without it fails with a message saying so.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulator, simulatorUrl } from './simulator-client';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags that keep Chromium off the network: it runs here with loopback only. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: run "apt-get install chromium" or set CHROMIUM_PATH.`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const stats = await simulator.stats();
  if (stats.installation?.installed !== true) {
    await simulator.install();
  }
});

afterAll(async () => {
  await browser?.close();
});

describe('repository page in a browser', () => {
  it('renders the commits inside the app iframe', async () => {
    const page = await browser!.newPage();
    await page.goto(`${simulatorUrl()}/test-workspace/demo-repo`);
    const frame = page.frameLocator('iframe[data-module-key="repo-overview"], iframe').first();
    await expect.poll(async () => frame.locator('#commits li').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(await frame.locator('#repository-name').textContent()).toBe('test-workspace/demo-repo');
    await page.close();
  });

  it('refreshes the last event with the session token', async () => {
    await simulator.webhook('repo:push');
    const page = await browser!.newPage();
    await page.goto(`${simulatorUrl()}/test-workspace/demo-repo`);
    const frame = page.frameLocator('iframe').first();
    await frame.locator('#refresh').click();
    await expect.poll(async () => frame.locator('#last-event').textContent(), { timeout: 15_000 }).toContain('repo:push');
    await page.close();
  });
});
