import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  // Examples import 'sidecarless' as users do; tests run them against the sources, no build needed.
  resolve: {
    alias: [
      { find: /^sidecarless\/testing$/, replacement: src('testing/index.ts') },
      { find: /^sidecarless\/istio$/, replacement: src('istio/index.ts') },
      { find: /^sidecarless$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // examples/ run as tests through test/examples/*.test.ts.
    pool: 'forks',
    // Two cores: more workers only add contention to handshake-heavy tests.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
