import diagnostics from 'node:diagnostics_channel';
import type {
  ClientPeerEvent,
  ClientRejectEvent,
  ClientResponseEvent,
  FallbackEvent,
} from './client-events.js';
import type {
  ExpiringEvent,
  SourceErrorEvent,
  SourceUpdateEvent,
  SourceWithdrawnEvent,
} from './identity-events.js';
import type { AuthorizationEvent, IdentityUpdateEvent, PeerEvent, RejectEvent } from './server-events.js';

export type {
  ClientPeerEvent,
  ClientRejectEvent,
  ClientResponseEvent,
  FallbackEvent,
} from './client-events.js';
export type {
  ExpiringEvent,
  SourceErrorEvent,
  SourceUpdateEvent,
  SourceWithdrawnEvent,
} from './identity-events.js';

export type {
  AuthorizationDecisionEvent,
  AuthorizationEvent,
  IdentityUpdateEvent,
  PeerEvent,
  RejectEvent,
  RejectPhase,
} from './server-events.js';

/**
 * The diagnostics_channel channels sidecarless publishes on, by name, `sidecarless:<side>:<event>`
 * (docs/observability.md lists each with its payload and when it fires). Their payloads are the
 * event objects servers, clients and identity sources also emit ({@link PeerEvent},
 * {@link RejectEvent}, {@link FallbackEvent}, {@link ExpiringEvent}, …): IDs, serial numbers,
 * addresses and reason codes, never key material. Nothing is built for a channel nobody
 * subscribed to.
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
  /** A client connection is ready for requests: the server authenticated (mTLS), or plaintext. */
  clientPeer: 'sidecarless:client:peer',
  /** A client connection or request failed a check (server identity, chain, refusal, own SVID). */
  clientReject: 'sidecarless:client:reject',
  /** A dispatcher or agent received a response (its status, and the identities on both ends). */
  clientResponse: 'sidecarless:client:response',
  /** An `auto` destination was reached in plaintext. */
  clientFallback: 'sidecarless:client:fallback',
  /** An identity source accepted an update. */
  sourceUpdate: 'sidecarless:identity:update',
  /** An identity source withdrew its identity. */
  sourceWithdrawn: 'sidecarless:identity:withdrawn',
  /** An identity source survived an error (the last good identity stays). */
  sourceError: 'sidecarless:identity:error',
  /** An SVID or a bundle authority is near its end, or failed to rotate near it. */
  sourceExpiring: 'sidecarless:identity:expiring',
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

const clientPeerChannel = diagnostics.channel(channels.clientPeer);
const clientRejectChannel = diagnostics.channel(channels.clientReject);
const clientFallbackChannel = diagnostics.channel(channels.clientFallback);
const clientResponseChannel = diagnostics.channel(channels.clientResponse);
const sourceUpdateChannel = diagnostics.channel(channels.sourceUpdate);
const sourceWithdrawnChannel = diagnostics.channel(channels.sourceWithdrawn);
const sourceErrorChannel = diagnostics.channel(channels.sourceError);
const sourceExpiringChannel = diagnostics.channel(channels.sourceExpiring);

/** Publishes a client connection, built only when someone subscribed. */
export function publishClientPeer(build: () => ClientPeerEvent): void {
  if (clientPeerChannel.hasSubscribers) clientPeerChannel.publish(build());
}
/** Publishes a client refusal, if anyone subscribed. */
export function publishClientReject(event: ClientRejectEvent): void {
  if (clientRejectChannel.hasSubscribers) clientRejectChannel.publish(event);
}
/** Publishes a client response, built only when someone subscribed. */
export function publishClientResponse(build: () => ClientResponseEvent): void {
  if (clientResponseChannel.hasSubscribers) clientResponseChannel.publish(build());
}
/** Publishes a fallback to plaintext, if anyone subscribed. */
export function publishClientFallback(event: FallbackEvent): void {
  if (clientFallbackChannel.hasSubscribers) clientFallbackChannel.publish(event);
}
/** Publishes a source update, built only when someone subscribed. */
export function publishSourceUpdate(build: () => SourceUpdateEvent): void {
  if (sourceUpdateChannel.hasSubscribers) sourceUpdateChannel.publish(build());
}
/** Publishes a withdrawal, if anyone subscribed. */
export function publishSourceWithdrawn(event: SourceWithdrawnEvent): void {
  if (sourceWithdrawnChannel.hasSubscribers) sourceWithdrawnChannel.publish(event);
}
/** Publishes a source error, if anyone subscribed. */
export function publishSourceError(event: SourceErrorEvent): void {
  if (sourceErrorChannel.hasSubscribers) sourceErrorChannel.publish(event);
}
/** Publishes an expiry warning, if anyone subscribed. */
export function publishSourceExpiring(event: ExpiringEvent): void {
  if (sourceExpiringChannel.hasSubscribers) sourceExpiringChannel.publish(event);
}
