// The mode a server's port is in, from what the three probes of `sidecarless check` saw: a pure
// decision, as Istio's PeerAuthentication modes read from outside.
//   plaintext answered, TLS spoken            PERMISSIVE (both on one port)
//   plaintext answered, no TLS                DISABLE    (plaintext only)
//   plaintext refused, TLS needs a client cert STRICT    (mTLS only)
// Anything else (nothing answers; TLS without a client certificate accepted but no plaintext) is
// no mesh mode: UNKNOWN, with the reason.

/** A mode inferred from outside, or UNKNOWN. */
export type InferredMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNKNOWN';

/** What inferMode reads of the probes. */
export interface ProbeFacts {
  /** Probe 1 got an HTTP answer in plaintext. */
  readonly plaintext: boolean;
  /** Probe 2 completed a TLS handshake. */
  readonly tlsHandshake: boolean;
  /** Probe 2 got an HTTP answer over TLS without a client certificate. */
  readonly tlsWithoutCertificate: boolean;
  /** Probe 3 got an HTTP answer over mTLS; undefined when it was skipped (no identity). */
  readonly mtls: boolean | undefined;
}

export interface ModeVerdict {
  readonly mode: InferredMode;
  readonly reason: string;
}

export function inferMode(f: ProbeFacts): ModeVerdict {
  const speaksTls = f.tlsHandshake || f.mtls === true;
  if (f.plaintext && speaksTls) {
    return { mode: 'PERMISSIVE', reason: 'plaintext and TLS are both served on this port' };
  }
  if (f.plaintext) return { mode: 'DISABLE', reason: 'plaintext is served and TLS is not spoken' };
  if (f.tlsWithoutCertificate) {
    return {
      mode: 'UNKNOWN',
      reason: 'TLS without a client certificate is served and plaintext is not: a TLS server, not mTLS',
    };
  }
  if (speaksTls) {
    return {
      mode: 'STRICT',
      reason:
        f.mtls === true
          ? 'plaintext is refused, TLS without a client certificate is refused, mTLS is accepted'
          : f.mtls === false
            ? 'plaintext is refused, TLS requires a client certificate (ours was refused)'
            : 'plaintext is refused, TLS requires a client certificate (mTLS not tried: no identity)',
    };
  }
  return { mode: 'UNKNOWN', reason: 'neither plaintext nor TLS got an answer' };
}
