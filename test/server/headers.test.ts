// Header hygiene (issue 9, finding 5): a caller's x-sidecarless-peer-id never reaches a listener,
// in any form a framework reads (headers, headersDistinct, rawHeaders, trailers, HTTP/2 headers
// and raw headers), and x-forwarded-client-cert follows Envoy's forward_client_cert_details.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, RequestListener } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { type HttpBindings, serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsServer,
  type ForwardClientCert,
  type MtlsServerOptions,
  type Peer,
} from '../../src/index.js';
import { forwardedClientCert, xfccElement } from '../../src/server/headers.js';
import { fakePeer } from '../../src/testing/index.js';
import { credentialsOf, listen, onCleanup } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const identity = ca.identity('/ns/demo/sa/boards');
const uiSvid = ca.issue('/ns/demo/sa/app-ui');
const ui = credentialsOf(uiSvid);
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const HASH = createHash('sha256').update(uiSvid.leaf.raw).digest('hex');
const OURS = `By=${BOARDS};Hash=${HASH};Subject="O=sidecarless";URI=${UI}`;

/** Everything a framework can read of the identity headers of one request. */
interface Seen {
  headers: unknown;
  distinct: unknown;
  raw: string[];
  trailers?: unknown;
}

function identityView(req: IncomingMessage): Seen {
  const pick = (o: Record<string, unknown>) => ({
    peer: o['x-sidecarless-peer-id'] ?? null,
    xfcc: o['x-forwarded-client-cert'] ?? null,
  });
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] as string).toLowerCase();
    if (name === 'x-sidecarless-peer-id' || name === 'x-forwarded-client-cert') {
      raw.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
  }
  return {
    headers: pick(req.headers as Record<string, unknown>),
    distinct: pick(req.headersDistinct as Record<string, unknown>),
    raw,
  };
}

/** A raw HTTP/1.1 request over mTLS with the two headers sent twice (and in mixed case). */
function send(port: number, path = '/echo'): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: ca.bundle().toPem(),
      ...ui,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    let text = '';
    socket.once('secureConnect', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nhost: boards\r\nX-Sidecarless-Peer-Id: spiffe://cluster.local/ns/ops/sa/admin\r\n` +
          'x-sidecarless-peer-id: spiffe://evil\r\nX-Forwarded-Client-Cert: By=spiffe://x;URI=spiffe://cluster.local/ns/ops/sa/admin\r\nconnection: close\r\n\r\n',
      ),
    );
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('close', () => resolve(text.slice(text.indexOf('\r\n\r\n') + 4)));
  });
}

type Http1Options = MtlsServerOptions & { readonly protocol?: 'http1' };

const frameworks: Record<string, (options: Http1Options) => Promise<number>> = {
  async express(options) {
    const app = express();
    app.get('/echo', (req, res) => res.json(identityView(req)));
    return (await listen(createMtlsServer(options, app))).port;
  },
  async fastify(options) {
    const app = Fastify({ serverFactory: (handler) => createMtlsServer(options, handler) });
    app.get('/echo', async (request) => identityView(request.raw));
    await app.listen({ port: 0, host: '127.0.0.1' });
    onCleanup(() => app.close());
    return (app.server.address() as AddressInfo).port;
  },
  async hono(options) {
    const app = new Hono<{ Bindings: HttpBindings }>();
    // Hono builds its Request from rawHeaders.
    app.get('/echo', (c) =>
      c.json({
        ...identityView(c.env.incoming),
        hono: {
          peer: c.req.header('x-sidecarless-peer-id') ?? null,
          xfcc: c.req.header('x-forwarded-client-cert') ?? null,
        },
      }),
    );
    const server = serve({
      fetch: app.fetch,
      createServer: (_opts?: unknown, listener?: RequestListener) => createMtlsServer(options, listener),
      port: 0,
      hostname: '127.0.0.1',
    });
    await once(server, 'listening');
    onCleanup(() => new Promise((resolve) => server.close(resolve)));
    return (server.address() as AddressInfo).port;
  },
};

describe.each(Object.keys(frameworks))('%s behind createMtlsServer', (name) => {
  const start = frameworks[name] as (options: Http1Options) => Promise<number>;

  it('never sees a caller-sent x-sidecarless-peer-id or x-forwarded-client-cert (default: sanitize)', async () => {
    const seen = JSON.parse(await send(await start({ identity })));
    expect(seen).toMatchObject({
      headers: { peer: null, xfcc: null },
      distinct: { peer: null, xfcc: null },
      raw: [],
    });
    if (name === 'hono') expect(seen.hono).toEqual({ peer: null, xfcc: null });
  });

  it("sees only the server's own XFCC element with sanitize-set, and the caller's plus ours with append-forward", async () => {
    const set = JSON.parse(await send(await start({ identity, forwardClientCert: 'sanitize-set' })));
    expect(set).toMatchObject({
      headers: { peer: null, xfcc: OURS },
      distinct: { peer: null, xfcc: [OURS] },
      raw: [`x-forwarded-client-cert: ${OURS}`],
    });
    const appended = JSON.parse(await send(await start({ identity, forwardClientCert: 'append-forward' })));
    const chain = `By=spiffe://x;URI=spiffe://cluster.local/ns/ops/sa/admin,${OURS}`;
    expect(appended).toMatchObject({
      headers: { peer: null, xfcc: chain },
      raw: [`x-forwarded-client-cert: ${chain}`],
    });
    if (name === 'hono') expect(appended.hono).toEqual({ peer: null, xfcc: chain });
  });
});

describe('trailers and HTTP/2', () => {
  it('removes the headers from HTTP/1.1 trailers', async () => {
    let trailers: unknown;
    const server = createMtlsServer({ identity }, (req, res) => {
      req.resume();
      req.on('end', () => {
        trailers = { ...req.trailers, raw: req.rawTrailers };
        res.end('ok');
      });
    });
    const { port } = await listen(server);
    await new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: ca.bundle().toPem(),
        ...ui,
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () =>
        socket.write(
          'POST /x HTTP/1.1\r\nhost: b\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n2\r\nhi\r\n0\r\nx-sidecarless-peer-id: spiffe://evil\r\nx-other: kept\r\n\r\n',
        ),
      );
      socket.resume();
      socket.on('close', () => resolve());
    });
    expect(trailers).toEqual({ 'x-other': 'kept', raw: ['x-other', 'kept'] });
  });

  it('removes them from HTTP/2 headers, raw headers and trailers, and shows the normalised :path', async () => {
    let seen: unknown;
    const server = createMtlsServer({ identity, protocol: 'http2' });
    server.on('session', (session) =>
      session.on(
        'stream',
        (
          stream: http2.ServerHttp2Stream,
          headers: http2.IncomingHttpHeaders,
          _flags: number,
          rawHeaders: string[],
        ) => {
          const trailers: unknown[] = [];
          stream.on('trailers', (t: http2.IncomingHttpHeaders) => trailers.push({ ...t }));
          stream.resume();
          stream.on('end', () => {
            seen = {
              path: headers[':path'],
              peer: headers['x-sidecarless-peer-id'],
              raw: rawHeaders,
              trailers,
            };
            stream.respond({ ':status': 200 });
            stream.end();
          });
        },
      ),
    );
    const { port } = await listen(server);
    await new Promise<void>((resolve) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, {
        ca: ca.bundle().toPem(),
        ...ui,
        checkServerIdentity: () => undefined,
      });
      onCleanup(() => session.destroy());
      const req = session.request(
        { ':method': 'POST', ':path': '//a/./b?q=1', 'x-sidecarless-peer-id': 'spiffe://evil' },
        { waitForTrailers: true },
      );
      req.on('wantTrailers', () =>
        req.sendTrailers({ 'x-sidecarless-peer-id': 'spiffe://evil', 'x-other': 'kept' }),
      );
      req.end('body');
      req.resume();
      req.on('end', () => resolve());
    });
    const s = seen as { path: string; peer: unknown; raw: string[]; trailers: Record<string, unknown>[] };
    expect(s.path).toBe('/a/b?q=1');
    expect(s.peer).toBeUndefined();
    expect(s.raw.filter((_, i) => i % 2 === 0)).not.toContain('x-sidecarless-peer-id');
    expect(s.raw[s.raw.indexOf(':path') + 1]).toBe('/a/b?q=1');
    expect(s.trailers).toMatchObject([{ 'x-other': 'kept' }]);
    expect(s.trailers[0]).not.toHaveProperty('x-sidecarless-peer-id');
  });
});

describe('forwardedClientCert (pure)', () => {
  const mtls = fakePeer(UI);
  const plaintext = fakePeer(null);
  const tlsOnly = fakePeer({ tls: true });
  const incoming = 'By=spiffe://x;URI=spiffe://y';

  it.each<[ForwardClientCert, Peer, string | undefined]>([
    ['sanitize', mtls, undefined],
    ['forward-only', mtls, incoming],
    ['sanitize-set', mtls, 'ours'],
    ['append-forward', mtls, `${incoming},ours`],
    ...(['sanitize', 'forward-only', 'sanitize-set', 'append-forward'] as const).flatMap(
      (mode): [ForwardClientCert, Peer, undefined][] => [
        [mode, plaintext, undefined],
        [mode, tlsOnly, undefined],
      ],
    ),
  ])('%s for %o: %s', (mode, peer, want) => {
    const got = forwardedClientCert(mode, peer, incoming, BOARDS);
    expect(got === undefined ? undefined : got.replace(xfccElement(peer, BOARDS), 'ours')).toBe(want);
  });

  it('quotes as Envoy does: the Subject always, other values when they hold a separator', () => {
    const element = xfccElement(fakePeer(UI), 'spiffe://td/s;1');
    expect(element).toMatch(/^By="spiffe:\/\/td\/s;1";/);
    expect(element).toMatch(/;Subject="[^"]*";URI=spiffe:\/\/cluster\.local\/ns\/demo\/sa\/app-ui$/);
  });
});
