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

interface Entry {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly connection: Connection;
}

interface Tuple {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/** A unix socket has no remote address: no tuple, so no call on it is ever admitted. */
function complete(info: FourTuple): info is Tuple {
  return !!info.localAddress && !!info.remoteAddress && !!info.localPort && !!info.remotePort;
}

const same = (entry: Entry, info: Tuple) =>
  entry.localPort === info.localPort &&
  entry.remoteAddress === info.remoteAddress &&
  entry.localAddress === info.localAddress;

/**
 * The admitted connections of one gRPC listener, by TCP four-tuple. grpc-js's interceptors see a
 * call's connection only as its addresses and ports; among open TCP connections the four-tuple
 * is unique, so it names exactly one admitted connection. A tuple already held by an open
 * connection is refused rather than shared (fail closed). Looked up on every call: indexed by
 * the remote port, the other three compared field by field (no key string built per call).
 */
export class GrpcConnections {
  readonly #byRemotePort = new Map<number, Entry[]>();

  /** Registers an admitted connection; false when its tuple cannot be told apart (refuse it). */
  add(connection: Connection, info: FourTuple): boolean {
    if (!complete(info)) return false;
    const { localAddress, localPort, remoteAddress, remotePort } = info;
    const entries = this.#byRemotePort.get(remotePort) ?? [];
    if (entries.some((e) => same(e, info))) return false;
    const entry: Entry = { localAddress, localPort, remoteAddress, connection };
    entries.push(entry);
    this.#byRemotePort.set(remotePort, entries);
    connection.raw.once('close', () => {
      const now = this.#byRemotePort.get(remotePort);
      const at = now === undefined ? -1 : now.indexOf(entry);
      if (now === undefined || at === -1) return;
      now.splice(at, 1);
      if (now.length === 0) this.#byRemotePort.delete(remotePort);
    });
    return true;
  }

  /** The admitted, open connection a call arrived on, if any. */
  of(info: FourTuple): Connection | undefined {
    if (!complete(info)) return undefined;
    const entries = this.#byRemotePort.get(info.remotePort);
    if (entries === undefined) return undefined;
    for (const entry of entries) {
      if (same(entry, info)) return entry.connection.raw.destroyed ? undefined : entry.connection;
    }
    return undefined;
  }
}

// The Peer of each admitted call, on the Metadata object grpc-js hands the handler, under a
// symbol only this module holds: set by the library's interceptor after authorization, never
// read from what the caller sent (metadata from the wire is strings and buffers under string
// keys). A symbol slot, not a WeakMap: set on every call, and a WeakMap entry costs far more.
const PEER: unique symbol = Symbol('sidecarless.grpc.peer');

type WithPeer = Metadata & { [PEER]?: Peer };

/** Records the peer of an admitted call. */
export function setCallPeer(metadata: Metadata, peer: Peer): void {
  (metadata as WithPeer)[PEER] = peer;
}

/** The peer recorded for a call's metadata. */
export function callPeerOf(metadata: Metadata): Peer | undefined {
  // An own property only: nothing inherited from a prototype an application built.
  return Object.hasOwn(metadata, PEER) ? (metadata as WithPeer)[PEER] : undefined;
}
