import diagnostics from 'node:diagnostics_channel';
import type { AuthorizationEvent, IdentityUpdateEvent, PeerEvent, RejectEvent } from './server-events.js';

export type {
  AuthorizationDecisionEvent,
  AuthorizationEvent,
  IdentityUpdateEvent,
  PeerEvent,
  RejectEvent,
  RejectPhase,
} from './server-events.js';

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
