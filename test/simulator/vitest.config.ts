import { defineConfig } from 'vitest/config';

// The simulator is a Node program, so its tests run in plain Node rather than
// in the Workers pool that the root vitest.config.ts sets up.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/simulator/**/*.test.ts'],
  },
});
