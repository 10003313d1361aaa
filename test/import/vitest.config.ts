import { defineConfig } from 'vitest/config';

// The import tests run in Node against real peers: atlassian-connect-express,
// PostgreSQL, Redis and wrangler dev, each started on a free loopback port by
// the test file that needs it and stopped in its afterAll hook.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/import/**/*.test.ts'],
    globalSetup: ['./test/import/global-setup.ts'],
    // One file at a time: wrangler dev and the database servers share two cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
