// The identity source examples are documentation: each runs here as a user would import it
// ('sidecarless' resolves to src/ through vitest.config.ts).
import { afterEach, describe, expect, it } from 'vitest';

interface Result {
  id: string;
  peer: string;
  rotations: string[];
  close(): Promise<void>;
}

// Computed specifiers: the examples are JavaScript, without type declarations.
const load = (name: string): Promise<{ main(options?: object): Promise<Result> }> =>
  import(`../../examples/${name}.mjs`);

const results: Result[] = [];
afterEach(async () => {
  for (const result of results.splice(0)) await result.close();
});

describe('identity examples', () => {
  it('examples/spire-workload-api.mjs: identity from a (fake) Workload API, one rotation', async () => {
    const { main } = await load('spire-workload-api');
    const lines: string[] = [];
    const result = await main({ address: undefined, log: (line: string) => lines.push(line) });
    results.push(result);
    expect(result.id).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    expect(result.peer).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
    expect(result.rotations).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^running as spiffe:\/\/cluster\.local\/ns\/demo\/sa\/boards, serial \w+, trusting cluster\.local$/,
    );
    expect(lines.some((line) => line.startsWith('workload API:'))).toBe(false);
  });

  it.each(['istio', 'cert-manager', 'spiffe-helper'])(
    'examples/istio-files.mjs: %s files, one rotation on disk',
    async (preset) => {
      const { main } = await load('istio-files');
      const lines: string[] = [];
      const result = await main({ preset, log: (line: string) => lines.push(line) });
      results.push(result);
      expect(result.id).toBe('spiffe://cluster.local/ns/demo/sa/boards');
      expect(result.peer).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
      expect(result.rotations).toHaveLength(1);
      expect(lines.some((line) => line.startsWith('files:'))).toBe(false);
    },
  );
});
