// The client examples are documentation: each runs here as a user would import it ('sidecarless'
// resolves to src/ through vitest.config.ts).
import { describe, expect, it } from 'vitest';
import { createTestCa } from '../../src/testing/index.js';
import { onCleanup } from '../helpers/server.js';

interface Closable {
  close(): Promise<void>;
}

// Computed specifiers: the examples are JavaScript, without type declarations.
const load = <T>(name: string): Promise<{ main(options?: object): Promise<T & Closable> }> =>
  import(`../../examples/${name}.mjs`);

describe('client examples', () => {
  it('examples/fetch-client.mjs: fetch over mTLS, the server identity on the response', async () => {
    const { main } = await load<{ status: number; body: { caller: string }; peer: string }>('fetch-client');
    const lines: string[] = [];
    const ca = createTestCa();
    onCleanup(() => ca.close());
    const result = await main({ ca, log: (line: string) => lines.push(line) });
    onCleanup(() => result.close());
    expect(result.status).toBe(200);
    expect(result.body.caller).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
    expect(result.peer).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    expect(lines).toHaveLength(1);
  });

  it('examples/https-client.mjs: https.request and http.request over mTLS', async () => {
    const { main } = await load<{ responses: { status: number; body: string; peer: string }[] }>(
      'https-client',
    );
    const ca = createTestCa();
    onCleanup(() => ca.close());
    const result = await main({ ca, log: () => {} });
    onCleanup(() => result.close());
    expect(result.responses).toEqual([
      {
        status: 200,
        body: 'hello spiffe://cluster.local/ns/demo/sa/app-ui',
        peer: 'spiffe://cluster.local/ns/demo/sa/boards',
      },
      {
        status: 200,
        body: 'hello spiffe://cluster.local/ns/demo/sa/app-ui',
        peer: 'spiffe://cluster.local/ns/demo/sa/boards',
      },
    ]);
  });
});
