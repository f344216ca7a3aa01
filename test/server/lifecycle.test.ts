import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  createLocalCa,
  createMtlsServer,
  getPeer,
  type MtlsServerOptions,
  type RejectEvent,
  type ServerProtocol,
} from '../../src/index.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import {
  agentRequest,
  type ClientCredentials,
  closed,
  createLatch,
  credentialsOf,
  keepAliveAgent,
  listen,
  mtlsRequest,
  onCleanup,
  plainKeepAliveAgent,
  record,
  tlsExchange,
} from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
// Same trust domain, another key: its SVIDs must be refused.
const rogue = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(async () => {
  await Promise.all([ca.close(), rogue.close()]);
});

const SERVER_ID = 'spiffe://cluster.local/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const ui = credentialsOf(ca.issue(UI));
const intruder = credentialsOf(rogue.issue(UI));
const PROTOCOLS = ['http1', 'http2', 'tls'] as const;

type Latch = ReturnType<typeof createLatch>;

/** A server of `protocol` answering `hello <peer>`; `/slow` (any connection under 'tls') waits for `latch`. */
function makeServer(
  protocol: ServerProtocol,
  options: Omit<MtlsServerOptions, 'protocol'>,
  latch?: Latch,
  finished?: () => void,
) {
  if (protocol === 'tls') {
    return createMtlsServer({ ...options, protocol }, async (socket, peer) => {
      socket.resume(); // read to the client's FIN, so the connection can close
      socket.once('finish', () => finished?.());
      await latch?.wait();
      socket.end(`hello ${peer.id}`);
    });
  }
  const handler = async (
    req: { url?: string | undefined },
    res: { end(body: string): void; once(event: 'finish', l: () => void): unknown },
  ) => {
    res.once('finish', () => finished?.());
    if (req.url === '/slow') await latch?.wait();
    res.end(`hello ${getPeer(req).id}`);
  };
  return protocol === 'http2'
    ? createMtlsServer({ ...options, protocol }, handler)
    : createMtlsServer({ ...options, protocol }, handler);
}

/** An HTTP/2 session (h2 over mTLS or TLS, or h2c with prior knowledge); destroyed after the test. */
function h2Session(port: number, client: ClientCredentials | undefined, scheme: 'https' | 'http' = 'https') {
  const session = http2.connect(`${scheme}://127.0.0.1:${port}`, {
    ...(client ?? {}),
    ca: ca.bundle().toPem(),
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => {});
  onCleanup(() => session.destroy());
  return session;
}

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      body += d;
    });
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}

/** One mTLS call in the server's protocol: the body, or a rejection when refused. */
async function call(protocol: ServerProtocol, port: number, path = '/'): Promise<string> {
  if (protocol === 'http1') return (await mtlsRequest(port, path, ui, ca.bundle())).body;
  if (protocol === 'http2') {
    const session = h2Session(port, ui);
    const failed = once(session, 'error').then(([err]) => Promise.reject(err));
    const { body } = await Promise.race([h2Get(session, path), failed]);
    session.close();
    return body;
  }
  const { data, error } = await tlsExchange(port, { ...ui, ca: ca.bundle().toPem() });
  if (data === '') throw new Error(`refused: ${error ?? 'closed'}`);
  return data;
}

/** Closes the server after the test (for servers not started with listen()). */
function closeAfter(server: net.Server): void {
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
        setTimeout(resolve, 2000).unref();
      }),
  );
}

describe.each(PROTOCOLS)('%s: the returned server', (protocol) => {
  it('listens with listen(0), reports address() and emits listening', async () => {
    const server = makeServer(protocol, { identity: ca.identity('/ns/demo/sa/boards') });
    const listening = vi.fn();
    server.on('listening', listening);
    expect(server.address()).toBeNull();
    expect(server.describe().address).toBeNull();
    server.listen(0);
    closeAfter(server);
    await once(server, 'listening');
    expect(listening).toHaveBeenCalledTimes(1);
    const address = server.address() as AddressInfo;
    expect(address.port).toBeGreaterThan(0);
    expect(server.describe().address).toEqual(address);
    expect(await call(protocol, address.port)).toBe(`hello ${UI}`);
  });

  it("emits 'error' EADDRINUSE on a taken port", async () => {
    const { port } = await listen(makeServer(protocol, { identity: ca.identity('/ns/demo/sa/boards') }));
    const second = makeServer(protocol, { identity: ca.identity('/ns/demo/sa/boards') });
    onCleanup(() => second.close());
    second.listen(port, '127.0.0.1');
    const [err] = await once(second, 'error');
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    expect(second.listening).toBe(false);
    expect(await call(protocol, port)).toBe(`hello ${UI}`); // the first one is untouched
  });

  it('close() drains: the request in flight completes, then the callback and close fire', async () => {
    const latch = createLatch();
    onCleanup(() => latch.release());
    const order: string[] = [];
    const server = makeServer(protocol, { identity: ca.identity('/ns/demo/sa/boards') }, latch, () =>
      order.push('response finished'),
    );
    server.listen(0, '127.0.0.1');
    closeAfter(server);
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const inflight = call(protocol, port, '/slow');
    await latch.reached();
    const closeEvent = once(server, 'close');
    server.close(() => order.push('close callback'));
    await expect(call(protocol, port)).rejects.toThrow(/ECONNREFUSED/);
    expect(order).toEqual([]);
    latch.release();
    expect(await inflight).toBe(`hello ${UI}`);
    await closeEvent;
    expect(order).toEqual(['response finished', 'close callback']);
  });
});

describe.each(['http1', 'http2'] as const)('%s: close()', (protocol) => {
  it('does not wait for idle keep-alive connections', async () => {
    const server = makeServer(protocol, {
      identity: ca.identity('/ns/demo/sa/boards'),
      keepAliveTimeout: 30_000,
    });
    const { port } = await listen(server);
    if (protocol === 'http1') {
      expect((await agentRequest(keepAliveAgent(ui, ca.bundle()), port, '/')).status).toBe(200);
    } else {
      expect((await h2Get(h2Session(port, ui), '/')).status).toBe(200);
    }
    const closedCallback = vi.fn();
    server.close(closedCallback);
    await vi.waitFor(() => expect(closedCallback).toHaveBeenCalledTimes(1), { timeout: 5000 });
  });
});

describe('describe()', () => {
  const authorize = { '/admin': UI, '*': ['*', 'unauthenticated'] };

  function identity() {
    const svid = ca.issue(SERVER_ID);
    const source = mutableIdentity(svid, ca.bundles());
    onCleanup(() => source.close());
    return { source, notAfter: svid.notAfter };
  }

  /** A client whose certificate is refused: counted as a refusal, never as a connection. */
  async function refused(port: number): Promise<void> {
    const { data } = await tlsExchange(port, {
      ...intruder,
      ca: ca.bundle().toPem(),
      send: 'GET / HTTP/1.1\r\n\r\n',
    });
    expect(data).toBe('');
  }

  it('http1 PERMISSIVE: counts mTLS, TLS-without-identity and plaintext connections, refusals and denials', async () => {
    const { source, notAfter } = identity();
    const server = makeServer('http1', { identity: source, mode: 'PERMISSIVE', authorize });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    expect((await agentRequest(keepAliveAgent(ui, ca.bundle()), port, '/')).body).toBe(`hello ${UI}`);
    expect((await agentRequest(keepAliveAgent(undefined, ca.bundle()), port, '/')).body).toBe('hello null');
    const plain = plainKeepAliveAgent();
    expect((await agentRequest(plain, port, '/')).body).toBe('hello null');
    expect((await agentRequest(plain, port, '/admin')).status).toBe(403);
    await refused(port);
    await vi.waitFor(() =>
      expect(server.describe()).toEqual({
        address: server.address(),
        mode: 'PERMISSIVE',
        protocol: 'http1',
        id: SERVER_ID,
        notAfter,
        trustDomains: ['cluster.local'],
        connections: { mtls: 1, tlsWithoutIdentity: 1, plaintext: 1 },
        totals: { mtls: 1, tlsWithoutIdentity: 1, plaintext: 1, rejected: 1, denied: 1, aborted: 0 },
        edges: expect.any(Array), // test/observe/edges.test.ts
      }),
    );
    expect(rejects).toHaveLength(1);
  });

  it('http2 PERMISSIVE: counts h2 over mTLS, h2 over TLS and h2c sessions, refusals and denials', async () => {
    const { source, notAfter } = identity();
    const server = makeServer('http2', { identity: source, mode: 'PERMISSIVE', authorize });
    const { port } = await listen(server);
    expect((await h2Get(h2Session(port, ui), '/')).body).toBe(`hello ${UI}`);
    expect((await h2Get(h2Session(port, undefined), '/')).body).toBe('hello null');
    const h2c = h2Session(port, undefined, 'http');
    expect((await h2Get(h2c, '/')).body).toBe('hello null');
    expect((await h2Get(h2c, '/admin')).status).toBe(403);
    await refused(port);
    await vi.waitFor(() =>
      expect(server.describe()).toEqual({
        address: server.address(),
        mode: 'PERMISSIVE',
        protocol: 'http2',
        id: SERVER_ID,
        notAfter,
        trustDomains: ['cluster.local'],
        connections: { mtls: 1, tlsWithoutIdentity: 1, plaintext: 1 },
        totals: { mtls: 1, tlsWithoutIdentity: 1, plaintext: 1, rejected: 1, denied: 1, aborted: 0 },
        edges: expect.any(Array), // test/observe/edges.test.ts
      }),
    );
  });

  it('tls STRICT: counts mTLS connections, refusals and peers the matcher denies', async () => {
    const { source, notAfter } = identity();
    const server = createMtlsServer({ identity: source, protocol: 'tls', authorize: UI }, (socket) => {
      socket.write('hello\n'); // and keep the connection open
    });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const client = tls.connect({
      host: '127.0.0.1',
      port,
      ...ui,
      ca: ca.bundle().toPem(),
      checkServerIdentity: () => undefined,
    });
    onCleanup(() => client.destroy());
    await once(client, 'data');
    const other = credentialsOf(ca.issue('/ns/demo/sa/other'));
    expect((await tlsExchange(port, { ...other, ca: ca.bundle().toPem() })).data).toBe('');
    await refused(port);
    const plain = net.connect(port, '127.0.0.1', () => plain.write('GET / HTTP/1.1\r\n\r\n'));
    plain.on('error', () => {});
    await closed(plain);
    await vi.waitFor(() =>
      expect(server.describe()).toEqual({
        address: server.address(),
        mode: 'STRICT',
        protocol: 'tls',
        id: SERVER_ID,
        notAfter,
        trustDomains: ['cluster.local'],
        connections: { mtls: 1, tlsWithoutIdentity: 0, plaintext: 0 },
        // The denied peer passed the handshake (mtls: 2) and was then closed (rejected and denied).
        totals: { mtls: 2, tlsWithoutIdentity: 0, plaintext: 0, rejected: 3, denied: 1, aborted: 0 },
        edges: expect.any(Array), // test/observe/edges.test.ts
      }),
    );
    expect(rejects.map((r) => r.reason).sort()).toEqual([
      'ERR_NOT_AUTHORIZED',
      'ERR_PLAINTEXT_REFUSED',
      'ERR_SVID_UNTRUSTED',
    ]);
  });
});
