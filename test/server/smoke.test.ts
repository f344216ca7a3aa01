import { describe, expect, it } from 'vitest';
import { createLocalCa, createMtlsServer, getPeer } from '../../src/index.js';
import { credentialsOf, listen, mtlsRequest, plainRequest, record, run } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const identity = ca.identity('/ns/demo/sa/boards');
const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));

describe('smoke', () => {
  it('STRICT: mTLS peer reaches the handler with its ID; plaintext is reset', async () => {
    const server = createMtlsServer({ identity }, (req, res) => res.end(`hello ${getPeer(req).id}`));
    const rejects = record(server, 'reject');
    const { port } = await listen(server);
    const ok = await mtlsRequest(port, '/x', ui, ca.bundle());
    expect(ok).toMatchObject({ status: 200, body: 'hello spiffe://cluster.local/ns/demo/sa/app-ui' });
    const curl = await run('curl', ['-sS', `http://127.0.0.1:${port}/shareditems`]);
    expect(curl.code).toBe(56);
    expect(curl.stderr).toMatch(/reset by peer/);
    expect(rejects).toMatchObject([{ reason: 'ERR_PLAINTEXT_REFUSED', phase: 'sniff' }]);
    expect(server.describe()).toMatchObject({
      mode: 'STRICT',
      id: 'spiffe://cluster.local/ns/demo/sa/boards',
    });
  });

  it('PERMISSIVE: plaintext and mTLS on one port', async () => {
    const server = createMtlsServer({ identity, mode: 'PERMISSIVE' }, (req, res) => {
      const peer = getPeer(req);
      res.end(peer.mtls ? `mtls ${peer.id}` : `plain tls=${peer.tls}`);
    });
    const { port } = await listen(server);
    expect((await plainRequest(port, '/a')).body).toBe('plain tls=false');
    expect((await mtlsRequest(port, '/a', ui, ca.bundle())).body).toBe(
      'mtls spiffe://cluster.local/ns/demo/sa/app-ui',
    );
    expect((await mtlsRequest(port, '/a', undefined, ca.bundle())).body).toBe('plain tls=true');
  });
});
