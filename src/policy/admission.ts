// The server's decisions, as pure functions of data: may this connection in, may this peer in,
// may this request through. Socket code gathers the facts and applies the verdict; nothing here
// touches a socket, so every rule is tested with tables (test/policy/admission.test.ts).
import {
  type AuthorizationDecision,
  authorizeNormalized,
  type RequestAttributes,
} from '../authz/authorize.js';
import { normalizeRequestTarget } from '../authz/normalize.js';
import type { Peer } from '../authz/peer.js';
import type { AuthorizationPolicy } from '../authz/policy.js';
import { type ErrorCode, isSidecarlessError } from '../errors.js';
import type { MtlsMode } from './mode.js';

/**
 * What ends a refused connection: an RST (`reset`, what a sidecar's STRICT listener gives a
 * plaintext client: `connection reset by peer`) or an orderly close (`destroy`).
 * @example
 * ```ts
 * import type { ConnectionEnd } from 'sidecarless';
 * const end: ConnectionEnd = 'reset';
 * ```
 */
export type ConnectionEnd = 'reset' | 'destroy';

/**
 * A refusal: the stable reason code, a message naming the rule, and how the connection ends.
 * @example
 * ```ts
 * import { admitConnection, type Refusal } from 'sidecarless';
 * const verdict = admitConnection({ mode: 'STRICT', protocol: 'http1', sniffed: 'http1', hasIdentity: true, plaintextPaths: false });
 * if (!verdict.admit) console.log((verdict as Refusal).code); // ERR_PLAINTEXT_REFUSED
 * ```
 */
export interface Refusal {
  /** Always false: the connection or request is refused. */
  readonly admit: false;
  /** The reason, as a stable error code. */
  readonly code: ErrorCode;
  /** The rule that was broken, in words. */
  readonly message: string;
  /** How the connection ends. */
  readonly end: ConnectionEnd;
}

/**
 * What the first bytes of a connection showed it to be: a TLS ClientHello, HTTP/1.x, or HTTP/2
 * with prior knowledge (`PRI * HTTP/2.0`).
 * @example
 * ```ts
 * import type { SniffedProtocol } from 'sidecarless';
 * const first: SniffedProtocol = 'tls';
 * ```
 */
export type SniffedProtocol = 'tls' | 'http1' | 'h2c';

/**
 * The facts {@link admitConnection} decides on.
 * @example
 * ```ts
 * import type { ConnectionFacts } from 'sidecarless';
 * const facts: ConnectionFacts = { mode: 'PERMISSIVE', protocol: 'http2', sniffed: 'h2c', hasIdentity: true, plaintextPaths: false };
 * ```
 */
export interface ConnectionFacts {
  /** The listener's mode. */
  readonly mode: MtlsMode;
  /** What the listener serves: `http1`, `http2` or raw `tls`. */
  readonly protocol: 'http1' | 'http2' | 'tls';
  /** What the first bytes were. */
  readonly sniffed: SniffedProtocol;
  /** Whether the server holds an identity now (none: no TLS can be offered). */
  readonly hasIdentity: boolean;
  /** Whether STRICT lets some plaintext paths through (probes). */
  readonly plaintextPaths: boolean;
}

/**
 * The verdict of {@link admitConnection}: go on with a TLS handshake (asking for a client
 * certificate, and under STRICT failing the handshake with a TLS alert when there is none), go on
 * in plaintext (`limited`: each request must be for a `plaintextPaths` path), or a refusal.
 * @example
 * ```ts
 * import { admitConnection, type ConnectionAdmission } from 'sidecarless';
 * const v: ConnectionAdmission = admitConnection({ mode: 'STRICT', protocol: 'http1', sniffed: 'tls', hasIdentity: true, plaintextPaths: false });
 * if (v.admit === 'tls') console.log(v.requireCertificate); // true
 * ```
 */
export type ConnectionAdmission =
  | { readonly admit: 'tls'; readonly requireCertificate: boolean }
  | { readonly admit: 'plaintext'; readonly limited: boolean }
  | Refusal;

function refuse(code: ErrorCode, message: string, end: ConnectionEnd): Refusal {
  return Object.freeze({ admit: false, code, message, end });
}

const REFUSED = {
  tlsDisabled: refuse('ERR_TLS_REFUSED', 'TLS is disabled on this listener', 'destroy'),
  noIdentity: refuse('ERR_NO_IDENTITY', 'the server has no identity: mTLS is refused', 'destroy'),
  // As a sidecar in STRICT mode: the plaintext client sees "connection reset by peer".
  plaintext: refuse('ERR_PLAINTEXT_REFUSED', 'plaintext is refused: this listener requires mTLS', 'reset'),
  plaintextTls: refuse(
    'ERR_PLAINTEXT_REFUSED',
    'plaintext is refused: a raw TLS listener speaks only TLS',
    'reset',
  ),
  noCertificate: refuse(
    'ERR_NO_CLIENT_CERTIFICATE',
    'mTLS is required: the client presented no certificate',
    'reset',
  ),
} as const;

const ADMIT_TLS_STRICT = Object.freeze({ admit: 'tls', requireCertificate: true } as const);
const ADMIT_TLS_OPTIONAL = Object.freeze({ admit: 'tls', requireCertificate: false } as const);
const ADMIT_PLAINTEXT = Object.freeze({ admit: 'plaintext', limited: false } as const);
const ADMIT_PLAINTEXT_LIMITED = Object.freeze({ admit: 'plaintext', limited: true } as const);

/**
 * Decides what a new connection may be, from its first bytes and the listener's mode: the
 * PeerAuthentication rule as the server applies it. Pure: the server only applies the verdict.
 *
 * - a TLS ClientHello: refused under DISABLE and when the server has no identity; otherwise a
 *   handshake that asks for a client certificate (required under STRICT);
 * - plaintext: reset under STRICT (and on raw TLS listeners), unless STRICT has `plaintextPaths`
 *   (then `limited`: each request is checked); served under PERMISSIVE and DISABLE.
 *
 * @param facts - the mode, the protocol, what was sniffed, whether there is an identity
 * @returns the admission, or a {@link Refusal} with its code and how the connection ends
 * @example
 * ```ts
 * import { admitConnection } from 'sidecarless';
 * admitConnection({ mode: 'DISABLE', protocol: 'http1', sniffed: 'tls', hasIdentity: true, plaintextPaths: false });
 * // { admit: false, code: 'ERR_TLS_REFUSED', ... }
 * ```
 */
export function admitConnection(facts: ConnectionFacts): ConnectionAdmission {
  const { mode, protocol, sniffed } = facts;
  if (sniffed === 'tls') {
    if (mode === 'DISABLE') return REFUSED.tlsDisabled;
    if (!facts.hasIdentity) return REFUSED.noIdentity;
    return mode === 'STRICT' ? ADMIT_TLS_STRICT : ADMIT_TLS_OPTIONAL;
  }
  if (protocol === 'tls') return REFUSED.plaintextTls;
  if (mode !== 'STRICT') return ADMIT_PLAINTEXT;
  return facts.plaintextPaths ? ADMIT_PLAINTEXT_LIMITED : REFUSED.plaintext;
}

/**
 * What the TLS handshake left to decide: no certificate, one that verified (`verifyPeerChain`
 * against the bundle of its own trust domain), or one that failed with `error`.
 * @example
 * ```ts
 * import type { PresentedCertificate } from 'sidecarless';
 * const none: PresentedCertificate = { presented: false };
 * ```
 */
export type PresentedCertificate =
  | { readonly presented: false }
  | { readonly presented: true; readonly error?: undefined }
  | { readonly presented: true; readonly error: unknown };

/**
 * The verdict of {@link admitPeer}: an mTLS peer, a TLS peer without a certificate (PERMISSIVE),
 * or a refusal naming the certificate's fault.
 * @example
 * ```ts
 * import { admitPeer, type PeerAdmission } from 'sidecarless';
 * const v: PeerAdmission = admitPeer('PERMISSIVE', true, { presented: false });
 * console.log(v.admit); // 'tls'
 * ```
 */
export type PeerAdmission =
  | { readonly admit: 'mtls' }
  | { readonly admit: 'tls' }
  | (Refusal & { readonly peer: string | null; readonly certificate: string | null });

const ADMIT_MTLS = Object.freeze({ admit: 'mtls' } as const);
const ADMIT_TLS_ONLY = Object.freeze({ admit: 'tls' } as const);

/**
 * Decides whether the peer of a finished TLS handshake may in. An invalid certificate is refused
 * in every mode, never downgraded to "unauthenticated"; no certificate is refused under STRICT
 * and admitted as unauthenticated TLS under PERMISSIVE.
 *
 * @param mode - the listener's mode
 * @param hasIdentity - whether the server still holds an identity (it may have been withdrawn
 *   during the handshake)
 * @param certificate - what the client presented, and the verification's outcome
 * @returns the admission, or a refusal carrying the verification's code, peer and certificate
 * @example
 * ```ts
 * import { admitPeer } from 'sidecarless';
 * admitPeer('STRICT', true, { presented: false }).admit; // false (ERR_NO_CLIENT_CERTIFICATE)
 * ```
 */
export function admitPeer(
  mode: MtlsMode,
  hasIdentity: boolean,
  certificate: PresentedCertificate,
): PeerAdmission {
  if (!hasIdentity) return { ...REFUSED.noIdentity, peer: null, certificate: null };
  if (!certificate.presented) {
    return mode === 'PERMISSIVE'
      ? ADMIT_TLS_ONLY
      : { ...REFUSED.noCertificate, peer: null, certificate: null };
  }
  if (certificate.error === undefined) return ADMIT_MTLS;
  const err = certificate.error;
  const known = isSidecarlessError(err);
  return Object.freeze({
    admit: false,
    code: known ? err.code : 'ERR_HANDSHAKE_FAILED',
    message: err instanceof Error ? err.message : 'the client certificate could not be verified',
    end: 'reset',
    peer: known ? (err.detail.peer ?? null) : null,
    certificate: known ? (err.detail.certificate ?? null) : null,
  });
}

/**
 * The facts {@link admitRequest} decides on: the connection's state and the request.
 * @example
 * ```ts
 * import { createAuthorizationPolicy, type RequestFacts } from 'sidecarless';
 * import { fakePeer } from 'sidecarless/testing';
 * const facts: RequestFacts = {
 *   peer: fakePeer(null), limited: true, plaintextPaths: new Set(['/healthz']), hasIdentity: true,
 *   closing: undefined, method: 'GET', target: '/healthz', host: null, port: 8080, sni: null,
 *   policy: createAuthorizationPolicy({ authorize: { '/healthz': 'unauthenticated' } }),
 * };
 * ```
 */
export interface RequestFacts extends RequestAttributes {
  /** The connection's peer. */
  readonly peer: Peer;
  /** Whether the connection is plaintext admitted only for `plaintextPaths` (STRICT). */
  readonly limited: boolean;
  /** The STRICT plaintext paths, in normal form. */
  readonly plaintextPaths: ReadonlySet<string>;
  /** Whether the server still holds an identity (an encrypted connection ends without one). */
  readonly hasIdentity: boolean;
  /** Set once the connection must end (the code says why): further requests are refused. */
  readonly closing: ErrorCode | undefined;
  /** The method as received. */
  readonly method: string;
  /** The request-target as received. */
  readonly target: string;
  /** The compiled authorization policy. */
  readonly policy: AuthorizationPolicy;
}

/**
 * The verdict of {@link admitRequest}: through, with the normalised path (what the handler
 * receives) and whether the connection may be kept alive; an HTTP answer (`respond`: 400 or 403,
 * with the authorization decision); or the end of the connection (`reset`/`destroy`).
 * @example
 * ```ts
 * import type { RequestAdmission } from 'sidecarless';
 * const describe = (v: RequestAdmission) => (v.admit ? `through ${v.path}` : v.end === 'respond' ? String(v.status) : v.code);
 * ```
 */
export type RequestAdmission =
  | {
      readonly admit: true;
      readonly path: string;
      readonly query: string;
      readonly keepAlive: boolean;
      readonly decision: AuthorizationDecision;
    }
  | {
      readonly admit: false;
      readonly end: 'respond';
      readonly status: 400 | 403;
      readonly code: 'ERR_NOT_AUTHORIZED' | 'ERR_BAD_REQUEST';
      readonly reason: string;
      readonly decision: AuthorizationDecision;
    }
  | (Refusal & { readonly decision?: undefined });

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * Decides one request on an admitted connection, in order: the STRICT plaintext rule (a limited
 * connection may only ask for a `plaintextPaths` path, matched exactly as sent: any other
 * spelling is reset); the connection's closing state (withdrawn identity, trust change, peer
 * expiry); then path normalisation and the authorization policy (`authorize()`'s decision).
 *
 * @param facts - the connection's state, the request and the policy
 * @returns the admission; `decision` is set whenever authorization ran
 * @example
 * ```ts
 * import { admitRequest, createAuthorizationPolicy } from 'sidecarless';
 * import { fakePeer } from 'sidecarless/testing';
 * const v = admitRequest({
 *   peer: fakePeer(null), limited: true, plaintextPaths: new Set(['/healthz']), hasIdentity: true,
 *   closing: undefined, method: 'POST', target: '/orders', host: null, port: 8080, sni: null,
 *   policy: createAuthorizationPolicy({ authorize: { '*': '*' } }),
 * });
 * console.log(v.admit ? 'through' : v.code); // ERR_PLAINTEXT_REFUSED
 * ```
 */
export function admitRequest(facts: RequestFacts): RequestAdmission {
  const { peer, closing } = facts;
  if (facts.limited && !facts.plaintextPaths.has(pathOf(facts.target))) {
    return refuse(
      'ERR_PLAINTEXT_REFUSED',
      `plaintext request for ${JSON.stringify(pathOf(facts.target).slice(0, 200))} refused: not in plaintextPaths`,
      'reset',
    );
  }
  // The source withdrew the server's identity (revoked, redacted): encrypted connections made
  // with it end now, not at the next handshake.
  if (peer.tls && !facts.hasIdentity)
    return refuse('ERR_NO_IDENTITY', 'the server identity was withdrawn', 'destroy');
  if (closing !== undefined && closing !== 'ERR_CONNECTION_MAX_AGE') {
    return refuse(closing, 'request on a closing connection', 'destroy');
  }
  const normalized = normalizeRequestTarget(facts.method, facts.target);
  const decision = authorizeNormalized(facts.policy, peer, normalized, facts);
  if (!normalized.ok || decision.reason === 'bad_request') {
    return Object.freeze({
      admit: false,
      end: 'respond',
      status: 400,
      code: 'ERR_BAD_REQUEST',
      reason: 'bad_request',
      decision,
    });
  }
  if (!decision.allowed) {
    return Object.freeze({
      admit: false,
      end: 'respond',
      status: 403,
      code: 'ERR_NOT_AUTHORIZED',
      reason: decision.reason,
      decision,
    });
  }
  return {
    admit: true,
    path: normalized.path,
    query: normalized.query,
    // At its maximum age a connection serves what is in flight, then closes.
    keepAlive: closing === undefined,
    decision,
  };
}
