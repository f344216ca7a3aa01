// The server examples are documentation: each runs here as a user would import it ('sidecarless'
// resolves to src/ through vitest.config.ts).
import { describe, expect, it } from 'vitest';
import { createLocalCa, type LocalCa } from '../../src/index.js';
import { credentialsOf, mtlsRequest, onCleanup, run } from '../helpers/server.js';

/** What examples/<name>-server.mjs exports. */
interface Example {
  main(options?: {
    port?: number;
    ca?: LocalCa;
  }): Promise<{ port: number; url: string; close(): Promise<void> }>;
}

// A computed specifier: the examples are JavaScript, without type declarations.
const load = (name: string): Promise<Example> => import(`../../examples/${name}-server.mjs`);

describe.each(['express', 'fastify', 'hono'])('examples/%s-server.mjs', (name) => {
  it('answers an mTLS caller with its SPIFFE ID, enforces the map, and resets plaintext', async () => {
    const { main } = await load(name);
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    const server = await main({ ca });
    onCleanup(() => server.close());
    expect(server.url).toBe(`https://127.0.0.1:${server.port}`);

    const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
    const hello = await mtlsRequest(server.port, '/hello', ui, ca.bundle());
    expect(hello.status).toBe(200);
    expect(JSON.parse(hello.body)).toEqual({ hello: 'spiffe://cluster.local/ns/demo/sa/app-ui' });

    const admin = await mtlsRequest(server.port, '/admin/users', ui, ca.bundle());
    expect(admin.status).toBe(403);
    expect(JSON.parse(admin.body)).toEqual({ error: 'forbidden', reason: 'peer_not_allowed' });

    const curl = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${server.port}/hello`]);
    expect(curl.code).toBe(56);
  });
});
