import type { AuthorizationMap } from '../authz/authorization-map.js';
import { authorizeNormalized } from '../authz/authorize.js';
import { decisionEvent } from '../authz/decision-event.js';
import type { PeerMatcher } from '../authz/peer-matcher.js';
import {
  type AuthorizationPolicy,
  createAuthorizationPolicy,
  isAuthorizationPolicy,
} from '../authz/policy.js';
import type { Connection } from './connections.js';
import type { ServerSettings } from './options.js';
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

/**
 * The compiled policy a server enforces: the given one, or one compiled from the `authorize` map
 * or matcher (a raw TLS server's matcher is the default rule `'*'`), `deny` and the mode.
 */
export function compileServerPolicy(settings: ServerSettings): AuthorizationPolicy {
  const given = settings.authorize;
  if (isAuthorizationPolicy(given)) return given;
  const authorize = given === undefined ? defaultMap(settings) : isMatcher(given) ? { '*': given } : given;
  return createAuthorizationPolicy({
    authorize: settings.protocol === 'tls' && given === undefined ? { '*': '*' } : authorize,
    ...(settings.deny === undefined ? {} : { deny: settings.deny }),
    mode: settings.authorizationMode,
  });
}

const CONNECTION_REQUEST = Object.freeze({ ok: true, method: '', path: '/', query: '' } as const);

/**
 * Raw TLS: the connection is the request. The same policy and decision as HTTP, with no method or
 * path (the matcher is the default rule); a refused connection is closed. Returns whether it may go on.
 */
export function authorizeConnection(
  core: ServerCore,
  policy: AuthorizationPolicy,
  connection: Connection,
): boolean {
  const { peer } = connection;
  const decision = { ...authorizeNormalized(policy, peer, CONNECTION_REQUEST), path: null };
  core.emitAuthorization(decisionEvent(decision, peer));
  // A raw TLS connection is the request.
  core.edges.request(connection.edge, peer.mtls);
  if (decision.allowed) return true;
  core.totals.denied++;
  core.rejectConnection(
    connection,
    'handshake',
    'ERR_NOT_AUTHORIZED',
    `peer ${peer.id?.toString() ?? '(none)'} is not allowed: ${decision.reason}`,
    'destroy',
  );
  return false;
}
