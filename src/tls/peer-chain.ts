import { hash, type X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { MAX_CHAIN_LENGTH } from '../x509/verify.js';
import { leafOfSessionDer } from './session-der.js';

/**
 * The peer's certificate chain as node:tls exposes it, leaf first, as DER. Empty when the peer
 * presented no certificate. Bounded: a loop or an overlong chain stops the walk (verifyPeerChain
 * then refuses the length).
 */
export function peerChainOf(socket: TLSSocket): Buffer[] {
  return X509_PEER_API_SAFE
    ? x509ChainOf(socket)
    : chainOfCertificate(socket.getPeerCertificate(true) as Partial<DetailedPeerCertificate> | null);
}

/**
 * The peer's leaf alone, as DER, when reading the whole chain is dear ({@link PEER_CHAIN_IS_DEAR});
 * empty when the peer presented no certificate.
 */
export function peerLeafOf(socket: TLSSocket): Buffer[] {
  const leaf = sessionPeerLeafOf(socket);
  return leaf === undefined ? [] : [leaf];
}

/**
 * Whether {@link peerChainOf} takes the legacy detailed object: about 190 µs per handshake on
 * Node 20 against 30 µs for the abbreviated leaf (measured in a server's `secureConnection`), a
 * sixth of a server's whole handshake cost. {@link peerLeafOf} reads the leaf from the session's
 * encoding instead, a few µs.
 */
export const PEER_CHAIN_IS_DEAR = !isX509PeerApiSafe();

/**
 * Node 20's getPeerX509Certificate() leaks native memory: about 4.5 KB per call, RSS growing
 * without bound under handshake load (bench/peer-cert-memory.bench.mjs; the legacy
 * getPeerCertificate(true) does not leak; Node 24's X509 API does not either). So Node 20 takes the
 * legacy object, which costs more per handshake (527 vs 9 µs measured) but keeps memory flat.
 */
export const X509_PEER_API_SAFE = isX509PeerApiSafe();

function isX509PeerApiSafe(): boolean {
  return Number(process.versions.node.split('.')[0]) >= 24;
}

/**
 * X509Certificate objects and their issuer links (Node 24): a fraction of the legacy object's cost,
 * and Node links a presented intermediate even when OpenSSL would not use it (no keyCertSign),
 * so verifyPeerChain can name that fault.
 */
function x509ChainOf(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket.getPeerX509Certificate();
  while (cert !== undefined && chain.length <= MAX_CHAIN_LENGTH + 1) {
    chain.push(cert.raw);
    const issuer: X509Certificate | undefined = cert.issuerCertificate;
    if (issuer === undefined || issuer === cert || issuer.raw.equals(cert.raw)) break;
    cert = issuer;
  }
  return chain;
}

/**
 * The chain of a detailed legacy certificate object (what `getPeerCertificate(true)` returns, and
 * what a client's `checkServerIdentity` is given), leaf first, as DER.
 */
export function chainOfCertificate(leaf: Partial<DetailedPeerCertificate> | null | undefined): Buffer[] {
  if (leaf === null || leaf === undefined || !Buffer.isBuffer(leaf.raw)) return [];
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let cert = leaf as DetailedPeerCertificate | undefined;
  while (cert?.raw !== undefined && !seen.has(cert.fingerprint256) && chain.length <= MAX_CHAIN_LENGTH + 1) {
    seen.add(cert.fingerprint256);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * The peer's leaf on a server session, full or resumed, as DER, or undefined when it holds none.
 * It is what getPeerCertificate() returns (OpenSSL's session peer, restored from the ticket on a
 * resumption), read without building the legacy object, which costs about 0.1 ms per
 * connection, a tenth of a resumed connection's server CPU: Node 24 reads it through the X509
 * API; Node 20, whose X509 API leaks ({@link X509_PEER_API_SAFE}), from the session's own
 * encoding, falling back to the legacy object when that encoding is not what
 * {@link leafOfSessionDer} expects.
 */
export function sessionPeerLeafOf(socket: TLSSocket): Buffer | undefined {
  if (X509_PEER_API_SAFE) return socket.getPeerX509Certificate()?.raw;
  const session = socket.getSession();
  const leaf = session === undefined ? undefined : leafOfSessionDer(session);
  if (leaf !== undefined) return leaf === null ? undefined : leaf;
  const raw = (socket.getPeerCertificate(false) as { raw?: unknown } | null)?.raw;
  return Buffer.isBuffer(raw) ? raw : undefined;
}

/**
 * A certificate's key in the server's admission records: its SHA-256 fingerprint as
 * `X509Certificate.fingerprint256` spells it (upper-case hex pairs joined by colons), so a
 * resumed connection on Node 24 gets it from OpenSSL without copying the leaf out.
 */
export function fingerprintOf(der: Buffer): string {
  const hex = hash('sha256', der, 'hex').toUpperCase();
  let out = hex.slice(0, 2);
  for (let i = 2; i < hex.length; i += 2) out += `:${hex.slice(i, i + 2)}`;
  return out;
}

/**
 * {@link fingerprintOf} the peer's leaf on a server session, full or resumed, or undefined when it
 * holds none: on Node 24 the X509 API's own fingerprint (no DER copy, no hash in JavaScript, about
 * 10 µs less per resumed connection), elsewhere the fingerprint of {@link sessionPeerLeafOf}.
 */
export function sessionPeerLeafKey(socket: TLSSocket): string | undefined {
  if (X509_PEER_API_SAFE) return socket.getPeerX509Certificate()?.fingerprint256;
  const leaf = sessionPeerLeafOf(socket);
  return leaf === undefined ? undefined : fingerprintOf(leaf);
}
