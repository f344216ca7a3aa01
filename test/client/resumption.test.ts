// The opt-in resumption of the clients (`resumption: true`): sessions carry the Peer their full
// handshake verified, and every change that could matter makes the next connection a full one.
import { randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import tls from 'node:tls';

import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { BundleSet, type Peer } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { leafOfSessionDer, sessionDerOf } from '../../src/tls/session-der.js';
import { caOf, httpsServer, pemOf } from '../helpers/client-servers.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const partner = createTestCa({ trustDomain: 'partner.example' });
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
afterAll(async () => {
  await ca.close();
  await partner.close();
});

/** A server issuing tickets, recording whether each connection resumed and who the client was. */
async function resumingServer(ticketKeys = randomBytes(48)) {
  const srv = await httpsServer(
    { ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) },
    { ticketKeys },
  );
  const reused: boolean[] = [];
  const clients: string[] = [];
  srv.server.on('secureConnection', (s: tls.TLSSocket) => {
    reused.push(s.isSessionReused());
    clients.push(s.getPeerX509Certificate()?.serialNumber ?? 'none');
  });
  return { ...srv, reused, clients, ticketKeys };
}

function setup(extra: { bundles?: BundleSet } = {}) {
  const identity = mutableIdentity(ca.issue('/ns/demo/sa/app-ui'), extra.bundles ?? ca.bundles());
  const peers: Peer[] = [];
  const dispatcher = createMtlsDispatcher({
    identity,
    destinations: { '*': { expect: BOARDS } },
    resumption: true,
    onPeer: (peer) => peers.push(peer),
  });
  onCleanup(() => dispatcher.destroy());
  // A new connection per request, so each is a handshake (full or resumed).
  const get = async (port: number) => {
    const res = await undiciFetch(`http://127.0.0.1:${port}/`, {
      dispatcher,
      headers: { connection: 'close' },
    });
    await res.text();
    return res;
  };
  return { identity, dispatcher, peers, get };
}

describe('resumption: true', () => {
  it('resumes, and reports the server identity its full handshake verified', async () => {
    const srv = await resumingServer();
    const { peers, get } = setup();
    for (let i = 0; i < 3; i++) expect((await get(srv.port)).headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    expect(srv.reused).toEqual([false, true, true]);
    expect(peers.map((p) => [p.id?.toString(), p.resumed])).toEqual([
      [BOARDS, false],
      [BOARDS, true],
      [BOARDS, true],
    ]);
    expect(peers[2]?.chain).toHaveLength(2);
  });

  it('a server that changes its SPIFFE ID and its ticket keys gets a full handshake, and is refused', async () => {
    const srv = await resumingServer();
    const { get } = setup();
    await get(srv.port);
    srv.server.setSecureContext({
      ...pemOf(ca.issue('/ns/demo/sa/impostor')),
      ca: caOf(ca.bundle()),
      ticketKeys: randomBytes(48),
    });
    const cause = await get(srv.port).then(
      () => expect.fail('succeeded'),
      (e: { cause: unknown }) => e.cause,
    );
    expect(cause).toMatchObject({
      code: 'ERR_PEER_ID_MISMATCH',
      detail: { peer: 'spiffe://cluster.local/ns/demo/sa/impostor' },
    });
  });

  it('every bundle change and every new SVID of the client drops the sessions', async () => {
    const srv = await resumingServer();
    const { identity, get } = setup();
    await get(srv.port);
    await get(srv.port);
    identity.update({ bundles: BundleSet.of(ca.bundle(), partner.bundle()) });
    await get(srv.port);
    await get(srv.port);
    identity.update({ svid: ca.issue('/ns/demo/sa/app-ui') });
    await get(srv.port);
    expect(srv.reused).toEqual([false, true, false, true, false]);
    // The full handshake after the rotation presented the new SVID.
    expect(new Set(srv.clients).size).toBe(2);
    expect(srv.clients[4]).toBe(identity.current().svid.leaf.serialNumber);
  });

  it('a resumed session whose server stopped being trusted during the handshake is refused', async () => {
    const identity = mutableIdentity(
      ca.issue('/ns/demo/sa/app-ui'),
      BundleSet.of(ca.bundle(), partner.bundle()),
    );
    const srv = await httpsServer(pemOf(partner.issue('/ns/shop/sa/orders')), {
      ticketKeys: randomBytes(48),
    });
    const reused: boolean[] = [];
    srv.server.on('secureConnection', (s: tls.TLSSocket) => reused.push(s.isSessionReused()));
    const dispatcher = createMtlsDispatcher({
      identity,
      destinations: { '*': { expect: '*' } },
      resumption: true,
    });
    onCleanup(() => dispatcher.destroy());
    const get = () =>
      undiciFetch(`http://127.0.0.1:${srv.port}/`, { dispatcher, headers: { connection: 'close' } });
    await (await get()).text();
    // The session is offered when the connection starts; the partner's bundle goes while the
    // handshake runs. The resumed server is checked against the bundles of that moment.
    srv.server.once('connection', () => identity.update({ bundles: BundleSet.of(ca.bundle()) }));
    const cause = await get().then(
      () => expect.fail('succeeded'),
      (e: { cause: unknown }) => e.cause,
    );
    expect(cause).toMatchObject({ code: 'ERR_SVID_NO_BUNDLE' });
    expect((cause as Error).message).toContain('resumed server no longer trusted');
  });

  it("skips Node's verdict on resumed sessions only: the library's check decides either way", async () => {
    const srv = await resumingServer();
    const { get, peers } = setup();
    const seen: [boolean, string | undefined][] = [];
    const onConnected = (message: unknown) => {
      const socket = (message as { socket: tls.TLSSocket }).socket;
      seen.push([socket.isSessionReused(), socket.authorizationError?.toString()]);
    };
    diagnosticsChannel.subscribe('undici:client:connected', onConnected);
    onCleanup(() => diagnosticsChannel.unsubscribe('undici:client:connected', onConnected));
    await get(srv.port);
    await get(srv.port);
    // New ticket keys: the session offered next cannot resume, so a full handshake runs.
    srv.server.setTicketKeys(randomBytes(48));
    await get(srv.port);
    expect(srv.reused).toEqual([false, true, false]);
    // The client context holds no CA, so OpenSSL's verdict on a full handshake is a failure the
    // library ignores; a resumed session builds none.
    expect(seen).toEqual([
      [false, expect.stringMatching(/^[A-Z_]+$/)],
      [true, undefined],
      [false, expect.stringMatching(/^[A-Z_]+$/)],
    ]);
    expect(peers.map((p) => [p.id?.toString(), p.resumed])).toEqual([
      [BOARDS, false],
      [BOARDS, true],
      [BOARDS, false],
    ]);
  });

  it("offers its sessions without the server's certificate, and they resume", async () => {
    const srv = await resumingServer();
    const { get, peers } = setup();
    const offered: Buffer[] = [];
    const proto = tls.TLSSocket.prototype as unknown as { setSession(session: Buffer): void };
    const setSession = proto.setSession;
    proto.setSession = function (this: unknown, session: Buffer) {
      offered.push(session);
      setSession.call(this, session);
    };
    onCleanup(() => {
      proto.setSession = setSession;
    });
    for (let i = 0; i < 3; i++) await get(srv.port);
    expect(srv.reused).toEqual([false, true, true]);
    expect(offered).toHaveLength(2);
    // A session made by a full handshake holds the server's leaf (test/tls/session-der.test.ts);
    // the offers hold none.
    for (const session of offered) expect(leafOfSessionDer(sessionDerOf(session))).toBeNull();
    expect(peers.map((p) => [p.id?.toString(), p.resumed, p.chain.length])).toEqual([
      [BOARDS, false, 2],
      [BOARDS, true, 2],
      [BOARDS, true, 2],
    ]);
  });

  it('is off by default', async () => {
    const srv = await resumingServer();
    const dispatcher = createMtlsDispatcher({
      identity: ca.identity('/ns/demo/sa/app-ui'),
      destinations: { '*': { expect: BOARDS } },
    });
    onCleanup(() => dispatcher.destroy());
    for (let i = 0; i < 2; i++) {
      await (
        await undiciFetch(`http://127.0.0.1:${srv.port}/`, { dispatcher, headers: { connection: 'close' } })
      ).text();
    }
    expect(srv.reused).toEqual([false, false]);
  });
});
