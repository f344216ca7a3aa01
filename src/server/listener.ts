// The listener module: the one place that touches Node internals (wrapped `emit`, TLSSocket's
// handshake events and verify mode, `_httpMessage`). Everything else in src/server works with
// what this module hands it.
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { Stream } from 'node:stream';
import type { SecureContext, TLSSocket, TLSSocketOptions, Server as TlsServer } from 'node:tls';
import { nodeTls as tls } from '../internal/builtins.js';
import { type Door, type DoorEmitter, type DoorProtocol, doorsFor } from './doors.js';

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

/**
 * What a wrapped emitter does with each door's handling: called with Node's own emit (to deliver
 * to the listeners registered on the emitter) and the event's arguments. `unknown` is called for
 * an event the table lacks that carries a request, stream, session or socket.
 */
export type DoorHandlers = Partial<
  Record<Door['handling'], (emit: Emit, event: string, args: unknown[]) => boolean>
> & {
  readonly unknown: (event: string, carried: readonly object[]) => void;
};

/** A test hook: told about every emitter the listener wraps (set only by tests). */
export const emitterProbe: {
  onWrap?: ((emitter: EventEmitter, kind: DoorEmitter, protocol: DoorProtocol) => void) | undefined;
} = {};

function isSession(value: object): boolean {
  const v = value as { goaway?: unknown; settings?: unknown; socket?: unknown };
  return typeof v.goaway === 'function' && typeof v.settings === 'function' && 'socket' in v;
}

/** The objects of `args` that hand application code a request, response, stream, session or socket. */
export function carriedObjects(args: readonly unknown[]): object[] {
  const out: object[] = [];
  for (const arg of args) {
    if (typeof arg === 'object' && arg !== null && (arg instanceof Stream || isSession(arg))) out.push(arg);
  }
  return out;
}

/**
 * Wraps `emitter.emit` so that every event goes through the door table before any listener,
 * including listeners added later (a framework's). Events the table passes go straight on.
 */
export function wrapEmit(
  emitter: EventEmitter,
  kind: DoorEmitter,
  protocol: DoorProtocol,
  handlers: DoorHandlers,
): Emit {
  const doors = doorsFor(kind, protocol);
  const own = emitter.emit as Emit;
  const original = ((...args: [string | symbol, ...unknown[]]) => Reflect.apply(own, emitter, args)) as Emit;
  // Every event but the `pass` doors (which go straight on, below).
  const slow = (event: string | symbol, ...args: unknown[]): boolean => {
    const row = typeof event === 'string' ? doors.get(event) : undefined;
    if (row === undefined) {
      const carried = carriedObjects(args);
      if (carried.length > 0) {
        handlers.unknown(String(event), carried);
        return false;
      }
      return original(event, ...args);
    }
    const handle = handlers[row.handling];
    if (handle !== undefined) return handle(original, row.event, args);
    if (row.handling === 'pass') return original(event, ...args);
    if (row.handling === 'owned') return false;
    handlers.unknown(row.event, carriedObjects(args));
    return false;
  };
  // A function, not an arrow with rest parameters: the `pass` doors (most of a socket's events)
  // go straight on with `arguments`. `arguments` is only ever forwarded whole (to Node's emit or
  // to the slow path), so V8 never builds the object: no allocation per emit.
  emitter.emit = function gatedEmit(event: string | symbol): boolean {
    const row = typeof event === 'string' ? doors.get(event) : undefined;
    if (row !== undefined && row.handling === 'pass' && handlers.pass === undefined) {
      // biome-ignore lint/complexity/noArguments: forwarded whole, as it came
      return Reflect.apply(own, emitter, arguments) as boolean;
    }
    // biome-ignore lint/complexity/noArguments: forwarded whole, as it came
    return Reflect.apply(slow, undefined, arguments) as boolean;
  } as typeof emitter.emit;
  emitterProbe.onWrap?.(emitter, kind, protocol);
  return original;
}

/** Takes the listeners Node registered for an event, so that only the gate calls them. */
export function takeListeners(emitter: EventEmitter, event: string): ((...args: unknown[]) => void)[] {
  const listeners = emitter.listeners(event) as ((...args: unknown[]) => void)[];
  emitter.removeAllListeners(event);
  return listeners.map(
    (l) =>
      (...args: unknown[]) =>
        l.apply(emitter, args),
  );
}

/** What a server-side TLS handshake reports. */
export interface HandshakeHooks {
  /** The handshake finished; the socket is released to its next owner only by the callee. */
  secure(socket: TLSSocket): void;
  /** OpenSSL or Node failed the handshake (including its timeout). */
  failed(socket: TLSSocket, err: Error & { code?: string }): void;
  /** The client closed the connection before the handshake finished. */
  aborted(socket: TLSSocket): void;
}

/** The options of one server-side handshake. */
export interface HandshakeOptions {
  readonly context: SecureContext;
  /** Fail the handshake with a TLS alert when the client presents no certificate (STRICT). */
  readonly requireCertificate: boolean;
  readonly ALPNProtocols: readonly string[];
  readonly handshakeTimeout: number;
  /**
   * A private TlsServer the socket belongs to: application listeners on the public server (a
   * session store, OCSP, keylog) must not reach the library's sockets.
   */
  readonly owner: TlsServer;
}

const alpnBuffers = new WeakMap<readonly string[], Buffer>();

/**
 * An ALPN list in its wire form (each name prefixed by its length), built once per list: given an
 * array, TLSSocket converts it again for every connection, as a tls.Server does only once.
 */
function alpnWire(protocols: readonly string[]): Buffer {
  let wire = alpnBuffers.get(protocols);
  if (wire === undefined) {
    wire = Buffer.concat(
      protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])),
    );
    alpnBuffers.set(protocols, wire);
  }
  return wire;
}

/**
 * Starts the TLS handshake of an accepted, sniffed socket. The library owns server-side TLS
 * sockets rather than a TlsServer's connection listener, so that:
 * - a client that closes at any phase frees the socket at once (http.Server sockets allow
 *   half-open connections, which kept a half-closed handshake until its timeout);
 * - under STRICT a client without a certificate gets OpenSSL's TLS alert
 *   (`certificate_required`), not a silent close: the verify mode gains
 *   SSL_VERIFY_FAIL_IF_NO_PEER_CERT while Node's JS check stays off (the library decides);
 * - no application listener (newSession, resumeSession, OCSPRequest, keylog) touches them.
 * The socket stays under the library's control (its errors are handshake errors) until
 * {@link releaseTlsSocket}.
 */
export function startTlsHandshake(raw: Socket, options: HandshakeOptions, hooks: HandshakeHooks): TLSSocket {
  raw.allowHalfOpen = false;
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    server: options.owner,
    secureContext: options.context,
    requestCert: true,
    // The gate verifies the chain itself, per trust domain (src/tls/material.ts).
    rejectUnauthorized: false,
    ...(options.ALPNProtocols.length === 0 ? {} : { ALPNProtocols: alpnWire(options.ALPNProtocols) }),
    // Read by TLSSocket's _init as TlsServer passes it.
    handshakeTimeout: options.handshakeTimeout,
  } as TLSSocketOptions);
  if (options.requireCertificate) {
    (
      socket as unknown as { _handle: { setVerifyMode(request: boolean, reject: boolean): void } }
    )._handle.setVerifyMode(true, true);
  }
  let settled = false;
  // `on`, not `once` (a wrapper each): both events come once, and `settled` guards the hooks.
  socket.on('secure', () => {
    if (settled) return;
    settled = true;
    hooks.secure(socket);
  });
  socket.on('_tlsError', (err: Error) => {
    if (settled) return;
    settled = true;
    hooks.failed(socket, err);
    socket.destroy();
  });
  socket.on('close', () => {
    if (settled) return;
    settled = true;
    hooks.aborted(socket);
  });
  return socket;
}

/**
 * Hands a server TLS socket from the gate to its next owner (http, http2, the application): from
 * now on its errors are ordinary socket errors, as after a TlsServer's `secureConnection`.
 */
export function releaseTlsSocket(socket: TLSSocket): void {
  const s = socket as unknown as { _releaseControl(): boolean; secureConnecting: boolean };
  s._releaseControl();
  s.secureConnecting = false;
}

/**
 * Makes the public server the owner of an admitted TLS socket, as a TlsServer's own connection
 * listener would have: http2 keeps its HTTP/1.1 classes on `socket.server` for the fallback.
 */
export function adoptSocket(socket: TLSSocket, server: TlsServer): void {
  (socket as TLSSocket & { server: TlsServer }).server = server;
}

/** The parts of http's ServerResponse a graceful close uses. */
export interface InFlightResponse {
  readonly writableEnded: boolean;
  readonly headersSent: boolean;
  shouldKeepAlive: boolean;
  once(event: 'finish', listener: () => void): unknown;
}

/** The response http is writing on a socket right now (http sets socket._httpMessage). */
export function inFlightResponse(socket: object): InFlightResponse | undefined {
  const current = (socket as { _httpMessage?: InFlightResponse | null })._httpMessage;
  return current === null || current === undefined ? undefined : current;
}

/** The request's own response object, when http created one (`upgrade`/`connect` have none). */
export function responseOf(req: http.IncomingMessage): http.ServerResponse | undefined {
  return inFlightResponse(req.socket) as http.ServerResponse | undefined;
}
