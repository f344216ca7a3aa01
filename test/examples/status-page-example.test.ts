// examples/status-page.mjs is the README's "Seeing mTLS" setup: it runs here as a user would import
// it, and the admin port it opens answers the status document `sidecarless describe` reads.
import { describe, expect, it } from 'vitest';
import { createLocalCa } from '../../src/index.js';
import { onCleanup } from '../helpers/server.js';

interface Running {
  port: number;
  legacyPort: number;
  adminUrl: string;
  outcomes: string[];
  close(): Promise<void>;
}

// A computed specifier: the examples are JavaScript, without type declarations.
const load = (): Promise<{ main(options?: object): Promise<Running> }> =>
  import(`../../examples/${'status-page'}.mjs`);

describe('examples/status-page.mjs', () => {
  it('serves boards STRICT and PERMISSIVE, makes the traffic, and answers the status document', async () => {
    const { main } = await load();
    const running = await main({ ca: createLocalCa({ trustDomain: 'cluster.local' }), log: () => {} });
    onCleanup(() => running.close());
    const { port, legacyPort } = running;
    expect(running.outcomes).toEqual([
      `app-ui GET 127.0.0.1:${port}/shareditems: 200`,
      `app-ui GET 127.0.0.1:${port}/admin: 403`,
      `app-ui GET 127.0.0.1:${legacyPort}/shareditems: 200`,
      `plaintext GET 127.0.0.1:${legacyPort}/shareditems: 200`,
      `plaintext GET 127.0.0.1:${port}/shareditems: ECONNRESET`,
    ]);
    const res = await fetch(`${running.adminUrl}?format=json`);
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      servers: { mode: string; address: string; edges: { source: string; mtlsShare: number | null }[] }[];
      clients: { name: string; edges: { destination: string; peer: string | null }[] }[];
    };
    expect(report.servers.map((s) => [s.mode, s.address])).toEqual([
      ['PERMISSIVE', `127.0.0.1:${legacyPort}`],
      ['STRICT', `127.0.0.1:${port}`],
    ]);
    const permissive = report.servers[0]?.edges.map((e) => [e.source, e.mtlsShare]);
    expect(permissive).toEqual(
      expect.arrayContaining([
        ['unauthenticated', 0],
        ['spiffe://cluster.local/ns/demo/sa/app-ui', 1],
      ]),
    );
    expect(report.clients[0]?.edges.map((e) => e.peer)).toEqual([
      'spiffe://cluster.local/ns/demo/sa/boards',
      'spiffe://cluster.local/ns/demo/sa/boards',
    ]);
  });
});
