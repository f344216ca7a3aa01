import type http from 'node:http';
import type http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { setPeer } from '../tls/peer-registry.js';
import { acceptConnection, type Delivery, refuseUnknownDoor } from './accept.js';
import { compileServerPolicy } from './authorization.js';
import type { Connection } from './connections.js';
import { h2cStream } from './h2c-stream.js';
import { applyHttpTimeouts, watchDrops } from './http-settings.js';
import { adoptSocket, takeListeners, wrapEmit } from './listener.js';
import type { ServerSettings } from './options.js';
import { RequestGate } from './requests.js';
import { ServerCore } from './server-core.js';
import { type MtlsHttp2Server, serverExtras } from './server-types.js';

type Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

let loaded: typeof http2 | undefined;

/**
 * node:http2, loaded by the first HTTP/2 server: an HTTP/1.1 server never pays for it (about
 * 4 MB of RSS on Node 24, bench/README.md "Import cost").
 */
function http2Module(): typeof http2 {
  loaded ??= process.getBuiltinModule('node:http2');
  return loaded;
}

/**
 * HTTP/2 with HTTP/1.1 by ALPN (and h2c with prior knowledge where plaintext is served): the
 * public server is an `Http2SecureServer`; the library terminates TLS itself and hands admitted
 * sockets to http2's own connection listener. Every stream is gated at its session, before any
 * session or server listener; every HTTP/1.1 request at the server.
 */
export function createHttp2(settings: ServerSettings, handler: Handler | undefined): MtlsHttp2Server {
  const h2 = http2Module();
  const server = h2.createSecureServer(
    {
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
  applyHttpTimeouts(core, server as unknown as http.Server);
  const policy = compileServerPolicy(settings);
  const gate = new RequestGate(core, policy);
  // tls.Server's handshake listener is replaced by the library's; http2's own connection
  // listener is called by the gate only, with admitted sockets.
  takeListeners(server, 'connection');
  const http2Connection = takeListeners(server, 'secureConnection');
  /** Hands an admitted socket to http2, which creates its session synchronously. */
  const serve = (connection: Connection, socket: object) => {
    core.admitting = connection;
    try {
      for (const listener of http2Connection) listener(socket);
    } finally {
      core.admitting = undefined;
    }
  };
  const delivery: Delivery = {
    alpn: ['h2', 'http/1.1'],
    h2c: settings.mode !== 'STRICT' || settings.plaintextPaths.size > 0,
    tls(connection, socket) {
      adoptSocket(socket, server);
      serve(connection, socket);
      emit('secureConnection', socket);
    },
    plaintext(raw, kind, limited) {
      if (kind === 'h2c') {
        const stream = h2cStream(raw);
        serve(core.admitPlaintext(raw, stream, limited), stream);
      } else {
        const connection = core.admitPlaintext(raw, raw, limited);
        // http2's connection listener serves HTTP/1.1 when ALPN did not choose h2.
        (raw as Socket & { alpnProtocol?: string | false }).alpnProtocol = false;
        serve(connection, raw);
        raw.resume();
      }
      // As for http1: a socket limited to plaintextPaths is not handed to connection listeners.
      if (!limited) emit('connection', raw);
    },
  };
  const isCompat = (req: unknown) => req instanceof h2.Http2ServerRequest;
  const emit = wrapEmit(server, 'server', 'http2', {
    accept: (_e, _event, [socket]) => {
      acceptConnection(core, socket as Socket, 'http2', delivery);
      return true;
    },
    // Only the gate emits secureConnection (through Node's own emit): anything else is refused.
    secure: (_e, event, [socket]) => {
      refuseUnknownDoor(core, event, [socket as TLSSocket]);
      return false;
    },
    session: (e, event, [session]) => {
      const s = session as http2.ServerHttp2Session;
      const connection = core.admitting;
      if (connection === undefined) {
        refuseUnknownDoor(core, event, [s]);
        return false;
      }
      connection.session = s;
      core.sessions.set(s, connection);
      setPeer(s, connection.peer);
      wrapEmit(s, 'session', 'http2', {
        stream: (se, ev, args) =>
          gate.stream(
            args[0] as http2.ServerHttp2Stream,
            args[1] as http2.IncomingHttpHeaders,
            args[3] as string[] | undefined,
          ) && se(ev, ...args),
        unknown: (ev, carried) => refuseUnknownDoor(core, ev, carried),
      });
      return e(event, s);
    },
    stream: (e, event, args) =>
      gate.stream(
        args[0] as http2.ServerHttp2Stream,
        args[1] as http2.IncomingHttpHeaders,
        args[3] as string[] | undefined,
      ) && e(event, ...args),
    request: (e, event, args) =>
      (isCompat(args[0])
        ? gate.compat(args[0] as http2.Http2ServerRequest)
        : gate.request(args[0] as http.IncomingMessage, args[1] as http.ServerResponse)) && e(event, ...args),
    upgrade: (e, event, args) =>
      // HTTP/2 CONNECT streams come as (request, response), HTTP/1.1 CONNECT as (request, socket, head).
      (isCompat(args[0])
        ? gate.compat(args[0] as http2.Http2ServerRequest)
        : gate.upgrade(args[0] as http.IncomingMessage, args[1] as Duplex)) && e(event, ...args),
    refuse: (_e, event, args) => {
      refuseUnknownDoor(
        core,
        event,
        args.filter((a): a is object => typeof a === 'object' && a !== null),
      );
      return false;
    },
    unknown: (event, carried) => refuseUnknownDoor(core, event, carried),
  });
  core.start();
  core.checkPolicyTrustDomains(policy);
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
