import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'istio/index': 'src/istio/index.ts',
    'grpc/index': 'src/grpc/index.ts',
    'metrics/index': 'src/metrics/index.ts',
    'cli/bin': 'src/cli/bin.ts',
  },
  // One ESM build: `require('sidecarless')` loads it too (Node 20.19+ requires ESM without top-level
  // await), so CommonJS and ESM code share one copy of every class and registry.
  format: ['esm'],
  // @internal members stay out of the published types (and so out of the API report).
  dts: { compilerOptions: { stripInternal: true } },
  // Maps without sourcesContent: the package ships no copy of its sources.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  // src/testing takes its public types from 'sidecarless' (see src/testing/public-types.ts).
  external: ['sidecarless'],
  treeshake: true,
});
