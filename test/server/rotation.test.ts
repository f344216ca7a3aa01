import { constants } from 'node:crypto';
import http2 from 'node:http2';
import tls from 'node:tls';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  createMtlsServer,
  getPeer,
  type IdentityUpdateEvent,
  type PeerEvent,
  type RejectEvent,
  type X509Bundle,
} from '../../src/index.js';
import { type MutableIdentity, mutableIdentity } from '../helpers/mutable-identity.js';
import {
  agentRequest,
  closed,
  createLatch,
  credentialsOf,
  keepAliveAgent,
  listen,
  mtlsRequest,
  onCleanup,
  plainKeepAliveAgent,
  plainRequest,
  record,
  tlsExchange,
} from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
// A second root of the same trust domain (a root rotation in progress), and a federated partner.
const otherRoot = createLocalCa({ trustDomain: 'cluster.local' });
const partner = createLocalCa({ trustDomain: 'partner.example' });
afterAll(async () => {
  await Promise.all([ca.close(), otherRoot.close(), partner.close()]);
});

const SERVER_ID = '/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BILLING = 'spiffe://partner.example/ns/billing/sa/api';
const ui = credentialsOf(ca.issue(UI));
const billing = credentialsOf(partner.issue(BILLING));
const GET = 'GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n';

/** The server's identity source, closed after the test. */
function serverIdentity(bundles: BundleSet, svid = ca.issue(SERVER_ID)): MutableIdentity {
  const identity = mutableIdentity(svid, bundles);
  onCleanup(() => identity.close());
  return identity;
}

/** Our trust domain's bundle with both roots in it. */
function bothRoots(): BundleSet {
  return BundleSet.of(
    ca.bundle().withAuthorities([...ca.bundle().anchors(), ...otherRoot.bundle().anchors()]),
  );
}

function serialOf(socket: unknown): string {
  return (socket as tls.TLSSocket).getPeerCertificate().serialNumber;
}

function echoPeer(req: Parameters<typeof getPeer>[0], res: { end(body: string): void }): void {
  res.end(String(getPeer(req).id));
}

describe('a new SVID from the source', () => {
  it('applies to the next handshake without dropping in-flight requests or keep-alive connections', async () => {
    const first = ca.issue(SERVER_ID);
    const identity = serverIdentity(ca.bundles(), first);
    const latch = createLatch();
    onCleanup(() => latch.release());
    const server = createMtlsServer({ identity }, async (req, res) => {
      if (req.url !== '/slow') return void res.end('ok');
      res.write('part 1, ');
      await latch.wait();
      res.end('part 2');
    });
    const updates = record<IdentityUpdateEvent>(server, 'identityUpdate');
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const agent = keepAliveAgent(ui, ca.bundle());
    const before = await agentRequest(agent, port, '/');
    expect(serialOf(before.socket)).toBe(first.leaf.serialNumber);
    const slow = mtlsRequest(port, '/slow', ui, ca.bundle());
    await latch.reached();

    const second = ca.issue(SERVER_ID);
    identity.update({ svid: second });
    expect(updates).toMatchObject([
      { serial: second.leaf.serialNumber, generation: 2, closedConnections: 0 },
    ]);

    const next = await agentRequest(keepAliveAgent(ui, ca.bundle()), port, '/');
    expect(next.status).toBe(200);
    expect(serialOf(next.socket)).toBe(second.leaf.serialNumber);
    latch.release();
    await expect(slow).resolves.toMatchObject({ status: 200, body: 'part 1, part 2' });
    const after = await agentRequest(agent, port, '/');
    expect(after.status).toBe(200);
    expect(after.socket).toBe(before.socket); // the same keep-alive connection, with its old credentials
    expect(serialOf(after.socket)).toBe(first.leaf.serialNumber);
    expect(server.listening).toBe(true);
    expect(rejects).toEqual([]);
  });
});

describe('when bundles change', () => {
  it('an added bundle applies to the next handshake; a removed one closes its peers only', async () => {
    const identity = serverIdentity(ca.bundles());
    const server = createMtlsServer({ identity }, echoPeer);
    const updates = record<IdentityUpdateEvent>(server, 'identityUpdate');
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const ours = keepAliveAgent(ui, ca.bundle());
    const theirs = keepAliveAgent(billing, ca.bundle());
    await expect(agentRequest(theirs, port, '/')).rejects.toThrow();
    expect(rejects).toMatchObject([{ reason: 'ERR_SVID_NO_BUNDLE', phase: 'handshake', peer: BILLING }]);

    identity.update({ bundles: BundleSet.of(ca.bundle(), partner.bundle()) });
    const a = await agentRequest(ours, port, '/');
    const b = await agentRequest(theirs, port, '/');
    expect([a.body, b.body]).toEqual([UI, BILLING]);

    identity.update({ bundles: ca.bundles() });
    expect(updates.at(-1)).toMatchObject({ trustDomains: ['cluster.local'], closedConnections: 1 });
    expect(rejects.at(-1)).toMatchObject({
      reason: 'ERR_PEER_NO_LONGER_TRUSTED',
      phase: 'connection',
      peer: BILLING,
    });
    await closed(b.socket);
    const again = await agentRequest(ours, port, '/');
    expect(again).toMatchObject({ status: 200, body: UI });
    expect(again.socket).toBe(a.socket);
    await expect(agentRequest(theirs, port, '/')).rejects.toThrow();
    expect(rejects.at(-1)).toMatchObject({ reason: 'ERR_SVID_NO_BUNDLE', phase: 'handshake' });
    expect(rejects).toHaveLength(3);
  });
});

describe('TLS session resumption', () => {
  // The detector first: a plain Node server resumes, so a "not reused" below is real; and it shows the
  // trap the server must avoid: setSecureContext() without secureOptions turns tickets back on.
  it.each(['TLSv1.2', 'TLSv1.3'] as const)(
    'control: a plain tls.Server and a saved %s session',
    async (version) => {
      const context = { ...credentialsOf(ca.issue(SERVER_ID)), ca: ca.bundle().toPem() };
      const plain = tls.createServer({ ...context, requestCert: true, rejectUnauthorized: true }, (s) => {
        s.resume(); // read to the client's FIN, so the socket closes
        s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
      const { port } = await listen(plain);
      const client = { ...ui, ca: ca.bundle().toPem(), maxVersion: version, send: GET };
      const resumes = async () => {
        const first = await tlsExchange(port, client);
        const second = await tlsExchange(port, {
          ...client,
          session: first.sessions.at(-1) ?? first.session,
        });
        expect(second.data).toMatch(/^HTTP\/1.1 200/);
        return second.reused;
      };
      expect(await resumes()).toBe(true);
      plain.setSecureContext({ ...context, secureOptions: constants.SSL_OP_NO_TICKET });
      expect(await resumes()).toBe(false);
      plain.setSecureContext(context);
      expect(await resumes()).toBe(true);
    },
  );

  it.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: no resumption, so a peer whose CA was removed is refused with a saved session',
    async (version) => {
      const identity = serverIdentity(BundleSet.of(ca.bundle(), partner.bundle()));
      const server = createMtlsServer({ identity }, echoPeer);
      const peers = record<PeerEvent>(server, 'peer');
      const rejects = record<RejectEvent>(server, 'reject');
      const { port } = await listen(server);
      const client = { ...billing, ca: ca.bundle().toPem(), maxVersion: version, send: GET };
      const first = await tlsExchange(port, client);
      expect(first.data).toMatch(/^HTTP\/1.1 200/);
      const session = first.sessions.at(-1) ?? first.session;
      expect(session).toBeInstanceOf(Buffer);

      // Control, nothing changed: the saved session is offered, and a full handshake is made anyway.
      const control = await tlsExchange(port, { ...client, session });
      expect(control).toMatchObject({ secure: true, reused: false });
      expect(control.data).toMatch(new RegExp(`^HTTP/1.1 200[\\s\\S]*${BILLING}$`));

      identity.update({ bundles: ca.bundles() });
      const refused = await tlsExchange(port, { ...client, session });
      expect(refused.reused).toBe(false);
      expect(refused.data).toBe('');
      expect(rejects).toMatchObject([{ reason: 'ERR_SVID_NO_BUNDLE', phase: 'handshake', peer: BILLING }]);
      expect(peers.map((p) => p.resumed)).toEqual([false, false]);
    },
  );

  it.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: resumption stays off after the identity rotates',
    async (version) => {
      // setSecureContext() resets the options it is not given (secureOptions among them): a session
      // issued under the new context must not resume either.
      const identity = serverIdentity(ca.bundles());
      const server = createMtlsServer({ identity }, echoPeer);
      const peers = record<PeerEvent>(server, 'peer');
      const { port } = await listen(server);
      const client = { ...ui, ca: ca.bundle().toPem(), maxVersion: version, send: GET };
      const before = await tlsExchange(port, client);
      identity.update({ svid: ca.issue(SERVER_ID) });
      identity.update({ bundles: bothRoots() });
      const after = await tlsExchange(port, client);
      for (const saved of [before, after]) {
        const again = await tlsExchange(port, { ...client, session: saved.sessions.at(-1) ?? saved.session });
        expect(again).toMatchObject({ secure: true, reused: false });
        expect(again.data).toMatch(/^HTTP\/1.1 200/);
      }
      expect(peers.map((p) => p.resumed)).toEqual([false, false, false, false]);
    },
  );

  it('an https.Agent with its default session cache makes a full handshake every time', async () => {
    const identity = serverIdentity(ca.bundles());
    const server = createMtlsServer({ identity }, echoPeer);
    const peers = record<PeerEvent>(server, 'peer');
    const { port } = await listen(server);
    // keepAlive off: each request is a new connection, offered the agent's cached session if any.
    const agent = keepAliveAgent(ui, ca.bundle(), { keepAlive: false, maxVersion: 'TLSv1.2' });
    for (let i = 0; i < 3; i++) {
      const res = await agentRequest(agent, port, '/');
      expect(res.status).toBe(200);
      expect(res.reused).toBe(false);
      if (i === 1) identity.update({ svid: ca.issue(SERVER_ID) });
    }
    expect(peers.map((p) => p.resumed)).toEqual([false, false, false]);
  });
});

describe('the verdict cache', () => {
  // The peer sends its root after its leaf, so the chain Node exposes is byte-for-byte the same before
  // and after the removal (leaf-only, OpenSSL would append the root from its store only while it is
  // there): the verdict's key matches, and only dropping the cache on the trust change refuses it.
  it.each([
    [
      'its root is removed from its trust domain bundle',
      () => otherRoot.issue('/ns/demo/sa/worker'),
      otherRoot,
    ],
    ['its trust domain bundle is removed', () => partner.issue(BILLING), partner],
  ] as const)('a warm peer is refused once %s', async (what, issue, itsCa) => {
    const svid = issue();
    const peer = { ...credentialsOf(svid), cert: svid.certChainPem() + itsCa.bundle().toPem() };
    const identity = serverIdentity(
      BundleSet.of(bothRoots().get('cluster.local') as X509Bundle, partner.bundle()),
    );
    const server = createMtlsServer({ identity }, echoPeer);
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    for (let i = 0; i < 2; i++) expect((await mtlsRequest(port, '/', peer, ca.bundle())).status).toBe(200);
    const removed = what.startsWith('its root')
      ? ca.bundles()
      : BundleSet.of(bothRoots().get('cluster.local') as X509Bundle);
    identity.update({ bundles: removed });
    await expect(mtlsRequest(port, '/', peer, ca.bundle())).rejects.toThrow();
    const code = what.startsWith('its root') ? 'ERR_SVID_UNTRUSTED' : 'ERR_SVID_NO_BUNDLE';
    expect(rejects).toMatchObject([{ reason: code, phase: 'handshake', peer: svid.id.toString() }]);
    // Control: the peers of the remaining root are still welcome.
    await expect(mtlsRequest(port, '/', ui, ca.bundle())).resolves.toMatchObject({ status: 200, body: UI });
  });

  it('re-checks expiry on a cache hit', async () => {
    const svid = ca.issue('/ns/demo/sa/short', { ttl: 1000 });
    const short = credentialsOf(svid);
    const server = createMtlsServer({ identity: serverIdentity(ca.bundles()) }, echoPeer);
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    for (let i = 0; i < 2; i++) expect((await mtlsRequest(port, '/', short, ca.bundle())).status).toBe(200);
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(svid.notAfter.getTime() + 50), {
      timeout: 3000,
      interval: 50,
    });
    await expect(mtlsRequest(port, '/', short, ca.bundle())).rejects.toThrow();
    expect(rejects).toMatchObject([{ reason: 'ERR_SVID_EXPIRED', phase: 'handshake' }]);
  });
});

describe('when the source has no valid identity', () => {
  it('mTLS fails closed and TLS connections end; PERMISSIVE plaintext goes on; a new identity restores mTLS', async () => {
    const identity = serverIdentity(ca.bundles());
    const server = createMtlsServer({ identity, mode: 'PERMISSIVE' }, (req, res) =>
      res.end(String(getPeer(req).id)),
    );
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const mtls = await agentRequest(keepAliveAgent(ui, ca.bundle()), port, '/');
    const tlsOnly = await agentRequest(keepAliveAgent(undefined, ca.bundle()), port, '/');
    const plainAgent = plainKeepAliveAgent();
    const plain = await agentRequest(plainAgent, port, '/');
    expect([mtls.body, tlsOnly.body, plain.body]).toEqual([UI, 'null', 'null']);

    identity.withdraw();
    await expect(mtlsRequest(port, '/', ui, ca.bundle())).rejects.toThrow();
    await Promise.all([closed(mtls.socket), closed(tlsOnly.socket)]);
    expect(rejects).toHaveLength(3);
    expect(rejects).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ reason: 'ERR_NO_IDENTITY', phase: 'sniff' }),
        expect.objectContaining({ reason: 'ERR_NO_IDENTITY', phase: 'connection', peer: UI }),
        expect.objectContaining({ reason: 'ERR_NO_IDENTITY', phase: 'connection', peer: null }),
      ]),
    );
    const plainAgain = await agentRequest(plainAgent, port, '/');
    expect(plainAgain).toMatchObject({ status: 200, body: 'null' });
    expect(plainAgain.socket).toBe(plain.socket);
    expect((await plainRequest(port, '/')).status).toBe(200);
    expect(server.describe()).toMatchObject({ id: null, notAfter: null });

    identity.update({ svid: ca.issue(SERVER_ID) });
    await expect(mtlsRequest(port, '/', ui, ca.bundle())).resolves.toMatchObject({ status: 200, body: UI });
    expect(server.describe()).toMatchObject({ id: `spiffe://cluster.local${SERVER_ID}` });
  });
});

describe('when the identity is withdrawn, open connections learn it on their next request', () => {
  it('refuses the next request on a keep-alive mTLS connection, without any new handshake', async () => {
    const identity = serverIdentity(ca.bundles());
    let calls = 0;
    const server = createMtlsServer({ identity }, (_req, res) => {
      calls++;
      res.end('ok');
    });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const agent = keepAliveAgent(ui, ca.bundle());
    const first = await agentRequest(agent, port, '/');
    expect(first).toMatchObject({ status: 200 });
    identity.withdraw();
    await expect(agentRequest(agent, port, '/')).rejects.toThrow();
    expect(calls).toBe(1);
    expect(rejects[0]).toMatchObject({ reason: 'ERR_NO_IDENTITY', peer: UI });
    agent.destroy();
  });
});

describe('connections do not outlive their peer', () => {
  it("a keep-alive connection is closed when the peer's certificate expires", async () => {
    const svid = ca.issue('/ns/demo/sa/short', { ttl: 1500 });
    const server = createMtlsServer(
      { identity: serverIdentity(ca.bundles()), keepAliveTimeout: 30_000 },
      echoPeer,
    );
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const res = await agentRequest(keepAliveAgent(credentialsOf(svid), ca.bundle()), port, '/');
    expect(res.status).toBe(200);
    await closed(res.socket);
    expect(Date.now()).toBeGreaterThanOrEqual(svid.notAfter.getTime());
    expect(rejects).toMatchObject([
      { reason: 'ERR_PEER_EXPIRED', phase: 'connection', peer: 'spiffe://cluster.local/ns/demo/sa/short' },
    ]);
  });

  it('maxConnectionAge closes an HTTP/1.1 connection gracefully: the request in flight completes', async () => {
    const latch = createLatch();
    onCleanup(() => latch.release());
    const server = createMtlsServer(
      { identity: serverIdentity(ca.bundles()), maxConnectionAge: 300, keepAliveTimeout: 30_000 },
      async (req, res) => {
        if (req.url === '/slow') await latch.wait();
        res.end(`done ${req.url}`);
      },
    );
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const agent = keepAliveAgent(ui, ca.bundle());
    const first = await agentRequest(agent, port, '/first');
    const slow = agentRequest(agent, port, '/slow');
    await latch.reached();
    await vi.waitFor(() =>
      expect(rejects).toMatchObject([{ reason: 'ERR_CONNECTION_MAX_AGE', phase: 'connection' }]),
    );
    expect(first.socket.destroyed).toBe(false);
    latch.release();
    const done = await slow;
    expect(done).toMatchObject({ status: 200, body: 'done /slow' });
    expect(done.socket).toBe(first.socket);
    await closed(done.socket);
  });

  it('maxConnectionAge closes an HTTP/2 session with GOAWAY: the stream in flight completes', async () => {
    const latch = createLatch();
    onCleanup(() => latch.release());
    const server = createMtlsServer(
      { identity: serverIdentity(ca.bundles()), protocol: 'http2', maxConnectionAge: 300 },
      async (req, res) => {
        if (req.url === '/slow') await latch.wait();
        res.end(`done ${req.url}`);
      },
    );
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ...ui,
      ca: ca.bundle().toPem(),
      checkServerIdentity: () => undefined,
    });
    onCleanup(() => session.destroy());
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const stream = session.request({ ':path': '/slow' });
    stream.setEncoding('utf8');
    let body = '';
    stream.on('data', (d: string) => {
      body += d;
    });
    const ended = new Promise<void>((resolve) => stream.once('end', () => resolve()));
    await latch.reached();
    await goaway;
    expect(rejects).toMatchObject([{ reason: 'ERR_CONNECTION_MAX_AGE', phase: 'connection', peer: UI }]);
    // The client stops opening streams after GOAWAY; the one in flight goes on.
    expect(session.destroyed).toBe(false);
    expect(body).toBe('');
    latch.release();
    await ended;
    expect(body).toBe('done /slow');
    await closed(session);
  });
});
