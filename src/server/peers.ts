import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Peer } from '../authz/peer.js';
import type { PeerEvent } from '../observe/channels.js';
import type { VerifiedPeerChain } from '../x509/verify.js';

function remote(socket: Socket): string | null {
  return socket.remoteAddress ?? null;
}

/** A plaintext peer: no TLS, no identity. */
export function plaintextPeer(socket: Socket): Peer {
  return Object.freeze({
    id: null,
    trustDomain: null,
    mtls: false,
    tls: false,
    certificate: null,
    chain: Object.freeze([]),
    notAfter: null,
    remoteAddress: remote(socket),
    alpn: null,
    resumed: false,
  });
}

function alpnOf(socket: TLSSocket): string | null {
  return typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null;
}

/** A TLS peer that presented no client certificate (PERMISSIVE): encrypted, unauthenticated. */
export function tlsOnlyPeer(socket: TLSSocket, raw: Socket): Peer {
  return Object.freeze({
    id: null,
    trustDomain: null,
    mtls: false,
    tls: true,
    certificate: null,
    chain: Object.freeze([]),
    notAfter: null,
    remoteAddress: remote(raw),
    alpn: alpnOf(socket),
    resumed: socket.isSessionReused(),
  });
}

/** An mTLS peer whose chain passed verifyPeerChain. */
export function mtlsPeer(socket: TLSSocket, raw: Socket, verified: VerifiedPeerChain): Peer {
  return Object.freeze({
    id: verified.id,
    trustDomain: verified.id.trustDomain,
    mtls: true,
    tls: true,
    certificate: verified.verifiedChain[0] ?? null,
    chain: verified.verifiedChain,
    notAfter: verified.notAfter,
    remoteAddress: remote(raw),
    alpn: alpnOf(socket),
    resumed: socket.isSessionReused(),
  });
}

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
