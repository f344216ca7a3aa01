import type { AuthorizationDecision, AuthorizationReason } from './authorize.js';
import type { Peer } from './peer.js';
import type { AuthorizationMode } from './policy.js';

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

/** Builds the event payload of a decision: the peer as IDs, the decision as it is. */
export function decisionEvent(decision: AuthorizationDecision, peer: Peer): AuthorizationDecisionEvent {
  return {
    peer: peer.id === null ? null : peer.id.toString(),
    trustDomain: peer.trustDomain === null ? null : peer.trustDomain.name,
    mtls: peer.mtls,
    tls: peer.tls,
    remoteAddress: peer.remoteAddress,
    method: decision.method,
    path: decision.path,
    rule: decision.rule,
    matcher: decision.matcher,
    verdict: decision.verdict,
    allowed: decision.allowed,
    reason: decision.reason,
    mode: decision.mode,
    ...(decision.audit === undefined ? {} : { audit: decision.audit }),
  };
}
