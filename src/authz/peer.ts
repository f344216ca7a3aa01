import type { X509Certificate } from 'node:crypto';
import type { SpiffeId } from '../spiffe/spiffe-id.js';
import type { TrustDomain } from '../spiffe/trust-domain.js';

/**
 * Who is on the other end of a connection, as authorization code sees it. Computed once per
 * connection by servers and clients; built by `fakePeer()` in unit tests.
 *
 * @example
 * ```ts
 * import type { Peer } from 'sidecarless';
 * function isUi(peer: Peer): boolean {
 *   return peer.mtls && peer.id?.toString() === 'spiffe://cluster.local/ns/demo/sa/app-ui';
 * }
 * ```
 */
export interface Peer {
  /** The verified SPIFFE ID; `null` for plaintext peers and TLS peers without a client certificate. */
  readonly id: SpiffeId | null;
  /** The trust domain of `id`, or `null`. */
  readonly trustDomain: TrustDomain | null;
  /** True when the peer presented a certificate that passed every check (mutual TLS). */
  readonly mtls: boolean;
  /** True when the connection is TLS (with or without a client certificate). */
  readonly tls: boolean;
  /** The peer's leaf certificate, or `null`. */
  readonly certificate: X509Certificate | null;
  /** The verified chain, leaf first (empty without mTLS). */
  readonly chain: readonly X509Certificate[];
  /** When the peer's identity stops being valid (earliest `notAfter` of its chain), or `null`. */
  readonly notAfter: Date | null;
  /** The peer's IP address, when known. */
  readonly remoteAddress: string | null;
  /** The ALPN protocol negotiated (`h2`, `http/1.1`), or `null`. */
  readonly alpn: string | null;
  /** Whether the TLS session was resumed. */
  readonly resumed: boolean;
}
