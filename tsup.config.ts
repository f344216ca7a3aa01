import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'istio/index': 'src/istio/index.ts',
  },
  format: ['esm', 'cjs'],
  // @internal members stay out of the published types (and so out of the API report).
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  // src/testing takes its public types from 'sidecarless' (see src/testing/public-types.ts).
  external: ['sidecarless'],
  treeshake: true,
});
