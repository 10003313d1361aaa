import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Unit and integration tests run inside workerd with the bindings from
// wrangler.toml, so KV is the real local implementation.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: { APP_BASE_URL: 'https://app.example.com', LOG_LEVEL: 'debug' },
      },
    }),
  ],
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Starts the Bitbucket simulators on loopback in Node before the tests run.
    globalSetup: ['./test/global-setup.ts'],
  },
});
