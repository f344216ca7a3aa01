import { constants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { noMatchCrlPem, type TlsMaterial } from '../tls/material.js';

/** What a server context needs for safe resumption. */
export interface ResumptionContext {
  /** At most 32 bytes (OpenSSL's SSL_MAX_SID_CTX_LENGTH). */
  readonly sessionIdContext: string;
  readonly lifetimeSeconds: number;
}

/**
 * The COMPLETE secure-context options of a server, from the identity's TLS material. One function
 * builds them for the first context and for every rotation: `setSecureContext()` does not merge,
 * so an option left out is reset (a missing `ca` means Node's public roots; a missing
 * `secureOptions` drops SSL_OP_NO_TICKET). docs/node-tls.md §1.
 */
export function serverContextOptions(
  material: TlsMaterial,
  minVersion: 'TLSv1.2' | 'TLSv1.3',
  resumption?: ResumptionContext,
): SecureContextOptions {
  const common: SecureContextOptions = {
    key: material.key,
    cert: material.cert,
    // The bundles' authorities: OpenSSL builds the client's chain to them and advertises their
    // names; the no-match CRL makes its verdict fail after that, so the whole chain is exposed and
    // verified in JS against the bundle of the peer's own trust domain (src/tls/material.ts).
    ca: [...material.ca],
    crl: noMatchCrlPem(),
    minVersion,
  };
  if (resumption === undefined) {
    // No session tickets: a resumed session would skip every check a full handshake makes.
    return { ...common, secureOptions: constants.SSL_OP_NO_TICKET };
  }
  // Tickets on, bound to this SVID, bundle generation and server instance: a session made under
  // anything else gets a full handshake. Every context has fresh random ticket keys (none are
  // given), and a resumed connection is admitted only against the record of a full handshake that
  // was admitted under this very context (ServerCore).
  return {
    ...common,
    sessionIdContext: resumption.sessionIdContext,
    sessionTimeout: resumption.lifetimeSeconds,
  };
}
