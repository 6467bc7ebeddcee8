import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url));

// Tests import every @backhaul package from its TypeScript source, so `npm test` never runs
// against a stale dist/ and a change in core is seen by the server's tests at once.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@backhaul\/core\/testing$/, replacement: source('core/src/testing/index.ts') },
      { find: /^@backhaul\/([a-z0-9-]+)$/, replacement: source('$1/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
