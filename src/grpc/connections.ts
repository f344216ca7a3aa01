import type { Metadata } from '@grpc/grpc-js';
import type { Peer } from '../authz/peer.js';
import type { Connection } from '../server/connections.js';

/** The four numbers grpc-js reports for the TCP connection of a call (`getConnectionInfo()`). */
export interface FourTuple {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

function keyOf(info: FourTuple): string | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = info;
  // A unix socket has no remote address: no key, so no call on it is ever admitted.
  if (!localAddress || !remoteAddress || !localPort || !remotePort) return undefined;
  return `${localAddress}|${localPort}|${remoteAddress}|${remotePort}`;
}

/**
 * The admitted connections of one gRPC listener, by TCP four-tuple. grpc-js's interceptors see a
 * call's connection only as its addresses and ports; among open TCP connections the four-tuple
 * is unique, so it names exactly one admitted connection. A tuple already held by an open
 * connection is refused rather than shared (fail closed).
 */
export class GrpcConnections {
  readonly #open = new Map<string, Connection>();

  /** Registers an admitted connection; false when its tuple cannot be told apart (refuse it). */
  add(connection: Connection, info: FourTuple): boolean {
    const key = keyOf(info);
    if (key === undefined || this.#open.has(key)) return false;
    this.#open.set(key, connection);
    connection.raw.once('close', () => {
      if (this.#open.get(key) === connection) this.#open.delete(key);
    });
    return true;
  }

  /** The admitted, open connection a call arrived on, if any. */
  of(info: FourTuple): Connection | undefined {
    const key = keyOf(info);
    const connection = key === undefined ? undefined : this.#open.get(key);
    return connection === undefined || connection.raw.destroyed ? undefined : connection;
  }
}

// The Peer of each admitted call, keyed by the Metadata object grpc-js hands the handler: set by
// the library's interceptor after authorization, never read from what the caller sent.
const callPeers = new WeakMap<Metadata, Peer>();

/** Records the peer of an admitted call. */
export function setCallPeer(metadata: Metadata, peer: Peer): void {
  callPeers.set(metadata, peer);
}

/** The peer recorded for a call's metadata. */
export function callPeerOf(metadata: Metadata): Peer | undefined {
  return callPeers.get(metadata);
}
