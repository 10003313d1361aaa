import { defineConfig } from 'vitest/config';

// End-to-end tests run in Node against `wrangler dev` and the Bitbucket
// simulator, both started on free loopback ports by the global setup.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['./test/e2e/global-setup.ts'],
    // The flow tests share one installation, so files run one after another.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
