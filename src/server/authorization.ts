import type { AuthorizationMap } from '../authz/authorization-map.js';
import { authorizeNormalized } from '../authz/authorize.js';
import { type AuthorizationDecisionEvent, decisionEvent } from '../authz/decision-event.js';
import { normalizeRequestTarget } from '../authz/normalize.js';
import { compilePeerMatcher, type PeerMatcher } from '../authz/peer-matcher.js';
import {
  type AuthorizationPolicy,
  createAuthorizationPolicy,
  isAuthorizationPolicy,
} from '../authz/policy.js';
import type { Connection } from './connections.js';
import type { ServerSettings } from './options.js';
import type { Authorizer, RequestVerdict } from './requests.js';
import type { ServerCore } from './server-core.js';

function isMatcher(value: unknown): value is PeerMatcher {
  return typeof value === 'string' || typeof value === 'function' || Array.isArray(value);
}

/**
 * Without an `authorize` option: any authenticated peer of a trusted trust domain; in PERMISSIVE and
 * DISABLE any caller at all (the mode already welcomes plaintext); under STRICT, the plaintext
 * paths (probes) for unauthenticated callers too.
 */
function defaultMap(settings: ServerSettings): AuthorizationMap {
  if (settings.mode !== 'STRICT') return { '*': ['*', 'unauthenticated'] };
  const map: Record<string, PeerMatcher> = { '*': '*' };
  for (const path of settings.plaintextPaths) map[path] = ['*', 'unauthenticated'];
  return map;
}

/** The HTTP authorization step: one normalisation per request, decided and reported. */
export function createAuthorizer(
  settings: ServerSettings,
  core: ServerCore,
): { authorizer: Authorizer; policy: AuthorizationPolicy } {
  const given = settings.authorize;
  const policy = isAuthorizationPolicy(given)
    ? given
    : createAuthorizationPolicy({
        authorize: given === undefined ? defaultMap(settings) : isMatcher(given) ? { '*': given } : given,
        ...(settings.deny === undefined ? {} : { deny: settings.deny }),
        mode: settings.authorizationMode,
      });
  const authorizer: Authorizer = {
    check(peer, method, target, attributes): RequestVerdict {
      const normalized = normalizeRequestTarget(method, target);
      const decision = authorizeNormalized(policy, peer, normalized, attributes);
      if (core.observesAuthorization()) core.emitAuthorization(decisionEvent(decision, peer));
      if (!decision.allowed || !normalized.ok) {
        return {
          pass: false,
          status: decision.reason === 'bad_request' ? 400 : 403,
          reason: decision.reason,
        };
      }
      return { pass: true, path: normalized.path, query: normalized.query };
    },
  };
  return { authorizer, policy };
}

/**
 * Raw TLS: `authorize` is a peer matcher checked right after the handshake; a refused connection
 * is closed. Returns whether the connection may go on. @internal
 */
export function createPeerAuthorizer(
  settings: ServerSettings,
  core: ServerCore,
): (connection: Connection) => boolean {
  const given = settings.authorize ?? '*';
  if (!isMatcher(given) || isAuthorizationPolicy(given)) {
    throw new TypeError('unreachable: checked by checkServerOptions');
  }
  const matcher = compilePeerMatcher(given, 'authorize');
  return (connection) => {
    const { peer } = connection;
    const allowed = matcher(peer);
    const reason = allowed ? 'allowed' : peer.id === null ? 'unauthenticated' : 'peer_not_allowed';
    const event: AuthorizationDecisionEvent = {
      peer: peer.id?.toString() ?? null,
      trustDomain: peer.trustDomain?.name ?? null,
      mtls: peer.mtls,
      tls: peer.tls,
      remoteAddress: peer.remoteAddress,
      method: '',
      path: null,
      rule: 'authorize',
      matcher: matcher.source,
      verdict: allowed ? 'allow' : 'deny',
      allowed: allowed || settings.authorizationMode === 'audit',
      reason,
      mode: settings.authorizationMode,
    };
    core.emitAuthorization(event);
    if (event.allowed) return true;
    core.totals.denied++;
    core.reject(
      connection.raw,
      'handshake',
      'ERR_NOT_AUTHORIZED',
      `peer ${event.peer ?? '(none)'} is not allowed: ${reason}`,
      event.peer,
      null,
      'destroy',
    );
    return false;
  };
}
