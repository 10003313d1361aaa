import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Unit and integration tests run inside workerd with the bindings from
// wrangler.toml, so KV is the real local implementation.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: {
          APP_BASE_URL: 'https://app.example.com',
          LOG_LEVEL: 'debug',
          // A key for tests only; production keys are Worker secrets.
          CONNECT_ENCRYPTION_KEY: 'test-key:dGVzdC1rZXktZm9yLXdvcmtlcmQtdGVzdHMtb25seSE=',
        },
      },
    }),
  ],
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/attack/**/*.test.ts'],
    // Starts the Bitbucket simulators on loopback in Node before the tests run.
    globalSetup: ['./test/global-setup.ts'],
  },
});
