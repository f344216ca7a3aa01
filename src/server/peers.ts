import type { Socket } from 'node:net';
import type { Peer } from '../authz/peer.js';
import type { PeerEvent } from '../observe/channels.js';

/** The event form of a peer: IDs and serials, no certificates. */
export function peerEvent(peer: Peer, raw: Socket): PeerEvent {
  return Object.freeze({
    id: peer.id?.toString() ?? null,
    mtls: peer.mtls,
    tls: peer.tls,
    serial: peer.certificate?.serialNumber ?? null,
    notAfter: peer.notAfter,
    remoteAddress: peer.remoteAddress,
    remotePort: raw.remotePort ?? null,
    alpn: peer.alpn,
    resumed: peer.resumed,
  });
}
