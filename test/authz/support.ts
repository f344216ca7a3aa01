import type { Peer } from '../../src/authz/peer.js';
import { fakePeer } from '../../src/testing/index.js';

/** Peers of every kind authorization tells apart, by name. */
export const PEERS = {
  ui: fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui'),
  api: fakePeer('spiffe://cluster.local/ns/demo/sa/api'),
  ops: fakePeer('spiffe://cluster.local/ns/ops/sa/admin'),
  /** One segment deeper than ui. */
  deep: fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui/extra'),
  /** ui's path in a federated trust domain. */
  federated: fakePeer('spiffe://partner.example/ns/demo/sa/app-ui'),
  plaintext: fakePeer(null),
  /** TLS, but no client certificate. */
  tlsNoCert: fakePeer({ tls: true }),
} as const satisfies Record<string, Peer>;

export type PeerName = keyof typeof PEERS;
export const PEER_NAMES = Object.keys(PEERS) as PeerName[];
