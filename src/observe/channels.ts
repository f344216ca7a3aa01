import diagnostics from 'node:diagnostics_channel';
import type { AuthorizationDecisionEvent } from '../authz/decision-event.js';
import type { ErrorCode } from '../errors.js';

/**
 * The diagnostics_channel channels sidecarless publishes on, by name. Their payloads are the
 * event objects servers also emit ({@link PeerEvent}, {@link RejectEvent}, …): IDs, serial
 * numbers, addresses and reason codes, never key material.
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type RejectEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.reject, (message) => {
 *   const event = message as RejectEvent;
 *   console.warn(`refused ${event.remoteAddress}: ${event.reason}`);
 * });
 * ```
 */
export const channels = Object.freeze({
  /** A connection's peer was accepted (mTLS, TLS without a client certificate, or plaintext). */
  peer: 'sidecarless:server:peer',
  /** A connection or request was refused, or a connection was closed by policy. */
  reject: 'sidecarless:server:reject',
  /** An authorization decision (allowed, denied, or audited). */
  authorization: 'sidecarless:authz:decision',
  /** A server applied a new identity (SVID or bundles). */
  identityUpdate: 'sidecarless:server:identity-update',
} as const);

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

const peerChannel = diagnostics.channel(channels.peer);
const rejectChannel = diagnostics.channel(channels.reject);
const authorizationChannel = diagnostics.channel(channels.authorization);
const identityChannel = diagnostics.channel(channels.identityUpdate);

/** Publishes a peer event, if anyone subscribed. */
export function publishPeer(event: PeerEvent): void {
  if (peerChannel.hasSubscribers) peerChannel.publish(event);
}
/** Publishes a reject event, if anyone subscribed. */
export function publishReject(event: RejectEvent): void {
  if (rejectChannel.hasSubscribers) rejectChannel.publish(event);
}
/** Whether the decision channel has subscribers. */
export function authorizationObserved(): boolean {
  return authorizationChannel.hasSubscribers;
}
/** Publishes an authorization decision, if anyone subscribed. */
export function publishAuthorization(event: AuthorizationEvent): void {
  if (authorizationChannel.hasSubscribers) authorizationChannel.publish(event);
}
/** Publishes an identity update, if anyone subscribed. */
export function publishIdentityUpdate(event: IdentityUpdateEvent): void {
  if (identityChannel.hasSubscribers) identityChannel.publish(event);
}
