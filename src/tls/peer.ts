// The one place a Peer is built, for servers (the caller) and clients (the server) alike.
import type { TLSSocket } from 'node:tls';
import type { Peer } from '../authz/peer.js';
import type { VerifiedPeerChain } from '../x509/verify.js';

const NO_CHAIN = Object.freeze([]) as readonly never[];

/** What a connection showed of its peer. */
export interface PeerFacts {
  /** The TLS socket, when the connection is TLS. */
  readonly socket?: TLSSocket | undefined;
  /** The verified chain, when the peer presented a certificate that passed every check. */
  readonly verified?: VerifiedPeerChain | undefined;
  /** The peer's address (the TCP socket's: a TLS socket over a JS stream has none). */
  readonly remoteAddress: string | null | undefined;
  /** Whether the session was resumed (taken from the socket when not given). */
  readonly resumed?: boolean | undefined;
}

function alpnOf(socket: TLSSocket | undefined): string | null {
  const alpn = socket?.alpnProtocol;
  return typeof alpn === 'string' && alpn !== '' ? alpn : null;
}

/**
 * Builds the frozen Peer of a connection: plaintext (no socket), TLS without a certificate (a
 * socket, nothing verified), or mTLS (a verified chain).
 */
export function buildPeer(facts: PeerFacts): Peer {
  const { socket, verified } = facts;
  return Object.freeze({
    id: verified?.id ?? null,
    trustDomain: verified?.id.trustDomain ?? null,
    mtls: verified !== undefined,
    tls: socket !== undefined,
    certificate: verified?.verifiedChain[0] ?? null,
    chain: verified?.verifiedChain ?? NO_CHAIN,
    notAfter: verified?.notAfter ?? null,
    remoteAddress: facts.remoteAddress ?? null,
    alpn: alpnOf(socket),
    resumed: facts.resumed ?? socket?.isSessionReused() ?? false,
  });
}
