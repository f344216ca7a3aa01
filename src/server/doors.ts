// The door table: every event through which Node can hand application code a request, a
// response, a stream, a session or a socket, per emitter and protocol, and what the gate does with
// it. The listener module (listener.ts) routes every emit of the server, of each HTTP/2 session
// and of each accepted socket through this table; an event the table lacks that carries any of
// those objects is never delivered (the connection is refused and reported). docs/doors.md is
// this table in prose, and test/server/doors.test.ts holds the two together.

/** Who emits: the server itself, an HTTP/2 session, or an accepted socket. */
export type DoorEmitter = 'server' | 'session' | 'socket';

/** What a server speaks. */
export type DoorProtocol = 'http1' | 'http2' | 'tls';

/**
 * What the gate does with a door:
 * - `accept`: a new TCP socket from the listener: sniffed and admitted (or refused) by the gate;
 *   application listeners are called only with admitted sockets;
 * - `secure`: a TLS socket, delivered only after its peer was admitted (and, for raw TLS,
 *   authorized);
 * - `session`: an HTTP/2 session of an admitted connection: its own emit is wrapped before any
 *   application listener sees it;
 * - `stream`: an HTTP/2 stream: admitted, authorized and cleaned before delivery;
 * - `request`: an HTTP/1.1 request with its response (or socket): admitted, authorized, cleaned,
 *   its URL normalised, before delivery;
 * - `upgrade`: an HTTP/1.1 request that takes the socket (`upgrade`, `connect`): as `request`,
 *   refusals written on the socket;
 * - `compat`: an HTTP/2 compatibility request: delivered only when its stream passed the gate;
 * - `owned`: the library's own business (TLS sessions, OCSP, key logs, handshake errors): never
 *   delivered to application listeners;
 * - `refuse`: never expected; the carried socket is closed and the refusal reported;
 * - `pass`: carries no request, stream or unchecked socket (the reason says why).
 */
export type DoorHandling =
  | 'accept'
  | 'secure'
  | 'session'
  | 'stream'
  | 'request'
  | 'upgrade'
  | 'compat'
  | 'owned'
  | 'refuse'
  | 'pass';

/** One door: an event of an emitter, on the protocols it applies to, and its handling. */
export interface Door {
  readonly emitter: DoorEmitter;
  readonly event: string;
  readonly protocols: readonly DoorProtocol[];
  readonly handling: DoorHandling;
  /** Why this handling is right (for pass and owned rows: why nothing unchecked goes through). */
  readonly why: string;
}

const ALL: readonly DoorProtocol[] = ['http1', 'http2', 'tls'];
const HTTP: readonly DoorProtocol[] = ['http1', 'http2'];
const TLS_SERVERS: readonly DoorProtocol[] = ['http2', 'tls'];

function door(
  emitter: DoorEmitter,
  event: string,
  protocols: readonly DoorProtocol[],
  handling: DoorHandling,
  why: string,
): Door {
  return Object.freeze({ emitter, event, protocols: Object.freeze([...protocols]), handling, why });
}

export const DOORS: readonly Door[] = Object.freeze([
  // The server.
  door(
    'server',
    'connection',
    ALL,
    'accept',
    'a TCP socket before any check: sniffed and admitted first; application listeners get admitted sockets that speak plaintext (http1 and http2 servers; TLS sockets come through secureConnection on TLS servers, and through connection on http1), never a STRICT plaintext socket limited to plaintextPaths',
  ),
  door(
    'server',
    'secureConnection',
    TLS_SERVERS,
    'secure',
    'a TLS socket after the handshake: delivered only once its peer passed every check (raw TLS: and the authorize matcher)',
  ),
  door(
    'server',
    'session',
    ['http2'],
    'session',
    'an HTTP/2 session of an admitted connection; its streams go through the session door first',
  ),
  door(
    'server',
    'stream',
    ['http2'],
    'stream',
    'an HTTP/2 stream; already gated at its session (a session listener sees streams first), gated here when not',
  ),
  door(
    'server',
    'request',
    HTTP,
    'request',
    'an HTTP/1.1 request (and HTTP/2 compatibility requests, through compat)',
  ),
  door(
    'server',
    'checkContinue',
    HTTP,
    'request',
    'an HTTP/1.1 request with Expect: 100-continue, before the body is sent',
  ),
  door('server', 'checkExpectation', HTTP, 'request', 'an HTTP/1.1 request with another Expect header'),
  door(
    'server',
    'dropRequest',
    HTTP,
    'request',
    'an HTTP/1.1 request over maxRequestsPerSocket, which Node answers 503',
  ),
  door(
    'server',
    'connect',
    HTTP,
    'upgrade',
    'an HTTP/1.1 CONNECT request taking the socket (HTTP/2 CONNECT streams: compat)',
  ),
  door('server', 'upgrade', HTTP, 'upgrade', 'an HTTP/1.1 request taking the socket (WebSocket)'),
  door(
    'server',
    'unknownProtocol',
    ['http2'],
    'refuse',
    'ALPN offers only h2 and http/1.1 (no ALPN is HTTP/1.1): never expected, closed',
  ),
  door(
    'server',
    'clientError',
    HTTP,
    'pass',
    'an HTTP parse error on an admitted connection: no request was made; Node answers 400',
  ),
  door(
    'server',
    'timeout',
    HTTP,
    'pass',
    'an idle socket or session of an admitted connection: carries no request',
  ),
  door(
    'server',
    'tlsClientError',
    TLS_SERVERS,
    'owned',
    'handshake errors are reported as reject events; the failed socket is never handed out',
  ),
  door(
    'server',
    'newSession',
    TLS_SERVERS,
    'owned',
    'TLS sessions belong to the library: a session store could resume past a check',
  ),
  door(
    'server',
    'resumeSession',
    TLS_SERVERS,
    'owned',
    'TLS sessions belong to the library: a session store could resume past a check',
  ),
  door(
    'server',
    'OCSPRequest',
    TLS_SERVERS,
    'owned',
    "no OCSP stapling: never emitted for the library's sockets",
  ),
  door('server', 'keylog', TLS_SERVERS, 'owned', 'TLS key material: never handed out'),
  door(
    'server',
    'sessionError',
    ['http2'],
    'pass',
    'an Error of a session of an admitted connection, and that session',
  ),
  ...['peer', 'reject', 'authorization', 'identityUpdate'].map((event) =>
    door('server', event, ALL, 'pass', "the library's own reports: IDs, serials, addresses and codes"),
  ),
  door('server', 'listening', ALL, 'pass', 'no arguments'),
  door('server', 'close', ALL, 'pass', 'no arguments'),
  door('server', 'error', ALL, 'pass', 'an Error of the listening socket'),
  door('server', 'drop', ALL, 'pass', 'addresses of a connection refused by maxConnections: no socket'),
  door('server', 'newListener', ALL, 'pass', 'an event name and a listener'),
  door('server', 'removeListener', ALL, 'pass', 'an event name and a listener'),
  // Each HTTP/2 session.
  door(
    'session',
    'stream',
    ['http2'],
    'stream',
    'an HTTP/2 stream: admitted, authorized and cleaned before any session or server listener',
  ),
  door(
    'session',
    'connect',
    ['http2'],
    'pass',
    'the session and its socket, of an admitted connection, at setup',
  ),
  door('session', 'close', ['http2'], 'pass', 'no request'),
  door('session', 'error', ['http2'], 'pass', 'an Error'),
  door('session', 'frameError', ['http2'], 'pass', 'a frame type, code and stream id'),
  door('session', 'goaway', ['http2'], 'pass', 'codes and opaque data'),
  door('session', 'localSettings', ['http2'], 'pass', 'settings'),
  door('session', 'remoteSettings', ['http2'], 'pass', 'settings'),
  door('session', 'ping', ['http2'], 'pass', 'a payload'),
  door('session', 'timeout', ['http2'], 'pass', 'no arguments'),
  door('session', 'newListener', ['http2'], 'pass', 'an event name and a listener'),
  door('session', 'removeListener', ['http2'], 'pass', 'an event name and a listener'),
  // Each accepted socket (the TCP socket, and the TLS socket over it).
  door('socket', 'keylog', ALL, 'owned', 'TLS key material: never handed out'),
  door(
    'socket',
    'session',
    ALL,
    'owned',
    'a TLS session (client side in Node; never expected on a server socket)',
  ),
  door('socket', 'OCSPResponse', ALL, 'owned', 'client side only'),
  door('socket', 'secure', ALL, 'pass', "Node's handshake-done signal, which the gate itself listens to"),
  door('socket', '_tlsError', ALL, 'pass', "Node's handshake-error signal, which the gate itself listens to"),
  ...[
    'data',
    'end',
    'close',
    'error',
    'timeout',
    'drain',
    'finish',
    'prefinish',
    'pause',
    'resume',
    'readable',
    'connect',
    'ready',
    'lookup',
    'newListener',
    'removeListener',
  ].map((event) =>
    door('socket', event, ALL, 'pass', 'stream and socket life: bytes of an admitted connection, or none'),
  ),
]);

const doorMaps = new Map<DoorEmitter, Map<DoorProtocol, ReadonlyMap<string, Door>>>();

/**
 * The doors of one emitter on one protocol, by event name. Built once per pair: every accepted
 * connection wraps its sockets with them.
 */
export function doorsFor(emitter: DoorEmitter, protocol: DoorProtocol): ReadonlyMap<string, Door> {
  let ofEmitter = doorMaps.get(emitter);
  if (ofEmitter === undefined) {
    ofEmitter = new Map();
    doorMaps.set(emitter, ofEmitter);
  }
  let out = ofEmitter.get(protocol);
  if (out === undefined) {
    const map = new Map<string, Door>();
    for (const d of DOORS) if (d.emitter === emitter && d.protocols.includes(protocol)) map.set(d.event, d);
    out = map;
    ofEmitter.set(protocol, out);
  }
  return out;
}
