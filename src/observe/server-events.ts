// The payloads of servers' events and of the sidecarless:server:* and sidecarless:authz:*
// channels. observe/ owns every payload type; the modules that build them import them from here.
import type { AuthorizationReason } from '../authz/authorize.js';
import type { AuthorizationMode } from '../authz/policy.js';
import type { ErrorCode } from '../errors.js';

/**
 * Where in a connection's life a refusal happened: before the protocol was known (`sniff`), during
 * the TLS handshake and its checks (`handshake`), on a request (`request`), or later, when an open
 * connection was closed by policy (`connection`: peer expired, maximum age, trust change).
 * @example
 * ```ts
 * import type { RejectEvent, RejectPhase } from 'sidecarless';
 * const attacks: RejectPhase[] = ['sniff', 'handshake'];
 * const isAttack = (event: RejectEvent) => attacks.includes(event.phase);
 * ```
 */
export type RejectPhase = 'sniff' | 'handshake' | 'request' | 'connection';

/**
 * A connection's accepted peer.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type PeerEvent } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * server.on('peer', (event: PeerEvent) => console.log(event.id ?? 'plaintext', event.mtls));
 * ```
 */
export interface PeerEvent {
  /** The peer's SPIFFE ID, or null without mTLS. */
  readonly id: string | null;
  /** True when the peer presented a certificate that passed every check. */
  readonly mtls: boolean;
  /** True when the connection is TLS (with or without a client certificate). */
  readonly tls: boolean;
  /** The serial number of the peer's leaf certificate, or null. */
  readonly serial: string | null;
  /** When the peer's identity stops being valid, or null. */
  readonly notAfter: Date | null;
  /** The peer's address. */
  readonly remoteAddress: string | null;
  /** The peer's port. */
  readonly remotePort: number | null;
  /** The ALPN protocol negotiated, or null. */
  readonly alpn: string | null;
  /** Whether the TLS session was resumed (never, with the defaults: tickets are off). */
  readonly resumed: boolean;
}

/**
 * A refused connection or request, or a connection closed by policy.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * server.on('reject', (event) => console.warn(event.phase, event.reason, event.remoteAddress, event.message));
 * ```
 */
export interface RejectEvent {
  /** The reason, as a stable error code (`ERR_PLAINTEXT_REFUSED`, `ERR_SVID_UNTRUSTED`, …). */
  readonly reason: ErrorCode;
  /** Where in the connection's life it happened. */
  readonly phase: RejectPhase;
  /** A message naming the rule (redacted, never key material). */
  readonly message: string;
  /** The peer's address. */
  readonly remoteAddress: string | null;
  /** The peer's port. */
  readonly remotePort: number | null;
  /** The peer's SPIFFE ID when it was known (a closed connection, a denied request). */
  readonly peer: string | null;
  /** The certificate at fault, as `subject …, serial …`, when a certificate was refused. */
  readonly certificate: string | null;
}

/**
 * An authorization decision, as servers emit it (`authorization` event) and publish it: the peer's
 * identity, the normalised route, the deciding rule and the verdict.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type AuthorizationEvent } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * server.on('authorization', (event: AuthorizationEvent) => {
 *   if (!event.allowed) console.warn(`${event.peer} ${event.method} ${event.path}: ${event.reason} (${event.rule})`);
 * });
 * ```
 */
export type AuthorizationEvent = AuthorizationDecisionEvent;

/**
 * An authorization decision as an event: the payload of a server's `authorization` event and of
 * the `sidecarless:authz:decision` diagnostics_channel. Identities, route and verdict only: never
 * a certificate, a key, a header or the raw request-target.
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import type { AuthorizationDecisionEvent } from 'sidecarless';
 * diagnostics.subscribe('sidecarless:authz:decision', (message) => {
 *   const event = message as AuthorizationDecisionEvent;
 *   if (event.verdict === 'deny') console.warn(`${event.peer ?? 'anonymous'} ${event.path}: ${event.reason}`);
 * });
 * ```
 */
export interface AuthorizationDecisionEvent {
  /** The peer's SPIFFE ID, or `null` without a verified certificate. */
  readonly peer: string | null;
  /** The peer's trust domain, or `null`. */
  readonly trustDomain: string | null;
  /** Whether the peer presented a certificate that passed every check. */
  readonly mtls: boolean;
  /** Whether the connection is TLS. */
  readonly tls: boolean;
  /** The peer's IP address, when known. */
  readonly remoteAddress: string | null;
  /** The method, uppercased (`''` when there is none, or it is not a valid token). */
  readonly method: string;
  /** The normalised path (`null` for a bad request: the raw target is attacker-chosen text). */
  readonly path: string | null;
  /** The deciding key as written, or `null`. */
  readonly rule: string | null;
  /** The deciding rule's matcher as written, or `null`. */
  readonly matcher: string | null;
  /** What the rules say. */
  readonly verdict: 'allow' | 'deny';
  /** What was enforced (audit mode lets denials through). */
  readonly allowed: boolean;
  /** Why: see {@link AuthorizationReason}. */
  readonly reason: AuthorizationReason;
  /** The policy's mode. */
  readonly mode: AuthorizationMode;
  /** Rules that only report (Istio AUDIT and dry-run policies) and matched, when there are any. */
  readonly audit?: readonly string[];
}

/**
 * A server applied a new identity.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * server.on('identityUpdate', (event) => console.log(`now ${event.id} until ${event.notAfter.toISOString()}`));
 * ```
 */
export interface IdentityUpdateEvent {
  /** The server's SPIFFE ID. */
  readonly id: string;
  /** The serial number of its new leaf certificate. */
  readonly serial: string;
  /** When the new SVID expires. */
  readonly notAfter: Date;
  /** The identity's generation (increases with every update). */
  readonly generation: number;
  /** The trust domains whose peers the server accepts now. */
  readonly trustDomains: readonly string[];
  /** Connections closed because their peer no longer verifies against the new bundles. */
  readonly closedConnections: number;
}
