import type { Peer } from '../authz/peer.js';

// The Peer of each connection, computed once when the connection is accepted (server) or
// established (client), keyed by the socket object. The public getPeer() reads it back from a
// request, a response, an HTTP/2 stream or session, or the socket itself.
const peers = new WeakMap<object, Peer>();

/** Records the peer of a connection. */
export function setPeer(socket: object, peer: Peer): void {
  peers.set(socket, peer);
}

/** The peer recorded for a socket, if any. */
export function peerOf(socket: object): Peer | undefined {
  return peers.get(socket);
}
