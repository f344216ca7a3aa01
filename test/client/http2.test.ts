// createMtlsDispatcher({ allowH2: true }): HTTP/2 to a sidecarless HTTP/2 server, with the same
// secure naming, peer on responses and rotation as HTTP/1.1; without it, HTTP/1.1 only.
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import type http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsDispatcher, type MtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import type { IdentitySource } from '../../src/identity/source.js';
import {
  BundleSet,
  channels,
  createMtlsServer,
  getPeer,
  isSidecarlessError,
  type Peer,
  type SidecarlessError,
} from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { fixedIdentity } from '../helpers/client-identity.js';
import { pemOf } from '../helpers/client-servers.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { createLatch, listen, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const partner = createTestCa({ trustDomain: 'partner.example' });
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
afterAll(async () => {
  await ca.close();
  await partner.close();
});

/** What the server saw of one request. */
interface Seen {
  readonly path: string;
  readonly httpVersion: string;
  /** Whether it came as an HTTP/2 stream. */
  readonly stream: boolean;
  readonly client: string | null;
  readonly alpn: string | null;
  /** The serial number of the client's certificate. */
  readonly serial: string | undefined;
}

/** A sidecarless HTTP/2 server (HTTP/1.1 by ALPN too), recording what it saw. */
async function h2Server(
  identity: IdentitySource,
  hold?: (path: string) => Promise<void> | undefined,
): Promise<{ port: number; seen: Seen[]; sessions: () => number; server: http2.Http2SecureServer }> {
  const seen: Seen[] = [];
  let sessions = 0;
  const server = createMtlsServer({ identity, mode: 'STRICT', protocol: 'http2' }, async (req, res) => {
    const peer = getPeer(req);
    seen.push({
      path: req.url,
      httpVersion: req.httpVersion,
      stream: req.stream !== undefined,
      client: peer.id?.toString() ?? null,
      alpn: peer.alpn,
      serial: peer.certificate?.serialNumber,
    });
    await hold?.(req.url);
    // A server that tries to tell the client who it is: the client must not believe it.
    res.setHeader(PEER_ID_HEADER, 'spiffe://cluster.local/ns/evil/sa/spoofed');
    res.end(`hello ${req.url}`);
  });
  server.on('session', () => sessions++);
  const { port } = await listen(server);
  return { port, seen, sessions: () => sessions, server };
}

function dispatcherFor(
  identity: IdentitySource,
  options: { allowH2?: boolean; expect?: string; onPeer?: (peer: Peer) => void; connections?: number } = {},
): MtlsDispatcher {
  const dispatcher = createMtlsDispatcher({
    identity,
    destinations: { '*': { expect: options.expect ?? BOARDS } },
    ...(options.allowH2 === undefined ? {} : { allowH2: options.allowH2 }),
    ...(options.onPeer === undefined ? {} : { onPeer: options.onPeer }),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
  });
  onCleanup(() => dispatcher.destroy());
  return dispatcher;
}

const causeOf = (err: unknown): SidecarlessError => {
  const cause = (err as Error).cause;
  if (!isSidecarlessError(cause)) throw err;
  return cause;
};

describe('createMtlsDispatcher with allowH2', () => {
  it('speaks h2 to an HTTP/2 server: streams multiplexed on one connection, the verified peer on every response', async () => {
    const server = await h2Server(ca.identity('/ns/demo/sa/boards'));
    const peers: Peer[] = [];
    const dispatcher = dispatcherFor(ca.identity('/ns/demo/sa/app-ui'), {
      allowH2: true,
      onPeer: (peer) => peers.push(peer),
    });
    // The first response tells undici the connection speaks h2; then it multiplexes.
    expect(
      await (await undiciFetch(`http://127.0.0.1:${server.port}/items/first`, { dispatcher })).text(),
    ).toBe('hello /items/first');
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        undiciFetch(`http://127.0.0.1:${server.port}/items/${i}`, { dispatcher }),
      ),
    );
    for (const [i, res] of responses.entries()) {
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`hello /items/${i}`);
      // The server's own header is gone; ours names the server the handshake authenticated.
      expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    }
    expect(server.seen).toHaveLength(9);
    for (const seen of server.seen) {
      expect(seen).toMatchObject({ httpVersion: '2.0', stream: true, client: UI, alpn: 'h2' });
    }
    // Eight requests at once, one HTTP/2 session: the streams shared it.
    expect(server.sessions()).toBe(1);
    expect(peers.map((p) => [p.id?.toString(), p.mtls, p.alpn])).toEqual(
      Array.from({ length: 9 }, () => [BOARDS, true, 'h2']),
    );
    const [edge] = dispatcher.describe().edges;
    expect(edge).toMatchObject({ peer: BOARDS, requests: 9, mtlsRequests: 9, refusals: 0 });
  });

  it('without allowH2 the same server is spoken to in HTTP/1.1 (ALPN http/1.1)', async () => {
    const server = await h2Server(ca.identity('/ns/demo/sa/boards'));
    for (const allowH2 of [undefined, false]) {
      const dispatcher = dispatcherFor(
        ca.identity('/ns/demo/sa/app-ui'),
        allowH2 === undefined ? {} : { allowH2 },
      );
      const res = await undiciFetch(`http://127.0.0.1:${server.port}/one`, { dispatcher });
      expect(await res.text()).toBe('hello /one');
      expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    }
    expect(server.seen.map((s) => [s.httpVersion, s.stream, s.alpn])).toEqual([
      ['1.1', false, 'http/1.1'],
      ['1.1', false, 'http/1.1'],
    ]);
  });

  it('offers ALPN h2 and http/1.1 only with allowH2: true, http/1.1 alone otherwise', async () => {
    const offered: string[][] = [];
    const server = https.createServer(
      {
        ...pemOf(ca.issue('/ns/demo/sa/boards')),
        ALPNCallback: ({ protocols }) => {
          offered.push(protocols);
          return 'http/1.1';
        },
      },
      (_req, res) => res.end('ok'),
    );
    const { port } = await listen(server);
    for (const allowH2 of [true, false, undefined]) {
      const dispatcher = dispatcherFor(
        ca.identity('/ns/demo/sa/app-ui'),
        allowH2 === undefined ? {} : { allowH2 },
      );
      const res = await undiciFetch(`https://127.0.0.1:${port}/`, { dispatcher });
      expect(await res.text()).toBe('ok');
      expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    }
    expect(offered).toEqual([['h2', 'http/1.1'], ['http/1.1'], ['http/1.1']]);
  });

  it('refuses an HTTP/2 server with the wrong SPIFFE ID before any stream is opened', async () => {
    const server = await h2Server(ca.identity('/ns/demo/sa/boards'));
    const dispatcher = dispatcherFor(ca.identity('/ns/demo/sa/app-ui'), {
      allowH2: true,
      expect: 'spiffe://cluster.local/ns/demo/sa/orders',
    });
    const err = await undiciFetch(`http://127.0.0.1:${server.port}/secret`, { dispatcher }).then(
      () => undefined,
      causeOf,
    );
    expect(err?.code).toBe('ERR_PEER_ID_MISMATCH');
    expect(err?.message).toContain(BOARDS);
    expect(server.seen).toEqual([]);
    expect(server.sessions()).toBe(0);
  });

  it('a server that does not trust the client refuses it over h2 too: ERR_REFUSED_BY_SERVER', async () => {
    const server = await h2Server(ca.identity('/ns/demo/sa/boards'));
    // A partner workload that trusts our servers, but our server does not trust the partner.
    const client = fixedIdentity(
      partner.issue('/ns/shop/sa/orders'),
      BundleSet.of(partner.bundle(), ca.bundle()),
    );
    const dispatcher = dispatcherFor(client, { allowH2: true });
    const err = await undiciFetch(`http://127.0.0.1:${server.port}/`, { dispatcher }).then(
      () => undefined,
      causeOf,
    );
    expect(err?.code).toBe('ERR_REFUSED_BY_SERVER');
    expect(server.seen).toEqual([]);
  });

  it('a reset of an h2 connection that has answered is no refusal: the next request reconnects', async () => {
    const server = await h2Server(ca.identity('/ns/demo/sa/boards'));
    // A TCP relay in front of the server, so the test can reset the client's connection.
    const relayed: net.Socket[] = [];
    const relay = net.createServer((socket) => {
      relayed.push(socket);
      const upstream = net.connect(server.port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => {});
      upstream.on('error', () => {});
      socket.on('close', () => upstream.destroy());
    });
    const { port } = await listen(relay as unknown as tls.Server);
    const rejects: unknown[] = [];
    const onReject = (event: unknown) => rejects.push(event);
    diagnostics.subscribe(channels.clientReject, onReject);
    onCleanup(() => diagnostics.unsubscribe(channels.clientReject, onReject));
    const dispatcher = dispatcherFor(ca.identity('/ns/demo/sa/app-ui'), { allowH2: true });
    for (const path of ['/a', '/b']) {
      const res = await undiciFetch(`http://127.0.0.1:${port}${path}`, { dispatcher });
      expect(await res.text()).toBe(`hello ${path}`);
    }
    const closed = once(relayed[0] as net.Socket, 'close');
    (relayed[0] as net.Socket).resetAndDestroy();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const res = await undiciFetch(`http://127.0.0.1:${port}/c`, { dispatcher });
    expect(await res.text()).toBe('hello /c');
    expect(relayed).toHaveLength(2);
    expect(rejects).toEqual([]);
    expect(dispatcher.describe().edges[0]).toMatchObject({ requests: 3, refusals: 0, lastRefusal: null });
  });

  it('rotation under h2 load: SVIDs and roots rotate on both sides with 0 failed requests', async () => {
    let serverSvid = ca.issue('/ns/demo/sa/boards');
    let clientSvid = ca.issue('/ns/demo/sa/app-ui');
    const serverIdentity = mutableIdentity(serverSvid, ca.bundles());
    const clientIdentity = mutableIdentity(clientSvid, ca.bundles());
    const server = await h2Server(serverIdentity);
    const dispatcher = dispatcherFor(clientIdentity, { allowH2: true });
    const failures: string[] = [];
    let done = 0;
    let running = true;
    const deadline = Date.now() + 15_000;
    const worker = async (w: number) => {
      for (let n = 0; running && Date.now() < deadline; n++) {
        try {
          const res = await undiciFetch(`http://127.0.0.1:${server.port}/${w}/${n}`, { dispatcher });
          const body = await res.text();
          if (body !== `hello /${w}/${n}` || res.headers.get(PEER_ID_HEADER) !== BOARDS)
            failures.push(`${w}/${n}: ${res.status} ${body} ${res.headers.get(PEER_ID_HEADER)}`);
        } catch (err) {
          failures.push(`${w}/${n}: ${(err as Error).message} ${((err as Error).cause as Error)?.message}`);
        }
        done++;
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    const answered = async (n: number) => {
      while (done < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
    };
    for (let i = 1; i <= 12; i++) {
      await answered(i * 10);
      if (i % 4 === 0) {
        // A new root: both sides get the new bundle before either presents an SVID under it.
        ca.rotateRoot();
        clientIdentity.update({ bundles: ca.bundles() });
        serverIdentity.update({ bundles: ca.bundles() });
      }
      clientSvid = ca.issue('/ns/demo/sa/app-ui');
      serverSvid = ca.issue('/ns/demo/sa/boards');
      clientIdentity.update({ svid: clientSvid });
      serverIdentity.update({ svid: serverSvid });
    }
    await answered(13 * 10);
    running = false;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(done).toBeGreaterThanOrEqual(130);
    expect(server.seen.every((s) => s.httpVersion === '2.0' && s.client === UI)).toBe(true);
    // A new connection after the rotations: both ends present their latest SVIDs, under the new root.
    const serials: (string | undefined)[] = [];
    const fresh = dispatcherFor(clientIdentity, {
      allowH2: true,
      onPeer: (p) => serials.push(p.certificate?.serialNumber),
    });
    const res = await undiciFetch(`http://127.0.0.1:${server.port}/fresh`, { dispatcher: fresh });
    expect(await res.text()).toBe('hello /fresh');
    expect(serials).toEqual([serverSvid.leaf.serialNumber]);
    expect(server.seen.at(-1)).toMatchObject({
      path: '/fresh',
      httpVersion: '2.0',
      serial: clientSvid.leaf.serialNumber,
    });
  });

  it('a bundle change retires an h2 connection whose server no longer verifies, after its streams end', async () => {
    // A partner server our client trusts at first; it trusts our client.
    const latch = createLatch();
    const server = await h2Server(
      fixedIdentity(partner.issue('/ns/shop/sa/orders'), BundleSet.of(partner.bundle(), ca.bundle())),
      (path) => (path === '/slow' ? latch.wait() : undefined),
    );
    const identity = mutableIdentity(
      ca.issue('/ns/demo/sa/app-ui'),
      BundleSet.of(ca.bundle(), partner.bundle()),
    );
    const dispatcher = dispatcherFor(identity, { allowH2: true, expect: '*' });
    const get = (path: string) => undiciFetch(`http://127.0.0.1:${server.port}${path}`, { dispatcher });
    expect(await (await get('/first')).text()).toBe('hello /first');

    // The partner's trust domain leaves our bundles while a stream is in flight...
    const inflight = get('/slow');
    await latch.reached();
    identity.update({ bundles: BundleSet.of(ca.bundle()) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    latch.release();
    // ...which is not cut,
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.headers.get(PEER_ID_HEADER)).toBe('spiffe://partner.example/ns/shop/sa/orders');
    expect(await res.text()).toBe('hello /slow');
    // ...and then the connection is closed: a new one must verify, and the partner no longer does.
    const err = await get('/after').then(() => undefined, causeOf);
    expect(err?.code).toMatch(/^ERR_SVID_/);
    expect(server.seen.map((s) => s.path)).toEqual(['/first', '/slow']);
    expect(server.sessions()).toBe(1);
  });

  it('allowH2 must be a boolean', () => {
    for (const allowH2 of ['yes', 1, null]) {
      let err: unknown;
      try {
        createMtlsDispatcher({
          identity: ca.identity('/ns/demo/sa/app-ui'),
          destinations: { '*': { expect: BOARDS } },
          allowH2: allowH2 as unknown as boolean,
        });
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ERR_OPTION_INVALID', detail: { field: 'allowH2' } });
    }
  });
});
