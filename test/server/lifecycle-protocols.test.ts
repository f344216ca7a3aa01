// The lifecycle rules on every protocol, not only HTTP/1.1: an open connection ends when the
// server's identity is withdrawn, when a trust change means its peer no longer verifies, at the
// peer's notAfter and at maxConnectionAge; minVersion holds, also across a rotation; a client
// certificate issued by an intermediate CA is accepted.
import http2 from 'node:http2';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  createMtlsServer,
  getPeer,
  type MtlsServerOptions,
  type Peer,
  type RejectEvent,
} from '../../src/index.js';
import { type MutableIdentity, mutableIdentity } from '../helpers/mutable-identity.js';
import { type ClientCredentials, credentialsOf, listen, onCleanup, record } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const partner = createLocalCa({ trustDomain: 'partner.example' });
const withIntermediate = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
afterAll(async () => {
  await Promise.all([ca.close(), partner.close(), withIntermediate.close()]);
});
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const ui = credentialsOf(ca.issue(UI));
const PROTOCOLS = ['http1', 'http2', 'tls'] as const;
type Protocol = (typeof PROTOCOLS)[number];

function serverIdentity(bundles: BundleSet): MutableIdentity {
  const identity = mutableIdentity(ca.issue('/ns/demo/sa/boards'), bundles);
  onCleanup(() => identity.close());
  return identity;
}

/** A server of `protocol` that answers each request (or connection) with the caller's SPIFFE ID. */
function serverOf(protocol: Protocol, options: Record<string, unknown>) {
  const answer = (req: Parameters<typeof getPeer>[0], res: { end(s: string): void }) =>
    res.end(String(getPeer(req).id));
  if (protocol === 'tls') {
    return createMtlsServer(
      { ...options, protocol, authorize: '*' } as MtlsServerOptions & { protocol: 'tls' },
      (socket: tls.TLSSocket, peer: Peer) => {
        socket.on('data', () => socket.write(`${peer.id}\n`));
      },
    );
  }
  return createMtlsServer({ ...options, protocol } as never, answer as never);
}

/** An open connection of `protocol` that made one exchange; `closed` settles when the server ends it. */
async function openConnection(
  protocol: Protocol,
  port: number,
  client: ClientCredentials,
  bundles: string,
  extra: tls.ConnectionOptions = {},
): Promise<{ answer: string; closed: Promise<void> }> {
  if (protocol === 'http2') {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ca: bundles,
      ...client,
      ...extra,
      checkServerIdentity: () => undefined,
    });
    onCleanup(() => session.destroy());
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    session.on('error', () => {});
    const answer = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => resolve(body));
      req.on('error', reject);
    });
    return { answer, closed };
  }
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: bundles,
    ...client,
    ...extra,
    ALPNProtocols: ['http/1.1'],
    checkServerIdentity: () => undefined,
  });
  onCleanup(() => socket.destroy());
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  const answer = await new Promise<string>((resolve, reject) => {
    socket.once('secureConnect', () =>
      socket.write(protocol === 'tls' ? 'hello\n' : 'GET / HTTP/1.1\r\nhost: boards\r\n\r\n'),
    );
    socket.setEncoding('utf8');
    let text = '';
    socket.on('data', (d: string) => {
      text += d;
      const body = protocol === 'tls' ? text.trim() : /\r\n\r\n(.+)$/s.exec(text)?.[1];
      if (body !== undefined && (protocol === 'tls' ? text.endsWith('\n') : body.length > 0)) resolve(body);
    });
    socket.once('close', () => reject(new Error(`closed before an answer; got ${JSON.stringify(text)}`)));
  });
  return { answer, closed };
}

describe.each(PROTOCOLS)('%s', (protocol) => {
  it('an open connection ends when the server identity is withdrawn, at once', async () => {
    const identity = serverIdentity(ca.bundles());
    const server = serverOf(protocol, { identity, keepAliveTimeout: 60_000 });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const connection = await openConnection(protocol, port, ui, ca.bundle().toPem());
    expect(connection.answer).toBe(UI);
    identity.withdraw('revoked by the test');
    await connection.closed;
    expect(rejects).toMatchObject([{ reason: 'ERR_NO_IDENTITY', phase: 'connection', peer: UI }]);
  });

  it('a trust change closes the peers that no longer verify, and only them', async () => {
    const identity = serverIdentity(BundleSet.of(ca.bundle(), partner.bundle()));
    const server = serverOf(protocol, { identity, keepAliveTimeout: 60_000 });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const roots = `${ca.bundle().toPem()}`;
    const billing = credentialsOf(partner.issue('/ns/billing/sa/api'));
    const kept = await openConnection(protocol, port, ui, roots);
    const dropped = await openConnection(protocol, port, billing, roots);
    expect(dropped.answer).toBe('spiffe://partner.example/ns/billing/sa/api');
    identity.update({ bundles: ca.bundles() });
    await dropped.closed;
    expect(rejects).toMatchObject([
      {
        reason: 'ERR_PEER_NO_LONGER_TRUSTED',
        phase: 'connection',
        peer: 'spiffe://partner.example/ns/billing/sa/api',
      },
    ]);
    // The other peer's connection goes on.
    const settled = await Promise.race([kept.closed.then(() => 'closed'), Promise.resolve('open')]);
    expect(settled).toBe('open');
  });

  it("a connection ends at the peer's notAfter", async () => {
    const short = credentialsOf(ca.issue('/ns/demo/sa/short', { ttl: 1_500 }));
    const server = serverOf(protocol, { identity: serverIdentity(ca.bundles()), keepAliveTimeout: 60_000 });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const connection = await openConnection(protocol, port, short, ca.bundle().toPem());
    await connection.closed;
    expect(rejects).toMatchObject([{ reason: 'ERR_PEER_EXPIRED', phase: 'connection' }]);
  });

  it('a connection ends at maxConnectionAge', async () => {
    const server = serverOf(protocol, {
      identity: serverIdentity(ca.bundles()),
      maxConnectionAge: 300,
      keepAliveTimeout: 60_000,
    });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const connection = await openConnection(protocol, port, ui, ca.bundle().toPem());
    await connection.closed;
    expect(rejects).toMatchObject([{ reason: 'ERR_CONNECTION_MAX_AGE', phase: 'connection', peer: UI }]);
  });

  it('minVersion TLSv1.3 refuses a TLS 1.2 client, before and after a rotation', async () => {
    const identity = serverIdentity(ca.bundles());
    const server = serverOf(protocol, { identity, minVersion: 'TLSv1.3' });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const tls12 = { maxVersion: 'TLSv1.2' } as const;
    await expect(openConnection(protocol, port, ui, ca.bundle().toPem(), tls12)).rejects.toThrow();
    identity.update({ svid: ca.issue('/ns/demo/sa/boards') });
    await expect(openConnection(protocol, port, ui, ca.bundle().toPem(), tls12)).rejects.toThrow();
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_HANDSHAKE_FAILED', 'ERR_HANDSHAKE_FAILED']);
    // Control: TLS 1.3 after the rotation.
    expect((await openConnection(protocol, port, ui, ca.bundle().toPem())).answer).toBe(UI);
  });

  it('accepts a client certificate issued by an intermediate CA', async () => {
    const server = serverOf(protocol, {
      // One trust domain, two roots: ours, and one that signs through an intermediate.
      identity: serverIdentity(
        BundleSet.of(
          ca.bundle().withAuthorities([...ca.bundle().anchors(), ...withIntermediate.bundle().anchors()]),
        ),
      ),
    });
    const { port } = await listen(server);
    const viaIntermediate = credentialsOf(withIntermediate.issue(UI));
    expect((await openConnection(protocol, port, viaIntermediate, ca.bundle().toPem())).answer).toBe(UI);
  });
});
