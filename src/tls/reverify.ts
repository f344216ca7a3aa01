import type { Peer } from '../authz/peer.js';
import type { BundleSet } from '../x509/bundle-set.js';
import type { PeerVerifier } from './peer-verifier.js';

/**
 * The one re-verification after a trust change, for servers and clients: the chain a peer proved
 * in its handshake, verified again against the new bundles. Returns the error when the peer no
 * longer verifies (its CA removed, its trust domain dropped, expired), undefined when it does.
 */
export function reverifyPeer(peer: Peer, bundles: BundleSet, verifier: PeerVerifier): Error | undefined {
  if (!peer.mtls) return undefined;
  try {
    verifier.verify(
      peer.chain.map((c) => c.raw),
      bundles,
    );
    return undefined;
  } catch (err) {
    return err as Error;
  }
}
