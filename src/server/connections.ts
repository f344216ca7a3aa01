import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Peer } from '../authz/peer.js';
import type { ErrorCode } from '../errors.js';
import type { Edge } from '../observe/edges.js';
import type { PeerVerifier } from '../tls/peer-verifier.js';
import { reverifyPeer } from '../tls/reverify.js';
import type { BundleSet } from '../x509/bundle-set.js';
import { DeadlineQueue } from './deadlines.js';
import { inFlightResponse } from './listener.js';

/** One open connection, from the TCP socket to the object the HTTP layer was given. */
export interface Connection {
  /** The TCP socket. */
  readonly raw: Socket;
  /** What the protocol layer reads from: the TLSSocket, the raw socket, or the h2c stream. */
  readonly socket: object;
  readonly peer: Peer;
  /** Plaintext admitted under STRICT for `plaintextPaths` only: each request is checked. */
  readonly limited: boolean;
  /** The inbound edge of its peer, bumped by each request. */
  readonly edge: Edge;
  /** Set once the connection must end: further requests on it are refused. */
  closing: ErrorCode | undefined;
  session: Http2Session | undefined;
}

function endSoon(raw: Socket): void {
  raw.end();
  raw.destroySoon();
}

/**
 * Open connections by kind, as {@link ServerReport} shows them.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type ConnectionCounts } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * const open: ConnectionCounts = server.describe().connections;
 * console.log(open.mtls, open.plaintext);
 * ```
 */
export interface ConnectionCounts {
  /** Connections whose peer presented a verified SVID. */
  readonly mtls: number;
  /** TLS connections without a client certificate (PERMISSIVE). */
  readonly tlsWithoutIdentity: number;
  /** Plaintext connections. */
  readonly plaintext: number;
}

/**
 * Tracks open connections with their peers so that they do not outlive the peer's identity:
 * closed when the peer certificate's notAfter passes, at the maximum connection age, and when a
 * trust change means the peer no longer verifies. Closing is graceful (in-flight requests finish).
 */
export class ConnectionTracker {
  readonly #open = new Set<Connection>();
  readonly #bySocket = new WeakMap<object, Connection>();
  readonly #maxAge: number | undefined;
  readonly #onClose: (connection: Connection, reason: ErrorCode, message: string) => void;
  // One timer for every connection's deadlines (notAfter, maximum age): a timer per connection
  // costs memory and work per handshake, and connections of one peer share its notAfter.
  readonly #deadlines = new DeadlineQueue<Connection, ErrorCode>((connection, reason) =>
    this.#due(connection, reason),
  );

  constructor(
    maxAge: number | undefined,
    onClose: (connection: Connection, reason: ErrorCode, message: string) => void,
  ) {
    this.#maxAge = maxAge;
    this.#onClose = onClose;
  }

  add(raw: Socket, socket: object, peer: Peer, limited: boolean, edge: Edge): Connection {
    const connection: Connection = {
      raw,
      socket,
      peer,
      limited,
      edge,
      closing: undefined,
      session: undefined,
    };
    this.#open.add(connection);
    this.#bySocket.set(socket, connection);
    const expiry =
      peer.notAfter === null
        ? undefined
        : this.#deadlines.add(peer.notAfter.getTime() + 1, connection, 'ERR_PEER_EXPIRED');
    const maxAge =
      this.#maxAge === undefined
        ? undefined
        : this.#deadlines.add(Date.now() + this.#maxAge, connection, 'ERR_CONNECTION_MAX_AGE');
    raw.once('close', () => {
      this.#open.delete(connection);
      if (expiry !== undefined) this.#deadlines.remove(expiry, connection);
      if (maxAge !== undefined) this.#deadlines.remove(maxAge, connection);
    });
    return connection;
  }

  #due(connection: Connection, reason: ErrorCode): void {
    if (!this.#open.has(connection)) return;
    const message =
      reason === 'ERR_PEER_EXPIRED'
        ? `the peer certificate expired at ${connection.peer.notAfter?.toISOString()}`
        : `the connection reached its maximum age of ${this.#maxAge} ms`;
    this.close(connection, reason, message);
  }

  of(socket: object): Connection | undefined {
    return this.#bySocket.get(socket);
  }

  counts(): ConnectionCounts {
    let mtls = 0;
    let tlsWithoutIdentity = 0;
    let plaintext = 0;
    for (const { peer } of this.#open) {
      if (peer.mtls) mtls++;
      else if (peer.tls) tlsWithoutIdentity++;
      else plaintext++;
    }
    return { mtls, tlsWithoutIdentity, plaintext };
  }

  /** Ends a connection gracefully: HTTP/2 sends GOAWAY, HTTP/1.1 ends after the response in flight. */
  close(connection: Connection, reason: ErrorCode, message: string): void {
    if (connection.closing !== undefined || connection.raw.destroyed) return;
    connection.closing = reason;
    this.#onClose(connection, reason, message);
    if (connection.session !== undefined) {
      connection.session.close();
      return;
    }
    const current = inFlightResponse(connection.socket);
    if (current !== undefined && !current.writableEnded) {
      if (!current.headersSent) current.shouldKeepAlive = false; // the response says "Connection: close"
      current.once('finish', () => endSoon(connection.raw));
    } else {
      endSoon(connection.raw);
    }
  }

  /**
   * Re-verifies every mTLS connection against new bundles; those whose peer no longer verifies are
   * closed. Returns how many were closed.
   */
  reverify(bundles: BundleSet, verifier: PeerVerifier): number {
    let closed = 0;
    for (const connection of this.#open) {
      if (connection.closing !== undefined) continue;
      const err = reverifyPeer(connection.peer, bundles, verifier);
      if (err === undefined) continue;
      closed++;
      this.close(connection, 'ERR_PEER_NO_LONGER_TRUSTED', `after a trust change: ${err.message}`);
    }
    return closed;
  }

  /** Closes every mTLS and TLS connection (the server's own identity was withdrawn). */
  closeEncrypted(reason: ErrorCode, message: string): number {
    let closed = 0;
    for (const connection of this.#open) {
      if (connection.peer.tls && connection.closing === undefined) {
        closed++;
        this.close(connection, reason, message);
      }
    }
    return closed;
  }

  /** Every open connection (for close-on-shutdown). */
  all(): IterableIterator<Connection> {
    return this.#open.values();
  }
}
