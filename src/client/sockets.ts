// The connectors: each calls back with a socket only once it is ready for requests.
import net, { type Socket } from 'node:net';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import { SidecarlessError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/source.js';
import { nodeTls as tls } from '../internal/builtins.js';
import { buildPeer } from '../tls/peer.js';
import { peerOf, setPeer } from '../tls/peer-registry.js';
import type { X509Svid } from '../x509/svid.js';
import type { ConnectCallback, ConnectHooks } from './connect.js';
import { certificateAlertOf, checkOwnSvid, refusedBy, watchForRefusal } from './refusal.js';
import { clientContextOf } from './secure-context.js';
import { resumedServer, verifyServer } from './server-peer.js';
import type { CachedSession } from './session-cache.js';
import { destinationError, type Target } from './target.js';

/**
 * A checkServerIdentity that checks nothing (verifyServer decides) but keeps the certificate
 * object Node built for it, so the chain is not built a second time.
 */
export function capture(): {
  check: (host: string, cert: PeerCertificate) => undefined;
  presented: () => DetailedPeerCertificate | undefined;
} {
  let presented: DetailedPeerCertificate | undefined;
  return {
    check: (_host, cert) => {
      presented = cert as DetailedPeerCertificate;
      return undefined;
    },
    presented: () => presented,
  };
}

export function currentIdentity(hooks: ConnectHooks, target: Target): WorkloadIdentity {
  try {
    return hooks.identity.current();
  } catch (err) {
    if (!(err instanceof SidecarlessError)) throw err;
    throw destinationError(err.code, target, `no connection without an SVID: ${err.message}`, {}, err);
  }
}

/** What went wrong before a handshake finished, as the caller should see it. */
function handshakeError(err: NodeJS.ErrnoException, target: Target, tcpUp: boolean, own: X509Svid): Error {
  // Before TCP is up (DNS, refused, unreachable), the ordinary network error is the clearest.
  if (!tcpUp || err instanceof SidecarlessError) return err;
  // TLS 1.2, or a server that checks during its handshake: the refusal is an alert.
  const alert = certificateAlertOf(err);
  if (alert !== undefined) return refusedBy(target, own, `sent the TLS alert ${alert}`, err);
  // Wording only: the decision not to send anything was taken by not finishing the handshake.
  if (err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || err.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return destinationError(
      'ERR_PEER_NOT_TLS',
      target,
      'the server does not speak TLS; nothing was sent in plaintext',
      {},
      err,
    );
  }
  return destinationError('ERR_HANDSHAKE_FAILED', target, `TLS handshake failed: ${err.message}`, {}, err);
}

/**
 * The server's address: an IPv4 target is connected to exactly as written (its canonical dotted
 * quad, which is how Node spells a peer's address), so no `getpeername` call (about 10 µs per
 * connection) is needed; names and IPv6 (whose spellings of embedded IPv4 differ) ask the socket.
 */
function remoteAddressOf(target: Target, tcp: Socket): string | undefined {
  return target.servername === undefined && target.lookup === undefined && !target.host.includes(':')
    ? target.host
    : tcp.remoteAddress;
}

export interface Pending {
  /** Stops waiting without calling back; false when the outcome was already given. */
  abandon(): boolean;
}

/**
 * Waits for the handshake of `socket`, authenticates the server, and only then calls back with
 * the socket: nothing can be written on it before the identity check passed. Fails closed on
 * every other outcome (error, close, timeout), destroying the socket.
 */
export function awaitServer(
  socket: TLSSocket,
  tcp: Socket,
  target: Target,
  hooks: ConnectHooks,
  own: X509Svid,
  presented: () => DetailedPeerCertificate | undefined,
  cb: ConnectCallback,
  offered?: CachedSession,
): Pending {
  // A socket handed over already connected (gRPC's connector) sends no 'connect' event.
  let tcpUp = !tcp.connecting && !tcp.pending;
  let done = false;
  const onTcp = () => {
    tcpUp = true;
  };
  const settle = (err: Error | null) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    tcp.off('connect', onTcp);
    socket.off('secureConnect', onSecure);
    socket.off('error', onError);
    socket.off('close', onClose);
    if (err === null) {
      watchForRefusal(socket, target, own, hooks.closeIsRefusal);
      cb(null, socket);
      return;
    }
    socket.on('error', () => {});
    socket.destroy();
    cb(err);
  };
  const onSecure = () => {
    try {
      // Trust is what the bundles say now, not when the connection started: a rotation may have
      // happened during the handshake (a new root the server already uses, a CA removed).
      const identity = currentIdentity(hooks, target);
      const remote = remoteAddressOf(target, tcp);
      const peer =
        offered !== undefined && socket.isSessionReused()
          ? resumedServer(socket, target, identity, hooks.verifier, remote, offered.peer)
          : verifyServer(socket, target, identity, hooks.verifier, remote, presented());
      setPeer(socket, peer);
      hooks.established(socket, peer, target);
      settle(null);
    } catch (err) {
      settle(err as Error);
    }
  };
  const onError = (err: NodeJS.ErrnoException) => settle(handshakeError(err, target, tcpUp, own));
  const onClose = () =>
    settle(
      destinationError('ERR_HANDSHAKE_FAILED', target, 'the connection closed during the TLS handshake'),
    );
  const timer = setTimeout(
    () =>
      settle(destinationError('ERR_TIMEOUT', target, `no TLS handshake within ${hooks.connectTimeout} ms`)),
    hooks.connectTimeout,
  ).unref();
  // `on`, not `once` (a wrapper each): settle removes all four, and calls back only once.
  tcp.on('connect', onTcp);
  socket.on('secureConnect', onSecure);
  socket.on('error', onError);
  socket.on('close', onClose);
  return {
    abandon() {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      return true;
    },
  };
}

/** `setSession`, which tls.connect itself uses, is not in @types/node. */
type SessionSettable = TLSSocket & { setSession(session: Buffer): void };
const SET_SESSION = typeof (tls.TLSSocket.prototype as Partial<SessionSettable>).setSession === 'function';

/** The parts of a client TLSSocket's native handle that Node's `secureConnect` check reads. */
interface VerdictHandle {
  verifyError(): Error | null;
  isSessionReused(): boolean;
}

/**
 * OpenSSL's verdict, skipped on a resumed session. The client context holds no CA
 * (secure-context.ts), so a resumed session carries the failed verdict of the handshake that made
 * it, and Node builds an Error for it on every resumption (about 3 % of the client's CPU per
 * resumed connection on Node 24, with its garbage; bench/README.md, pair) only to set
 * `socket.authorized`. The library never reads that verdict: resumedServer checks the session's
 * server against the current bundles, whatever Node concluded. A full handshake (a session
 * offered but not resumed) still gets Node's own verdict.
 */
function verdictUnlessResumed(this: VerdictHandle): Error | null {
  return this.isSessionReused()
    ? null
    : (Object.getPrototypeOf(this) as VerdictHandle).verifyError.call(this);
}

function skipVerdictOnResumption(socket: TLSSocket): void {
  const handle = (socket as unknown as { _handle: Partial<VerdictHandle> | null })._handle;
  if (
    handle === null ||
    typeof handle.verifyError !== 'function' ||
    typeof handle.isSessionReused !== 'function'
  )
    return;
  handle.verifyError = verdictUnlessResumed;
}

/** mTLS straight on the TCP handle: the fast path, for `mtls` destinations (and `auto` over https). */
export function connectMtlsSocket(hooks: ConnectHooks, target: Target, cb: ConnectCallback): void {
  const identity = currentIdentity(hooks, target);
  checkOwnSvid(identity, target);
  const captured = capture();
  const offered = hooks.sessions?.take(target, identity);
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    ...(target.servername === undefined ? {} : { servername: target.servername }),
    ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
    ...(target.lookup === undefined ? {} : { lookup: target.lookup }),
    secureContext: clientContextOf(identity),
    ...(hooks.alpn === undefined ? {} : { ALPNProtocols: hooks.alpn }),
    // The decision is verifyServer's, taken before the socket is handed over. No session is
    // offered unless resumption was asked for, and then only with the Peer it was verified as.
    rejectUnauthorized: false,
    checkServerIdentity: captured.check,
    ...(offered === undefined || SET_SESSION ? {} : { session: offered.session }),
  });
  // Set once, here, before the TCP connection (always asynchronous) starts the handshake: given
  // as tls.connect's `session` option, Node decodes it twice (in the socket's constructor and
  // again after it), about 115 µs each on Node 20 and 25 µs on Node 24 (bench/README.md, pair).
  if (offered !== undefined) {
    if (SET_SESSION) (socket as SessionSettable).setSession(offered.session);
    skipVerdictOnResumption(socket);
  }
  // As undici's own connector: requests are small writes that must not wait for Nagle.
  socket.setNoDelay(true);
  const sessions = hooks.sessions;
  let ready = cb;
  if (sessions !== undefined) {
    // A ticket is tied to the Peer this socket proved; one that arrives with the end of the
    // handshake, before the proof was checked, waits for it.
    let early: Buffer | undefined;
    const keep = (session: Buffer) => {
      const peer = peerOf(socket);
      if (peer?.mtls === true) sessions.store(target, identity, peer, session);
      else early = session;
    };
    socket.on('session', keep);
    ready = (err, ok) => {
      if (err === null && early !== undefined) keep(early);
      cb(err, ok);
    };
  }
  awaitServer(socket, socket, target, hooks, identity.svid, captured.presented, ready, offered);
}

/** Plain TCP, for plaintext destinations and `auto` fallbacks. */
export function connectPlain(hooks: ConnectHooks, target: Target, cb: ConnectCallback): void {
  const socket = net.connect({
    host: target.host,
    port: target.port,
    ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
    ...(target.lookup === undefined ? {} : { lookup: target.lookup }),
    noDelay: true,
  });
  const timer = setTimeout(() => {
    socket.destroy();
    cb(destinationError('ERR_TIMEOUT', target, `no TCP connection within ${hooks.connectTimeout} ms`));
  }, hooks.connectTimeout).unref();
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.off('error', onError);
    setPeer(socket, buildPeer({ remoteAddress: socket.remoteAddress }));
    cb(null, socket);
  });
  const onError = (err: Error) => {
    clearTimeout(timer);
    cb(err);
  };
  socket.once('error', onError);
}

/** Ordinary TLS, for https:// URLs to plaintext destinations: never sent in plaintext. */
export function connectPlainTls(hooks: ConnectHooks, target: Target, cb: ConnectCallback): void {
  const socket = hooks.plainTls(target);
  const timer = setTimeout(() => {
    socket.destroy();
    cb(destinationError('ERR_TIMEOUT', target, `no TLS handshake within ${hooks.connectTimeout} ms`));
  }, hooks.connectTimeout).unref();
  const onError = (err: Error) => {
    clearTimeout(timer);
    cb(err);
  };
  socket.once('secureConnect', () => {
    clearTimeout(timer);
    socket.off('error', onError);
    setPeer(socket, buildPeer({ socket, remoteAddress: socket.remoteAddress, resumed: false }));
    cb(null, socket);
  });
  socket.once('error', onError);
}
