import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Peer } from '../authz/peer.js';
import { invalidOption } from '../internal/options.js';
import { peerOf, setPeer } from '../tls/peer-registry.js';
import { createAuthorizer, createPeerAuthorizer } from './authorization.js';
import type { Connection } from './connections.js';
import { h2cStream } from './h2c-stream.js';
import { checkServerOptions, type MtlsServerOptions, type ServerSettings } from './options.js';
import { RequestGate } from './requests.js';
import { ServerCore } from './server-core.js';
import {
  type MtlsHttp2Server,
  type MtlsHttpServer,
  type MtlsTlsServer,
  serverExtras,
} from './server-types.js';
import { sniff } from './sniff.js';

type Listener = (this: unknown, ...args: never[]) => void;
type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

/** Takes the listeners Node registered for an event, so only the gate calls them. */
function takeListeners(server: tls.Server | http.Server, event: string): ((socket: unknown) => void)[] {
  const listeners = server.listeners(event) as Listener[];
  server.removeAllListeners(event);
  return listeners.map((l) => (socket: unknown) => (l as (s: unknown) => void).call(server, socket));
}

/**
 * Wraps the server's emit: the listed events go through `intercept` first, so the gates run before
 * every listener, including listeners a framework adds later. Other events pass through.
 */
function interceptEmit(
  server: http.Server | tls.Server,
  intercept: Partial<Record<string, (emit: Emit, ...args: never[]) => boolean>>,
): Emit {
  const original = server.emit.bind(server) as Emit;
  server.emit = ((event: string | symbol, ...args: unknown[]) => {
    const handler = typeof event === 'string' ? intercept[event] : undefined;
    return handler === undefined
      ? original(event, ...args)
      : (handler as (e: Emit, ...a: unknown[]) => boolean)(original, ...args);
  }) as typeof server.emit;
  return original;
}

function rawOf(socket: tls.TLSSocket): Socket {
  // A TLSSocket made from an accepted socket keeps it as _parent (Node 20 and 24).
  return ((socket as unknown as { _parent?: Socket })._parent ?? socket) as Socket;
}

/** Routes a new TCP connection by its first bytes. Shared by every protocol. */
function route(
  core: ServerCore,
  raw: Socket,
  wantH2c: boolean,
  onTls: (raw: Socket) => void,
  onPlain: (raw: Socket, kind: 'http1' | 'h2c') => void,
): void {
  // The raw socket may error (a reset) before or after the protocol layer takes it.
  raw.on('error', () => {});
  const { mode, plaintextPaths, sniffTimeout } = core.settings;
  sniff(
    raw,
    sniffTimeout,
    wantH2c,
    (kind) => {
      if (kind === 'tls') {
        if (mode === 'DISABLE') {
          core.reject(
            raw,
            'sniff',
            'ERR_TLS_REFUSED',
            'TLS is disabled on this listener',
            null,
            null,
            'destroy',
          );
        } else if (core.identity() === undefined) {
          core.reject(
            raw,
            'sniff',
            'ERR_NO_IDENTITY',
            'the server has no identity: mTLS is refused',
            null,
            null,
            'destroy',
          );
        } else {
          onTls(raw);
        }
      } else if (mode === 'STRICT' && plaintextPaths.size === 0) {
        // As a sidecar in STRICT mode: the plaintext client sees "connection reset by peer".
        core.reject(
          raw,
          'sniff',
          'ERR_PLAINTEXT_REFUSED',
          'plaintext is refused: this listener requires mTLS',
          null,
          null,
          'reset',
        );
      } else {
        onPlain(raw, kind);
      }
    },
    () =>
      core.reject(
        raw,
        'sniff',
        'ERR_SNIFF_TIMEOUT',
        `no data within ${sniffTimeout} ms`,
        null,
        null,
        'destroy',
      ),
  );
}

function watchHandshakeErrors(core: ServerCore, server: tls.Server): void {
  server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    const raw = rawOf(socket);
    if (raw.destroyed && err.code === 'ECONNRESET') return; // refused by the gate: already reported
    core.reject(
      raw,
      'handshake',
      'ERR_HANDSHAKE_FAILED',
      `TLS handshake failed: ${err.code ?? err.message}`,
      null,
      null,
      'destroy',
    );
  });
}

function watchDrops(core: ServerCore, server: http.Server | tls.Server): void {
  if (core.settings.maxConnections === undefined) return;
  server.maxConnections = core.settings.maxConnections;
  server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
    core.rejectInfo(
      data ?? {},
      'sniff',
      'ERR_CONNECTION_LIMIT',
      `more than ${core.settings.maxConnections} connections`,
    );
  });
}

function httpTimeouts(
  core: ServerCore,
  server: {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout: number;
    connectionsCheckingInterval?: number;
  },
): void {
  server.headersTimeout = core.settings.headersTimeout;
  server.requestTimeout = core.settings.requestTimeout;
  server.keepAliveTimeout = core.settings.keepAliveTimeout;
  // Node enforces headersTimeout/requestTimeout only when it checks its connections, every 30 s by
  // default (read at listen(), for http.Server and http2's HTTP/1.1 fallback alike): a 20 s
  // headersTimeout would really be 20–50 s.
  const { headersTimeout, requestTimeout } = core.settings;
  server.connectionsCheckingInterval = Math.max(10, Math.min(1_000, headersTimeout, requestTimeout));
}

function tlsServerOptions(settings: ServerSettings): tls.TlsOptions {
  // rejectUnauthorized: false so that the gate decides, with a reason code, before anything is
  // handed on (OpenSSL's own verdict is always a failure: see serverContextOptions).
  return { requestCert: true, rejectUnauthorized: false, handshakeTimeout: settings.handshakeTimeout };
}

function createHttp1(options: MtlsServerOptions, handler: http.RequestListener | undefined): MtlsHttpServer {
  const settings = checkServerOptions(options);
  const server = http.createServer({ maxHeaderSize: settings.maxHeaderSize }, handler);
  const core = new ServerCore(settings, server);
  httpTimeouts(core, server);
  const { authorizer, policy } = createAuthorizer(settings, core);
  const gate = new RequestGate(core, authorizer);
  // TLS is terminated by a private tls.Server; verified sockets are handed to the http.Server.
  const tlsServer = tls.createServer({ ...tlsServerOptions(settings), ALPNProtocols: ['http/1.1'] });
  const initial = core.start((context) => tlsServer.setSecureContext(context));
  if (initial !== undefined) tlsServer.setSecureContext(initial);
  const admitted = new WeakSet<object>();
  const emit = interceptEmit(server, {
    connection: (e: Emit, socket: Socket) => {
      if (admitted.has(socket)) return e('connection', socket);
      route(
        core,
        socket,
        false,
        (raw) => tlsServer.emit('connection', raw),
        (raw) => {
          core.admitPlaintext(raw, raw);
          admitted.add(raw);
          e('connection', raw);
          raw.resume();
        },
      );
      return true;
    },
    request: (e: Emit, req: http.IncomingMessage, res: http.ServerResponse) =>
      gate.request(req, res) && e('request', req, res),
    checkContinue: (e: Emit, req: http.IncomingMessage, res: http.ServerResponse) =>
      gate.request(req, res) && e('checkContinue', req, res),
    checkExpectation: (e: Emit, req: http.IncomingMessage, res: http.ServerResponse) =>
      gate.request(req, res) && e('checkExpectation', req, res),
    upgrade: (e: Emit, req: http.IncomingMessage, socket: Socket, head: Buffer) =>
      gate.upgrade(req, socket) && e('upgrade', req, socket, head),
    connect: (e: Emit, req: http.IncomingMessage, socket: Socket, head: Buffer) =>
      gate.upgrade(req, socket) && e('connect', req, socket, head),
  });
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    if (core.admitTls(socket, rawOf(socket)) === undefined) return;
    admitted.add(socket);
    emit('connection', socket);
  });
  watchHandshakeErrors(core, tlsServer);
  watchDrops(core, server);
  server.once('close', () => core.stop());
  return serverExtras(server, core, policy) as MtlsHttpServer;
}

function createHttp2(
  options: MtlsServerOptions,
  handler: ((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void) | undefined,
): MtlsHttp2Server {
  const settings = checkServerOptions(options);
  const server = http2.createSecureServer(
    {
      ...tlsServerOptions(settings),
      allowHTTP1: true,
      maxSendHeaderBlockLength: settings.maxHeaderSize,
      settings: {
        maxConcurrentStreams: settings.maxConcurrentStreams,
        maxHeaderListSize: settings.maxHeaderSize,
      },
    },
    handler,
  );
  const core = new ServerCore(settings, server);
  httpTimeouts(core, server as unknown as http.Server);
  const { authorizer, policy } = createAuthorizer(settings, core);
  const gate = new RequestGate(core, authorizer);
  const initial = core.start((context) => server.setSecureContext(context));
  if (initial !== undefined) server.setSecureContext(initial);
  const startTls = takeListeners(server, 'connection');
  const startHttp = takeListeners(server, 'secureConnection');
  const admitted = new WeakSet<object>();
  const wantH2c = settings.mode !== 'STRICT' || settings.plaintextPaths.size > 0;
  interceptEmit(server, {
    connection: (e: Emit, socket: Socket) => {
      if (admitted.has(socket)) return e('connection', socket);
      route(
        core,
        socket,
        wantH2c,
        (raw) => {
          for (const start of startTls) start(raw);
        },
        (raw, kind) => {
          if (kind === 'h2c') {
            const stream = h2cStream(raw);
            handTo(startHttp, core.admitPlaintext(raw, stream), stream);
          } else {
            const connection = core.admitPlaintext(raw, raw);
            // http2's connection listener serves HTTP/1.1 when ALPN did not choose h2.
            (raw as Socket & { alpnProtocol?: string | false }).alpnProtocol = false;
            handTo(startHttp, connection, raw);
            raw.resume();
          }
        },
      );
      return true;
    },
    secureConnection: (_e: Emit, socket: tls.TLSSocket) => {
      const connection = core.admitTls(socket, rawOf(socket));
      if (connection !== undefined) handTo(startHttp, connection, socket);
      return true;
    },
    stream: (
      e: Emit,
      stream: http2.ServerHttp2Stream,
      headers: http2.IncomingHttpHeaders,
      ...rest: unknown[]
    ) => gate.stream(stream, headers) && e('stream', stream, headers, ...rest),
    request: (e: Emit, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) =>
      gate.request(req, res) && e('request', req, res),
    upgrade: (e: Emit, req: http.IncomingMessage, socket: Socket, head: Buffer) =>
      gate.upgrade(req, socket) && e('upgrade', req, socket, head),
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    const connection = core.admitting;
    if (connection === undefined) return;
    connection.session = session;
    core.sessions.set(session, connection);
    setPeer(session, connection.peer);
  });
  /** Hands an admitted socket to http2, which creates its session synchronously. */
  function handTo(starts: ((socket: unknown) => void)[], connection: Connection, socket: object): void {
    core.admitting = connection;
    try {
      for (const start of starts) start(socket);
    } finally {
      core.admitting = undefined;
    }
  }
  watchHandshakeErrors(core, server);
  watchDrops(core, server);
  // Node 24's close() sends GOAWAY to every session; Node 20's waits for clients to close theirs,
  // which h2 clients rarely do, so it never finished. Drain the same way on both.
  const close = server.close.bind(server);
  server.close = ((callback?: (err?: Error) => void) => {
    close(callback);
    for (const connection of core.tracker.all()) connection.session?.close();
    return server;
  }) as typeof server.close;
  server.once('close', () => core.stop());
  return serverExtras(server, core, policy) as MtlsHttp2Server;
}

function createTls(
  options: MtlsServerOptions,
  handler: ((socket: tls.TLSSocket, peer: Peer) => void) | undefined,
): MtlsTlsServer {
  const settings = checkServerOptions(options);
  const server = tls.createServer(tlsServerOptions(settings));
  const core = new ServerCore(settings, server);
  const authorizePeer = createPeerAuthorizer(settings, core);
  const initial = core.start((context) => server.setSecureContext(context));
  if (initial !== undefined) server.setSecureContext(initial);
  const startTls = takeListeners(server, 'connection');
  interceptEmit(server, {
    connection: (_e: Emit, socket: Socket) => {
      route(
        core,
        socket,
        false,
        (raw) => {
          for (const start of startTls) start(raw);
        },
        (raw) => raw.destroy(),
      );
      return true;
    },
    secureConnection: (e: Emit, socket: tls.TLSSocket) => {
      const connection = core.admitTls(socket, rawOf(socket));
      if (connection === undefined || !authorizePeer(connection)) return true;
      return e('secureConnection', socket);
    },
  });
  if (handler !== undefined) {
    server.on('secureConnection', (socket: tls.TLSSocket) => handler(socket, peerOf(socket) as Peer));
  }
  watchHandshakeErrors(core, server);
  watchDrops(core, server);
  server.once('close', () => core.stop());
  return serverExtras(server, core, undefined) as MtlsTlsServer;
}

/**
 * Creates a server that does, in-process, what a mesh sidecar's inbound listener did: mTLS with
 * SPIFFE identities (STRICT, PERMISSIVE or DISABLE), the peer's identity on every request, an
 * authorization map, and rotation without dropped connections.
 *
 * It returns a real Node server — an `http.Server` (`protocol: 'http1'`, the default), an
 * `http2.Http2SecureServer` (`'http2'`, with HTTP/1.1 by ALPN) or a `tls.Server` (`'tls'`) — so
 * `listen()`, `address()`, `close()` (draining), its events and frameworks (Express, Fastify's
 * `serverFactory`, Hono's node server) work unchanged. The listener itself looks at each new
 * connection's first byte: TLS goes through the handshake gate, plaintext is reset (STRICT),
 * served (PERMISSIVE, DISABLE) or refused (a TLS ClientHello under DISABLE). Only connections
 * whose peer passed every check reach the HTTP layer, and every request is authorized before any
 * listener or middleware runs.
 *
 * Events: `peer`, `reject`, `authorization`, `identityUpdate` (and the diagnostics_channel
 * {@link channels}). `describe()` reports the listener.
 *
 * @param options - identity, mode, protocol, authorization, limits
 * @param handler - the request listener (`(req, res)`), or for `'tls'` `(socket, peer)`
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option, `ERR_POLICY_INVALID` for a bad
 *   authorization map
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({
 *   identity: ca.identity('/ns/demo/sa/boards'),
 *   authorize: { 'GET /shareditems': 'spiffe://cluster.local/ns/demo/sa/app-ui', '*': 'spiffe://cluster.local/*' },
 * }, (req, res) => res.end(`hello ${getPeer(req).id}`));
 * server.listen(8080);
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions & { readonly protocol?: 'http1' },
  handler?: http.RequestListener,
): MtlsHttpServer;
/**
 * Creates an HTTP/2 server (with HTTP/1.1 by ALPN) with the mTLS of a mesh sidecar: see the
 * HTTP/1.1 overload for the whole contract.
 *
 * @param options - identity, mode, protocol `'http2'`, authorization, limits
 * @param handler - the request listener of the compatibility API
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards'), protocol: 'http2' }, (req, res) => res.end(`${getPeer(req).id}`));
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions & { readonly protocol: 'http2' },
  handler?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): MtlsHttp2Server;
/**
 * Creates a raw TLS server: the handler gets each socket whose peer passed every check, and that
 * peer. `authorize` is a peer matcher checked right after the handshake.
 *
 * @param options - identity, protocol `'tls'`, the peer matcher, limits
 * @param handler - called with the verified socket and its peer
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * createMtlsServer({ identity: ca.identity('/ns/db/sa/postgres'), protocol: 'tls', authorize: 'spiffe://cluster.local/ns/demo/*' },
 *   (socket, peer) => socket.end(`hello ${peer.id}\n`));
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions & { readonly protocol: 'tls' },
  handler?: (socket: tls.TLSSocket, peer: Peer) => void,
): MtlsTlsServer;
export function createMtlsServer(
  options: MtlsServerOptions,
  handler?: (...args: never[]) => void,
): MtlsHttpServer | MtlsHttp2Server | MtlsTlsServer {
  if (handler !== undefined && typeof handler !== 'function')
    throw invalidOption('handler', 'a function', handler);
  const protocol = (options as { protocol?: unknown } | undefined)?.protocol ?? 'http1';
  if (protocol === 'http2') return createHttp2(options, handler as never);
  if (protocol === 'tls') return createTls(options, handler as never);
  return createHttp1(options, handler as never);
}
