// Telling a client why a server refused it. Under TLS 1.3 a server checks the client's
// certificate only after the client's handshake has ended, so a server that does not trust this
// workload shows it by closing (or resetting) a new connection before its first answer. This
// module turns that into a typed refusal naming this workload, and checks our own SVID before a
// connection is made at all.
import type { TLSSocket } from 'node:tls';
import type { SidecarlessError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/source.js';
import type { X509Svid } from '../x509/svid.js';
import { refusedAfterHandover } from './client-edges.js';
import { destinationError, type Target } from './target.js';

/**
 * The alerts a server sends when it refuses a client certificate (RFC 8446 §6.2), by the name
 * Node gives OpenSSL's reason for them after its `ERR_SSL_<prefix>_ALERT_` prefix.
 */
const CERTIFICATE_ALERTS: Readonly<Record<string, string>> = {
  BAD_CERTIFICATE: 'bad_certificate',
  UNSUPPORTED_CERTIFICATE: 'unsupported_certificate',
  CERTIFICATE_REVOKED: 'certificate_revoked',
  CERTIFICATE_EXPIRED: 'certificate_expired',
  CERTIFICATE_UNKNOWN: 'certificate_unknown',
  UNKNOWN_CA: 'unknown_ca',
  ACCESS_DENIED: 'access_denied',
  CERTIFICATE_REQUIRED: 'certificate_required',
};

/**
 * Node's code for a received alert: OpenSSL before 3.2 spells the reason `sslv3 alert …`,
 * `tlsv1 alert …` or `tlsv13 alert …`, OpenSSL 3.2 and later (Node 22, 24) `ssl/tls alert …`,
 * so the same alert is `ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE` or `ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE`.
 */
const ALERT_CODE = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13|SSL\/TLS)_ALERT_([A-Z_]+)$/;

/** The alert's name when `err` is a server's refusal of our certificate, else undefined. */
export function certificateAlertOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  const alert = ALERT_CODE.exec(code)?.[1];
  return alert !== undefined && Object.hasOwn(CERTIFICATE_ALERTS, alert)
    ? CERTIFICATE_ALERTS[alert]
    : undefined;
}

/** A reset or a close, as Node's sockets and undici report them (not a timeout, not a parse error). */
function isClose(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (code === 'ECONNRESET' || code === 'EPIPE') return true;
  return code === 'UND_ERR_SOCKET' && (message === 'other side closed' || message === 'closed');
}

/** The refusal: what the server did, naming this workload, its trust domain and the destination. */
export function refusedBy(target: Target, svid: X509Svid, what: string, cause?: unknown): SidecarlessError {
  const id = svid.id.toString();
  const trustDomain = svid.id.trustDomain.name;
  return destinationError(
    'ERR_REFUSED_BY_SERVER',
    target,
    `the server ${what} during authentication, before any answer on this new connection: it may not trust this workload (${id}, trust domain ${trustDomain}); check that the server trusts the authorities of ${trustDomain} and that its authorization allows ${id}`,
    { workload: id, trustDomain },
    cause,
  );
}

type Emit = (this: TLSSocket, event: string | symbol, ...args: unknown[]) => boolean;

// The sockets still watched, each with what ends its watch.
const watching = new WeakMap<object, () => void>();

/**
 * The server answered on `socket`: the window of watchForRefusal closes. Its first `data` event
 * closes it too, but an HTTP/2 session reads its socket's handle directly and the socket never
 * emits `data`: without this, a reset long after the answers would be reported as a refusal.
 */
export function answered(socket: object | undefined): void {
  if (socket !== undefined) watching.get(socket)?.();
}

/**
 * Watches a new mTLS connection from its handover until its first byte from the server. A
 * reset in that window after the client wrote (or a certificate alert at any point in it), and
 * with `closes` a clean close too, is reported as `ERR_REFUSED_BY_SERVER` with the network error
 * as its cause. The socket's own `emit` is wrapped for that window only (its first `data` event
 * restores it, as does {@link answered}), so the replacement reaches every listener, undici's and
 * node:http's included; later errors, and errors on connections that already answered, are left
 * as they are.
 */
export function watchForRefusal(socket: TLSSocket, target: Target, svid: X509Svid, closes: boolean): void {
  const written = socket.bytesWritten;
  const original = socket.emit as Emit;
  let refusal: SidecarlessError | undefined;
  const refuse = (what: string, cause: unknown) => {
    if (refusal === undefined) {
      refusal = refusedBy(target, svid, what, cause);
      refusedAfterHandover(socket, refusal);
    }
    return refusal;
  };
  const restore = () => {
    watching.delete(socket);
    if (socket.emit === wrapped) socket.emit = original as TLSSocket['emit'];
  };
  const wrapped = function (this: TLSSocket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'data') {
      restore();
    } else if (event === 'error') {
      const alert = certificateAlertOf(args[0]);
      if (alert !== undefined) args[0] = refuse(`sent the TLS alert ${alert}`, args[0]);
      else if (socket.bytesWritten > written && isClose(args[0]))
        args[0] = refuse('reset the connection', args[0]);
    } else if (event === 'end' && closes && socket.bytesWritten > written) {
      // node:http reports a bare close as "socket hang up" and undici as "other side closed":
      // an error event first lets both report the refusal instead.
      original.call(this, 'error', refuse('closed the connection', undefined));
    }
    return original.call(this, event, ...args);
  } as TLSSocket['emit'];
  socket.emit = wrapped;
  watching.set(socket, restore);
}

/**
 * Our own SVID, checked before a connection is made: a server refuses an expired or not yet
 * valid certificate, and the caller should hear about its own identity, not a peer's.
 * @throws SidecarlessError `ERR_OWN_SVID_EXPIRED`, `ERR_OWN_SVID_NOT_YET_VALID`
 */
export function checkOwnSvid(identity: WorkloadIdentity, target: Target, now = Date.now()): void {
  const { svid } = identity;
  const id = svid.id.toString();
  const detail = { workload: id, trustDomain: svid.id.trustDomain.name };
  if (now > svid.notAfter.getTime()) {
    throw destinationError(
      'ERR_OWN_SVID_EXPIRED',
      target,
      `this workload's SVID ${id} expired at ${svid.notAfter.toISOString()} (the earliest notAfter of its chain); no server would accept it, so no connection was made: its identity source has not renewed it`,
      detail,
    );
  }
  if (now < svid.notBefore.getTime()) {
    throw destinationError(
      'ERR_OWN_SVID_NOT_YET_VALID',
      target,
      `this workload's SVID ${id} is not valid before ${svid.notBefore.toISOString()}; no server would accept it yet, so no connection was made: check this host's clock`,
      detail,
    );
  }
}
