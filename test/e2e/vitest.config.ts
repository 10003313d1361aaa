import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/** Test files in the order they share the one installation: the flow first, then the browser. */
const FILE_ORDER = ['flow.test.ts', 'browser.test.ts'];

class FlowOrderSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const index = FILE_ORDER.findIndex((name) => file.moduleId.endsWith(`/${name}`));
      return index === -1 ? FILE_ORDER.length : index;
    };
    return [...files].sort((left, right) => rank(left) - rank(right));
  }
}

// End-to-end tests run in Node against `wrangler dev` and the Bitbucket
// simulator, both started on free loopback ports by the global setup.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['./test/e2e/global-setup.ts'],
    // The files share one installation, so they run one after another in a fixed order.
    fileParallelism: false,
    sequence: { sequencer: FlowOrderSequencer },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
