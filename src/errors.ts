import { redact } from './internal/show.js';

/**
 * Every stable error code sidecarless can throw. Each has a row in `docs/errors.md`.
 * A code, once published, is never reused for another meaning.
 */
const ERROR_CODES = [
  'ERR_OPTION_INVALID',
  'ERR_SPIFFE_ID_INVALID',
  'ERR_TRUST_DOMAIN_INVALID',
  'ERR_PEM_INVALID',
  'ERR_CERTIFICATE_INVALID',
  'ERR_KEY_INVALID',
  'ERR_KEY_UNSUPPORTED',
  'ERR_KEY_MISMATCH',
  'ERR_BUNDLE_INVALID',
  'ERR_SVID_CHAIN_EMPTY',
  'ERR_SVID_CHAIN_TOO_LONG',
  'ERR_SVID_CERTIFICATE_TOO_LARGE',
  'ERR_SVID_CHAIN_ORDER',
  'ERR_SVID_NO_URI_SAN',
  'ERR_SVID_MULTIPLE_URI_SANS',
  'ERR_SVID_ID_INVALID',
  'ERR_SVID_ID_NO_PATH',
  'ERR_SVID_LEAF_IS_CA',
  'ERR_SVID_NO_KEY_USAGE',
  'ERR_SVID_NO_DIGITAL_SIGNATURE',
  'ERR_SVID_LEAF_KEY_CERT_SIGN',
  'ERR_SVID_LEAF_CRL_SIGN',
  'ERR_SVID_EXT_KEY_USAGE',
  'ERR_SVID_EXPIRED',
  'ERR_SVID_NOT_YET_VALID',
  'ERR_SVID_NO_BUNDLE',
  'ERR_SVID_UNTRUSTED',
  'ERR_SVID_SIGNER_NOT_CA',
  'ERR_SVID_SIGNER_NO_KEY_CERT_SIGN',
  'ERR_SVID_SIGNER_EXPIRED',
  'ERR_SVID_AUTHORITY_EXPIRED',
  'ERR_SVID_PATH_LEN',
  'ERR_SVID_NAME_CONSTRAINT',
  'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION',
  'ERR_SVID_WEAK_ALGORITHM',
  'ERR_SVID_WEAK_KEY',
  'ERR_SVID_EXPLICIT_CURVE',
  'ERR_SVID_BAD_SIGNATURE',
  'ERR_NO_IDENTITY',
  'ERR_SOURCE_CLOSED',
  'ERR_TIMEOUT',
  'ERR_ABORTED',
  // Authorization policy
  'ERR_POLICY_INVALID',
  // Servers: reasons a connection or request is refused
  'ERR_PLAINTEXT_REFUSED',
  'ERR_TLS_REFUSED',
  'ERR_NO_CLIENT_CERTIFICATE',
  'ERR_SNIFF_TIMEOUT',
  'ERR_HANDSHAKE_FAILED',
  'ERR_CONNECTION_LIMIT',
  'ERR_PEER_EXPIRED',
  'ERR_CONNECTION_MAX_AGE',
  'ERR_PEER_NO_LONGER_TRUSTED',
  'ERR_NOT_AUTHORIZED',
  'ERR_NO_PEER',
  'ERR_BAD_REQUEST',
  'ERR_HANDSHAKE_TIMEOUT',
  'ERR_CLIENT_ABORTED',
  'ERR_DOOR_UNKNOWN',
  'ERR_RESUMPTION_REFUSED',
  // Clients
  'ERR_NO_DESTINATION',
  'ERR_PEER_ID_MISMATCH',
  'ERR_PEER_NOT_TLS',
  'ERR_HOST_INVALID',
  'ERR_OWN_SVID_EXPIRED',
  'ERR_OWN_SVID_NOT_YET_VALID',
  'ERR_REFUSED_BY_SERVER',
  // Identity sources
  'ERR_WORKLOAD_API_ADDRESS_INVALID',
  'ERR_WORKLOAD_API_UNAVAILABLE',
  'ERR_WORKLOAD_API_RESPONSE_INVALID',
  'ERR_WORKLOAD_API_FAILED',
  'ERR_FILE_UNREADABLE',
  // Istio configuration (sidecarless/istio)
  'ERR_ISTIO_INVALID',
  'ERR_ISTIO_UNSUPPORTED',
  'ERR_ISTIO_CONFLICT',
  // gRPC (sidecarless/grpc)
  'ERR_GRPC_UNTRACKABLE',
] as const;

/**
 * A stable error code: the union of every code sidecarless throws. See `docs/errors.md`.
 * @example
 * ```ts
 * import type { ErrorCode } from 'sidecarless';
 * const retryable: ErrorCode[] = ['ERR_TIMEOUT', 'ERR_NO_IDENTITY'];
 * ```
 */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Every code, for the test that keeps docs/errors.md in step with ErrorCode. */
export const errorCodes: readonly ErrorCode[] = ERROR_CODES;

/**
 * Fields of a {@link SidecarlessError} that name the input that was refused. Values are already
 * redacted: nothing that looks like key material survives in them.
 * @example
 * ```ts
 * import { isSidecarlessError, verifyPeerChain, BundleSet } from 'sidecarless';
 * try { verifyPeerChain([], BundleSet.empty()); } catch (err) {
 *   if (isSidecarlessError(err)) console.log(err.detail.peer, err.detail.certificate);
 * }
 * ```
 */
export interface ErrorDetail {
  /** The option or document field at fault, e.g. `"mode"` or `"keys[2].x5c"`. */
  readonly field?: string;
  /** A short, escaped and redacted excerpt of the value that was refused. */
  readonly value?: string;
  /** The file that was being read. */
  readonly file?: string;
  /** The peer's SPIFFE ID or address. */
  readonly peer?: string;
  /** The certificate at fault, as `subject …, serial …`. */
  readonly certificate?: string;
  /** The position of the item at fault (certificate in a chain, key in a JWKS). */
  readonly index?: number;
  /** The trust domain concerned. */
  readonly trustDomain?: string;
  /** This workload's own SPIFFE ID, when the error is about it (a client's SVID), never a peer's. */
  readonly workload?: string;
}

const BRAND = Symbol.for('sidecarless.error');

/**
 * The one error class of sidecarless. Every failure carries a stable {@link ErrorCode} and a
 * {@link ErrorDetail} naming the input; messages state the rule that was broken. No message,
 * detail or cause ever carries private key material.
 *
 * `instanceof SidecarlessError` works across the `sidecarless` and `sidecarless/testing` entry
 * points and across duplicate installs (the class is branded with `Symbol.for`).
 *
 * @example
 * ```ts
 * import { SidecarlessError, SpiffeId } from 'sidecarless';
 * try {
 *   SpiffeId.parse('spiffe://Example.org/x');
 * } catch (err) {
 *   if (err instanceof SidecarlessError && err.code === 'ERR_SPIFFE_ID_INVALID') {
 *     console.error(err.message);
 *   }
 * }
 * ```
 */
export class SidecarlessError extends Error {
  /** The stable code: branch on this, not on the message. */
  readonly code: ErrorCode;
  /** What input was refused. */
  readonly detail: ErrorDetail;

  /**
   * @param code - the stable code
   * @param message - the rule that was broken, naming the input
   * @param detail - fields naming the input (redacted again here, as a second line of defence)
   * @param options - `cause`, when a lower-level error explains this one
   */
  constructor(code: ErrorCode, message: string, detail: ErrorDetail = {}, options?: ErrorOptions) {
    super(redact(message), options);
    this.name = 'SidecarlessError';
    this.code = code;
    this.detail = Object.freeze(redactDetail(detail));
  }

  /** Recognises errors from any copy of the class (both entry points, duplicate installs). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

// The brand lives on the prototype, out of the public type: `instanceof` checks it.
Object.defineProperty(SidecarlessError.prototype, BRAND, { value: true });

function redactDetail(detail: ErrorDetail): ErrorDetail {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(detail)) {
    if (value === undefined) continue;
    out[key] = typeof value === 'string' ? redact(value) : value;
  }
  return out as ErrorDetail;
}

/**
 * Tells whether `value` is a {@link SidecarlessError}, optionally with the given code.
 *
 * @param value - anything caught
 * @param code - when given, the error must also have this code
 * @example
 * ```ts
 * import { isSidecarlessError, SpiffeId } from 'sidecarless';
 * try { SpiffeId.parse('http://x/y'); } catch (err) {
 *   if (isSidecarlessError(err, 'ERR_SPIFFE_ID_INVALID')) console.log(err.detail.value);
 * }
 * ```
 */
export function isSidecarlessError(value: unknown, code?: ErrorCode): value is SidecarlessError {
  return value instanceof SidecarlessError && (code === undefined || value.code === code);
}
