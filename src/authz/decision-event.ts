import type { AuthorizationDecisionEvent } from '../observe/server-events.js';
import type { AuthorizationDecision } from './authorize.js';
import type { Peer } from './peer.js';

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
