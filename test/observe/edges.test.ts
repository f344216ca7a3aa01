// Edges over real sockets: a sidecarless server's inbound edges and a sidecarless dispatcher's
// and agent's outbound edges, against each other, with certificates from the test CA.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createMtlsAgent,
  createMtlsDispatcher,
  createMtlsServer,
  type EdgeReport,
  KEY_EXCHANGE_NOT_EXPOSED,
  type MtlsServerOptions,
  staticIdentity,
  UNAUTHENTICATED_SOURCE,
} from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { credentialsOf, listen, mtlsRequest, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const evil = createTestCa(); // same trust domain name, other keys
afterAll(async () => {
  await ca.close();
  await evil.close();
});
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const serverIdentity = ca.identity('/ns/demo/sa/boards');
const uiSvid = ca.issue('/ns/demo/sa/app-ui');
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

async function serve(options: Omit<MtlsServerOptions, 'identity' | 'protocol'> = {}) {
  const server = createMtlsServer({ identity: serverIdentity, ...options, protocol: 'http1' }, (_req, res) =>
    res.end('ok'),
  );
  return listen(server);
}

function edgeOf(edges: readonly EdgeReport[], source: string): EdgeReport {
  const edge = edges.find((e) => e.source === source);
  if (edge === undefined) expect.fail(`no edge from ${source} in ${JSON.stringify(edges)}`);
  return edge;
}

describe('inbound edges (server describe())', () => {
  it('counts a verified caller per request over mTLS, with its TLS version', async () => {
    const { server, port } = await serve({
      authorize: { '/admin': 'spiffe://cluster.local/ns/ops/*', '*': '*' },
    });
    const creds = credentialsOf(uiSvid);
    for (let i = 0; i < 3; i++) {
      expect((await mtlsRequest(port, '/items', creds, ca.bundle())).status).toBe(200);
    }
    const denied = await mtlsRequest(port, '/admin?token=secret', creds, ca.bundle());
    expect(denied.status).toBe(403);
    const edge = edgeOf(server.describe().edges, UI);
    expect(edge).toMatchObject({
      direction: 'inbound',
      destination: BOARDS,
      peer: null,
      requests: 4,
      mtlsRequests: 4,
      mtlsShare: 1,
      refusals: 1,
      tlsVersion: 'TLSv1.3',
      keyExchange: KEY_EXCHANGE_NOT_EXPOSED,
    });
    expect(edge.lastSeen).toBeInstanceOf(Date);
    // The refusal names the normalised path, never the query string.
    expect(edge.lastRefusal).toMatchObject({ reason: 'ERR_NOT_AUTHORIZED' });
    expect(edge.lastRefusal?.message).toContain('GET /admin');
    expect(edge.lastRefusal?.message).not.toContain('secret');
    // Nobody else called.
    expect(server.describe().edges).toHaveLength(1);
  });

  it('counts every unauthenticated caller as one source, whatever its address', async () => {
    const { server, port } = await serve({ mode: 'PERMISSIVE' });
    expect((await plainRequest(port, '/a')).status).toBe(200);
    expect((await plainRequest(port, '/b', { localAddress: '127.0.0.2' })).status).toBe(200);
    expect((await plainRequest(port, '/c', { localAddress: '127.0.0.3' })).status).toBe(200);
    expect((await mtlsRequest(port, '/d', undefined, ca.bundle())).status).toBe(200); // TLS, no certificate
    expect((await mtlsRequest(port, '/e', credentialsOf(uiSvid), ca.bundle())).status).toBe(200);
    const { edges } = server.describe();
    expect(edges.map((e) => e.source).sort()).toEqual([UI, UNAUTHENTICATED_SOURCE].sort());
    expect(edgeOf(edges, UNAUTHENTICATED_SOURCE)).toMatchObject({
      requests: 4,
      mtlsRequests: 0,
      mtlsShare: 0,
    });
    expect(edgeOf(edges, UI)).toMatchObject({ requests: 1, mtlsShare: 1 });
  });

  it('puts a refused certificate on the unauthenticated edge, never under the ID it claims', async () => {
    const { server, port } = await serve();
    const forged = credentialsOf(evil.issue('/ns/demo/sa/app-ui'));
    await expect(mtlsRequest(port, '/x', forged, ca.bundle())).rejects.toThrow();
    // The control: the real workload of that ID gets through on the same server.
    expect((await mtlsRequest(port, '/x', credentialsOf(uiSvid), ca.bundle())).status).toBe(200);
    await until(() => server.describe().totals.rejected >= 1);
    const { edges } = server.describe();
    const anonymous = edgeOf(edges, UNAUTHENTICATED_SOURCE);
    expect(anonymous.refusals).toBe(1);
    expect(anonymous.requests).toBe(0);
    expect(anonymous.lastRefusal?.reason).toMatch(/^ERR_SVID_/);
    expect(edgeOf(edges, UI)).toMatchObject({ requests: 1, refusals: 0, lastRefusal: null });
  });

  it('keeps at most maxEdges edges, dropping the least recently seen', async () => {
    const { server, port } = await serve({ maxEdges: 2 });
    const ids = ['/ns/demo/sa/a', '/ns/demo/sa/b', '/ns/demo/sa/c'];
    const creds = ids.map((path) => credentialsOf(ca.issue(path)));
    for (const c of creds) {
      expect((await mtlsRequest(port, '/', c, ca.bundle())).status).toBe(200);
      await new Promise((r) => setTimeout(r, 5)); // distinct lastSeen
    }
    const sources = server.describe().edges.map((e) => e.source);
    expect(sources).toEqual(['spiffe://cluster.local/ns/demo/sa/c', 'spiffe://cluster.local/ns/demo/sa/b']);
    expect(() => createMtlsServer({ identity: serverIdentity, maxEdges: 0 })).toThrow(/maxEdges/);
  });

  it('counts a raw TLS server connection as a request', async () => {
    const server = createMtlsServer({ identity: serverIdentity, protocol: 'tls' }, (socket) =>
      socket.end('hi'),
    );
    const { port } = await listen(server);
    const { cert, key } = credentialsOf(uiSvid);
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port, cert, key, ca: ca.bundle().toPem(), rejectUnauthorized: false },
        () => socket.resume(),
      );
      socket.on('end', resolve).on('error', reject);
    });
    expect(edgeOf(server.describe().edges, UI)).toMatchObject({ requests: 1, mtlsShare: 1 });
  });
});

describe('outbound edges (dispatcher and agent describe())', () => {
  it('a dispatcher reports per destination its requests, the server ID, TLS version and group', async () => {
    const { server, port } = await serve();
    const dispatcher = createMtlsDispatcher({
      identity: ca.identity('/ns/demo/sa/app-ui'),
      destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    });
    onCleanup(() => dispatcher.destroy());
    for (let i = 0; i < 2; i++) {
      const res = await undiciFetch(`http://127.0.0.1:${port}/items`, { dispatcher });
      expect(await res.text()).toBe('ok');
    }
    const report = dispatcher.describe();
    expect(report.id).toBe(UI);
    expect(report.edges).toHaveLength(1);
    const edge = report.edges[0] as EdgeReport;
    expect(edge).toMatchObject({
      direction: 'outbound',
      source: UI,
      destination: `127.0.0.1:${port}`,
      peer: BOARDS,
      requests: 2,
      mtlsRequests: 2,
      mtlsShare: 1,
      refusals: 0,
      tlsVersion: 'TLSv1.3',
    });
    // Node 24 negotiates the post-quantum hybrid by default; Node 20's OpenSSL has no ML-KEM; Node 22's
    // OpenSSL 3.5 negotiates the hybrid too, but its getEphemeralKeyInfo() returns {} for it.
    if (NODE_MAJOR >= 24) expect(edge.keyExchange).toBe('X25519MLKEM768');
    else if (NODE_MAJOR === 22) expect(edge.keyExchange).toBe(KEY_EXCHANGE_NOT_EXPOSED);
    else expect(edge.keyExchange).toBe('X25519');
    // The server saw the same edge from its side.
    expect(edgeOf(server.describe().edges, UI)).toMatchObject({ requests: 2, destination: BOARDS });
  });

  it('a dispatcher records a server that is not the expected one as a refusal', async () => {
    const { port } = await serve();
    const dispatcher = createMtlsDispatcher({
      identity: ca.identity('/ns/demo/sa/app-ui'),
      destinations: { [`127.0.0.1:${port}`]: { expect: 'spiffe://cluster.local/ns/demo/sa/other' } },
    });
    onCleanup(() => dispatcher.destroy());
    await expect(undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher })).rejects.toThrow();
    const edge = dispatcher.describe().edges[0] as EdgeReport;
    expect(edge).toMatchObject({ destination: `127.0.0.1:${port}`, requests: 0, refusals: 1 });
    expect(edge.lastRefusal?.reason).toBe('ERR_PEER_ID_MISMATCH');
  });

  it('a server that refuses the client shows on the client edge as ERR_REFUSED_BY_SERVER', async () => {
    const { server, port } = await serve();
    const other = createTestCa({ trustDomain: 'other.example' });
    onCleanup(() => other.close());
    // The client trusts the server's trust domain; the server does not trust the client's.
    const identity = staticIdentity({
      svid: other.issue('/ns/demo/sa/app-ui'),
      bundles: [other.bundle(), ca.bundle()],
    });
    const dispatcher = createMtlsDispatcher({
      identity,
      destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    });
    onCleanup(() => dispatcher.destroy());
    await expect(undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher })).rejects.toThrow();
    const edge = dispatcher.describe().edges[0] as EdgeReport;
    expect(edge).toMatchObject({
      source: 'spiffe://other.example/ns/demo/sa/app-ui',
      requests: 0,
      refusals: 1,
    });
    expect(edge.lastRefusal?.reason).toBe('ERR_REFUSED_BY_SERVER');
    // And the server put it on its unauthenticated edge: the ID was not verified.
    await until(() => server.describe().totals.rejected >= 1);
    expect(edgeOf(server.describe().edges, UNAUTHENTICATED_SOURCE).refusals).toBe(1);
  });

  it('an agent reports the same edges for node:https', async () => {
    const { port } = await serve();
    const agent = createMtlsAgent({
      identity: ca.identity('/ns/demo/sa/app-ui'),
      destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    });
    onCleanup(() => agent.close());
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${port}/`, { agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
    }
    expect(agent.describe().edges).toEqual([
      expect.objectContaining({ destination: `127.0.0.1:${port}`, peer: BOARDS, requests: 3, mtlsShare: 1 }),
    ]);
  });
});

async function until(condition: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) expect.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A plaintext GET from a chosen loopback address (another address stands for another client). */
function plainRequest(
  port: number,
  path: string,
  options: { localAddress?: string } = {},
): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false, ...options }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      })
      .on('error', reject);
  });
}
