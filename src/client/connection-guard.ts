import type { TLSSocket } from 'node:tls';
import type { Peer } from '../authz/peer.js';
import { DeadlineQueue } from '../server/deadlines.js';
import type { PeerVerifier } from '../tls/peer-verifier.js';
import { reverifyPeer } from '../tls/reverify.js';
import type { BundleSet } from '../x509/bundle-set.js';

interface Tracked {
  readonly peer: Peer;
  /** The deadline bucket of its server certificate's notAfter. */
  readonly due: number;
}

/**
 * Watches the pooled mTLS connections of one client. A connection stays in the pool until it
 * closes, except when its server's identity stops holding: at the server certificate's notAfter,
 * or when new bundles no longer verify it. Then it is retired: closed as soon as it is idle, so
 * no in-flight request is cut (the owner knows what idle means for its pool).
 */
export class ConnectionGuard {
  readonly #sockets = new Map<TLSSocket, Tracked>();
  readonly #verifier: PeerVerifier;
  readonly #retire: (socket: TLSSocket) => void;
  // One timer for every connection's notAfter: a timer per connection cost about 10 µs per
  // handshake (bench/README.md, pair section), and the connections of one server share its notAfter.
  readonly #deadlines = new DeadlineQueue<TLSSocket, true>((socket) => this.#retireNow(socket));

  constructor(verifier: PeerVerifier, retire: (socket: TLSSocket) => void) {
    this.#verifier = verifier;
    this.#retire = retire;
  }

  track(socket: TLSSocket, peer: Peer): void {
    const notAfter = peer.notAfter?.getTime() ?? Date.now();
    const due = this.#deadlines.add(notAfter, socket, true);
    this.#sockets.set(socket, { peer, due });
    // 'close' is emitted once: no `once` wrapper needed.
    socket.on('close', () => this.#forget(socket));
  }

  /** Re-verifies every pooled connection against new bundles; retires those that fail. */
  bundlesChanged(bundles: BundleSet): void {
    for (const [socket, { peer }] of this.#sockets) {
      if (reverifyPeer(peer, bundles, this.#verifier) !== undefined) this.#retireNow(socket);
    }
  }

  /** How many connections are watched (for tests and describe()). */
  get size(): number {
    return this.#sockets.size;
  }

  close(): void {
    for (const socket of [...this.#sockets.keys()]) this.#forget(socket);
  }

  #retireNow(socket: TLSSocket): void {
    if (!this.#sockets.has(socket)) return;
    this.#forget(socket);
    this.#retire(socket);
  }

  #forget(socket: TLSSocket): void {
    const tracked = this.#sockets.get(socket);
    if (tracked !== undefined) this.#deadlines.remove(tracked.due, socket);
    this.#sockets.delete(socket);
  }
}
