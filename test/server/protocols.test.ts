import diagnostics from 'node:diagnostics_channel';
import http2 from 'node:http2';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  channels,
  createLocalCa,
  createMtlsServer,
  getPeer,
  type PeerEvent,
  type RejectEvent,
} from '../../src/index.js';
import { thrownBy } from '../helpers/expect-code.js';
import { credentialsOf, listen, mtlsRequest, plainRequest, record, run } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const identity = ca.identity('/ns/demo/sa/boards');
const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
const ops = credentialsOf(ca.issue('/ns/ops/sa/admin'));

function h2Request(url: string, path: string, client?: { cert: string; key: string }) {
  const session = http2.connect(url, {
    ...(client ?? {}),
    ca: ca.bundle().toPem(),
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => {});
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', (d) => {
      body += d;
    });
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    stream.on('error', (err) => {
      session.destroy();
      reject(err);
    });
  });
}

describe('protocol http2', () => {
  function start(mode: 'STRICT' | 'PERMISSIVE') {
    const server = createMtlsServer({ identity, mode, protocol: 'http2' }, (req, res) => {
      const peer = getPeer(req);
      // The same peer through the stream and its session (a session's socket is a proxy).
      const viaStream = 'stream' in req ? getPeer(req.stream).id : peer.id;
      res.end(
        JSON.stringify({
          version: req.httpVersion,
          id: peer.id?.toString() ?? null,
          same: viaStream === peer.id,
          tls: peer.tls,
        }),
      );
    });
    return server;
  }

  it('serves h2 over mTLS with the peer per session, and HTTP/1.1 by ALPN', async () => {
    const { port } = await listen(start('STRICT'));
    const h2 = JSON.parse((await h2Request(`https://127.0.0.1:${port}`, '/x', ui)).body);
    expect(h2).toEqual({
      version: '2.0',
      id: 'spiffe://cluster.local/ns/demo/sa/app-ui',
      same: true,
      tls: true,
    });
    const h1 = JSON.parse((await mtlsRequest(port, '/x', ui, ca.bundle())).body);
    expect(h1).toMatchObject({ version: '1.1', id: 'spiffe://cluster.local/ns/demo/sa/app-ui' });
  });

  it('STRICT refuses h2c and plaintext HTTP/1.1 with a reset', async () => {
    const server = start('STRICT');
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    await expect(h2Request(`http://127.0.0.1:${port}`, '/x')).rejects.toThrow();
    expect((await run('curl', ['-sS', `http://127.0.0.1:${port}/x`])).code).toBe(56);
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_PLAINTEXT_REFUSED', 'ERR_PLAINTEXT_REFUSED']);
  });

  it('PERMISSIVE serves h2c with prior knowledge and plaintext HTTP/1.1 on the same port', async () => {
    const { port } = await listen(start('PERMISSIVE'));
    expect(JSON.parse((await h2Request(`http://127.0.0.1:${port}`, '/x')).body)).toMatchObject({
      version: '2.0',
      id: null,
      tls: false,
    });
    expect(JSON.parse((await plainRequest(port, '/x')).body)).toMatchObject({
      version: '1.1',
      id: null,
      tls: false,
    });
    expect(JSON.parse((await h2Request(`https://127.0.0.1:${port}`, '/x', ui)).body)).toMatchObject({
      version: '2.0',
      tls: true,
    });
    const curl = await run('curl', ['-sS', '--http2-prior-knowledge', `http://127.0.0.1:${port}/x`]);
    expect(JSON.parse(curl.stdout)).toMatchObject({ version: '2.0', id: null });
  });
});

describe('protocol tls', () => {
  it('hands verified sockets and their peer to the handler; the matcher closes others', async () => {
    const server = createMtlsServer(
      { identity, protocol: 'tls', authorize: 'spiffe://cluster.local/ns/ops/*' },
      (socket, peer) => socket.end(`hello ${peer.id}\n`),
    );
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const talk = (client: { cert: string; key: string }) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port,
          ...client,
          ca: ca.bundle().toPem(),
          checkServerIdentity: () => undefined,
        });
        let data = '';
        socket.on('data', (d) => {
          data += d;
        });
        socket.on('error', () => {});
        socket.on('close', () => resolve(data));
      });
    expect(await talk(ops)).toBe('hello spiffe://cluster.local/ns/ops/sa/admin\n');
    expect(await talk(ui)).toBe('');
    expect(rejects).toMatchObject([
      { reason: 'ERR_NOT_AUTHORIZED', peer: 'spiffe://cluster.local/ns/demo/sa/app-ui' },
    ]);
    expect((await run('curl', ['-sS', `http://127.0.0.1:${port}/`])).code).toBe(56);
    expect(
      thrownBy(
        () => createMtlsServer({ identity, protocol: 'tls', mode: 'PERMISSIVE' }),
        'ERR_OPTION_INVALID',
      ).detail.field,
    ).toBe('mode');
  });
});

describe('WebSocket upgrade', () => {
  it('works on the mTLS and the plaintext path, with the peer, and is authorized', async () => {
    const server = createMtlsServer({
      identity,
      mode: 'PERMISSIVE',
      authorize: { '/ws/private': 'spiffe://cluster.local/ns/demo/*', '*': ['*', 'unauthenticated'] },
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket, req) =>
      socket.send(`hello ${getPeer(req).id ?? 'plaintext'} at ${req.url}`),
    );
    const { port } = await listen(server);
    const open = (url: string, client?: { cert: string; key: string }) =>
      new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(url, {
          ...(client ?? {}),
          ca: ca.bundle().toPem(),
          // ws types this as returning a boolean; node:tls takes undefined for 'no error'.
          checkServerIdentity: (() => undefined) as never,
        });
        ws.on('message', (m) => {
          ws.close();
          resolve(String(m));
        });
        ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
        ws.on('error', reject);
      });
    expect(await open(`wss://127.0.0.1:${port}/ws/private`, ui)).toBe(
      'hello spiffe://cluster.local/ns/demo/sa/app-ui at /ws/private',
    );
    expect(await open(`ws://127.0.0.1:${port}/ws/public`)).toBe('hello plaintext at /ws/public');
    await expect(open(`ws://127.0.0.1:${port}/ws/private`)).rejects.toThrow('status 403');
    await expect(open(`wss://127.0.0.1:${port}/ws/private`, ops)).rejects.toThrow('status 403');
    wss.close();
  });
});

describe('getPeer, events and diagnostics channels', () => {
  it('getPeer refuses objects no sidecarless server handled', () => {
    expect(thrownBy(() => getPeer({}), 'ERR_NO_PEER').message).toContain('getPeer()');
    expect(thrownBy(() => getPeer(null as never), 'ERR_NO_PEER')).toBeDefined();
  });

  it('emits peer and reject events, and publishes them with the authorization decisions', async () => {
    const published: Record<string, unknown[]> = { peer: [], reject: [], authorization: [] };
    const listeners = Object.fromEntries(
      (['peer', 'reject', 'authorization'] as const).map((name) => [
        name,
        (message: unknown) => published[name]?.push(message),
      ]),
    );
    for (const [name, listener] of Object.entries(listeners))
      diagnostics.subscribe(channels[name as 'peer'], listener);
    try {
      const server = createMtlsServer({ identity, authorize: { '/ok': '*' } }, (_req, res) => res.end('ok'));
      const peers = record<PeerEvent>(server, 'peer');
      const { port } = await listen(server);
      expect((await mtlsRequest(port, '/ok', ui, ca.bundle())).status).toBe(200);
      expect((await mtlsRequest(port, '/nope', ui, ca.bundle())).status).toBe(403);
      await run('curl', ['-sS', `http://127.0.0.1:${port}/`]);
      expect(peers).toHaveLength(2);
      expect(peers[0]).toMatchObject({
        id: 'spiffe://cluster.local/ns/demo/sa/app-ui',
        mtls: true,
        remoteAddress: '127.0.0.1',
      });
      expect(published.peer).toHaveLength(2);
      expect(published.reject).toMatchObject([{ reason: 'ERR_PLAINTEXT_REFUSED' }]);
      expect(published.authorization).toMatchObject([
        { allowed: true, rule: '/ok', path: '/ok' },
        { allowed: false, reason: 'no_matching_rule', path: '/nope' },
      ]);
      // Payloads carry identities and serials, never certificates or keys.
      expect(JSON.stringify(published)).not.toContain('BEGIN');
      expect(server.describe()).toMatchObject({ totals: { mtls: 2, rejected: 1, denied: 1 } });
    } finally {
      for (const [name, listener] of Object.entries(listeners))
        diagnostics.unsubscribe(channels[name as 'peer'], listener);
    }
  });
});
