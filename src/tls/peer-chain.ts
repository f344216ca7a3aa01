import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { MAX_CHAIN_LENGTH } from '../x509/verify.js';

/**
 * The peer's certificate chain as node:tls exposes it, leaf first, as DER. Empty when the peer
 * presented no certificate. Bounded: a loop or an overlong chain stops the walk (verifyPeerChain
 * then refuses the length).
 */
export function peerChainOf(socket: TLSSocket): Buffer[] {
  // An empty object when there is no peer certificate (and on a resumed client session).
  const leaf = socket.getPeerCertificate(true) as Partial<DetailedPeerCertificate> | null;
  if (leaf === null || !Buffer.isBuffer(leaf.raw)) return [];
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
