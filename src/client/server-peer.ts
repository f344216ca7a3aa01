import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Peer } from '../authz/peer.js';
import { SidecarlessError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/source.js';
import { buildPeer } from '../tls/peer.js';
import { chainOfCertificate, peerChainOf, X509_PEER_API_SAFE } from '../tls/peer-chain.js';
import type { PeerVerifier } from '../tls/peer-verifier.js';
import type { VerifiedPeerChain } from '../x509/verify.js';
import { destinationError, type Target } from './target.js';

/**
 * Authenticates the server of a finished handshake, synchronously, before the socket is handed to
 * anything that writes a request: its chain must pass verifyPeerChain against the bundle of its
 * own trust domain, and its SPIFFE ID must match the destination's `expect`. This replaces
 * hostname verification (OpenSSL's verdict and checkServerIdentity are not consulted: measured,
 * Node skips checkServerIdentity on resumed sessions and after a failed chain check).
 * @throws SidecarlessError `ERR_SVID_*` from verification, `ERR_PEER_ID_MISMATCH`, naming the
 *   destination
 */
export function verifyServer(
  socket: TLSSocket,
  target: Target,
  identity: WorkloadIdentity,
  verifier: PeerVerifier,
  remoteAddress: string | undefined,
  presented: DetailedPeerCertificate | undefined,
): Peer {
  // A resumed client session exposes no certificate (docs/node-tls.md §2): its identity cannot be
  // checked, so it is refused whatever the chain check below would say.
  if (socket.isSessionReused()) {
    throw destinationError(
      'ERR_HANDSHAKE_FAILED',
      target,
      'the TLS session was resumed, so the server identity cannot be checked',
    );
  }
  let verified: VerifiedPeerChain;
  try {
    // getPeerCertificate(true) costs 0.4-1 ms (measured, Node 24/20): the copy Node already made
    // for checkServerIdentity is reused when there is one.
    // Where the X509 API is cheap and safe (Node 24) it gives the chain as presented, so a
    // misordered chain or an intermediate without keyCertSign is named as the server does.
    const chain =
      presented === undefined || X509_PEER_API_SAFE ? peerChainOf(socket) : chainOfCertificate(presented);
    verified = verifier.verify(chain, identity.bundles);
  } catch (err) {
    if (!(err instanceof SidecarlessError)) throw err;
    throw destinationError(err.code, target, `server certificate refused: ${err.message}`, err.detail, err);
  }
  const peer = buildPeer({ socket, verified, remoteAddress: remoteAddress ?? socket.remoteAddress });
  const expect = target.destination.expect;
  if (expect === undefined || !expect(peer)) {
    throw destinationError(
      'ERR_PEER_ID_MISMATCH',
      target,
      `the server presented ${verified.id}, but ${expect?.source ?? 'nothing'} was expected`,
      { peer: verified.id.toString() },
    );
  }
  return peer;
}

const rawChains = new WeakMap<Peer, readonly Buffer[]>();

/** A verified Peer's chain as DER, frozen and kept with it: each resumption verifies it again. */
function rawChainOf(peer: Peer): readonly Buffer[] {
  let chain = rawChains.get(peer);
  if (chain === undefined) {
    chain = Object.freeze(peer.chain.map((c) => c.raw));
    rawChains.set(peer, chain);
  }
  return chain;
}

/**
 * Authenticates the server of a resumed session: the Peer verified by the full handshake that
 * made the session must still verify against the current bundles and match `expect`. The
 * session's secret proves it is the same server (or one holding its ticket keys, which servers
 * must rotate whenever their identity or trust changes).
 * @throws SidecarlessError as {@link verifyServer}
 */
export function resumedServer(
  socket: TLSSocket,
  target: Target,
  identity: WorkloadIdentity,
  verifier: PeerVerifier,
  remoteAddress: string | undefined,
  cached: Peer,
): Peer {
  let verified: VerifiedPeerChain;
  try {
    verified = verifier.verify(rawChainOf(cached), identity.bundles);
  } catch (err) {
    if (!(err instanceof SidecarlessError)) throw err;
    throw destinationError(
      err.code,
      target,
      `resumed server no longer trusted: ${err.message}`,
      err.detail,
      err,
    );
  }
  const peer = buildPeer({
    socket,
    verified,
    remoteAddress: remoteAddress ?? socket.remoteAddress,
    resumed: true,
  });
  if (target.destination.expect?.(peer) !== true) {
    throw destinationError(
      'ERR_PEER_ID_MISMATCH',
      target,
      `the resumed session is with ${verified.id}, but ${target.destination.expect?.source ?? 'nothing'} was expected`,
      { peer: verified.id.toString() },
    );
  }
  return peer;
}
