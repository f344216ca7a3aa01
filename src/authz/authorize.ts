import { invalidOption } from '../internal/options.js';
import { type NormalizeResult, normalizeRequestTarget } from './normalize.js';
import type { Peer } from './peer.js';
import {
  type AuthorizationMode,
  type AuthorizationPolicy,
  CompiledAuthorizationPolicy,
  PolicyEngine,
} from './policy.js';
import type { Rule } from './rule-table.js';

/**
 * The request {@link authorize} decides on.
 *
 * @example
 * ```ts
 * import type { AuthorizationRequest } from 'sidecarless';
 * const request: AuthorizationRequest = { method: 'GET', path: '/boards/7?view=full' };
 * ```
 */
export interface AuthorizationRequest {
  /** The method as received (`req.method`); matched uppercased. */
  readonly method: string;
  /**
   * The request-target as received (`req.url`): normalised before matching, any query ignored.
   */
  readonly path: string;
  /**
   * The host the request names (`Host` or `:authority`, a port after it ignored). Map policies do
   * not read it; policies imported from Istio match `hosts` against it.
   */
  readonly host?: string | undefined;
  /** The server port the connection arrived on (Istio `ports`, `destination.port`). */
  readonly port?: number | undefined;
  /** The TLS server name the client sent (Istio `connection.sni`). */
  readonly sni?: string | undefined;
}

/**
 * What a server knows of a request beyond its method and target, as policy engines read it.
 * @example
 * ```ts
 * import type { RequestAttributes } from 'sidecarless';
 * const attributes: RequestAttributes = { host: 'boards', port: 8080, sni: null };
 * ```
 */
export interface RequestAttributes {
  /** The host the request names (`Host`, `:authority`), lowercased, without its port; or null. */
  readonly host: string | null;
  /** The server port the connection arrived on, or null. */
  readonly port: number | null;
  /** The TLS server name the client sent, lowercased, or null. */
  readonly sni: string | null;
}

const NO_ATTRIBUTES: RequestAttributes = Object.freeze({ host: null, port: null, sni: null });

/** The host of a Host header or :authority: lowercased, without a port or IPv6 brackets. */
export function hostOfAuthority(authority: string | undefined): string | null {
  if (authority === undefined || authority === '') return null;
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(authority);
  if (bracketed !== null) return (bracketed[1] as string).toLowerCase();
  const colon = authority.lastIndexOf(':');
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
}

/**
 * Why a decision went the way it did:
 * - `allowed`: the deciding `authorize` rule matches the peer;
 * - `unauthenticated`: the deciding rule does not match, and the peer has no verified identity
 *   (plaintext, or TLS without a client certificate);
 * - `peer_not_allowed`: the deciding rule does not match the peer's identity;
 * - `no_matching_rule`: no `authorize` key covers the request, and there is no `*` default;
 * - `denied_by_rule`: a `deny` rule covers the request and matches the peer;
 * - `bad_request`: the request-target cannot be normalised safely (an encoded `/`, a `..` above the
 *   root, a NUL, absolute-form, `OPTIONS *`…): an HTTP 400, even in audit mode.
 *
 * @example
 * ```ts
 * import type { AuthorizationReason } from 'sidecarless';
 * function status(reason: AuthorizationReason): number {
 *   return reason === 'bad_request' ? 400 : reason === 'allowed' ? 200 : 403;
 * }
 * ```
 */
export type AuthorizationReason =
  | 'allowed'
  | 'unauthenticated'
  | 'peer_not_allowed'
  | 'no_matching_rule'
  | 'denied_by_rule'
  | 'bad_request';

/**
 * The outcome of {@link authorize}: plain data, safe to log (IDs and keys, never certificates).
 *
 * @example
 * ```ts
 * import { type AuthorizationDecision, authorize, createAuthorizationPolicy } from 'sidecarless';
 * import { fakePeer } from 'sidecarless/testing';
 * const policy = createAuthorizationPolicy({
 *   authorize: { '/admin/*': 'cluster.local/ns/ops/sa/admin' },
 *   mode: 'audit',
 * });
 * const d: AuthorizationDecision = authorize(policy, fakePeer('spiffe://cluster.local/ns/demo/sa/ui'), {
 *   method: 'GET',
 *   path: '/admin/users',
 * });
 * [d.allowed, d.verdict, d.reason, d.rule]; // [true, 'deny', 'peer_not_allowed', '/admin/*']
 * ```
 */
export interface AuthorizationDecision {
  /** The enforced outcome: whether the request goes through (in audit mode, always but for `bad_request`). */
  readonly allowed: boolean;
  /** What the rules say, in either mode. */
  readonly verdict: 'allow' | 'deny';
  /** Why: see {@link AuthorizationReason}. */
  readonly reason: AuthorizationReason;
  /** The deciding key as written (a `deny` key for `denied_by_rule`), or `null`. */
  readonly rule: string | null;
  /** The deciding rule's matcher as written, or `null`. */
  readonly matcher: string | null;
  /** The method, uppercased (`''` when it is not a valid HTTP token). */
  readonly method: string;
  /** The normalised path that was matched (what the handler receives), or `null` for `bad_request`. */
  readonly path: string | null;
  /** The policy's mode. */
  readonly mode: AuthorizationMode;
  /** Rules that only report (Istio AUDIT and dry-run policies) and matched: their names. */
  readonly audit?: readonly string[];
}

function decision(
  mode: AuthorizationMode,
  verdict: 'allow' | 'deny',
  reason: AuthorizationReason,
  rule: Rule | null,
  method: string,
  path: string,
): AuthorizationDecision {
  // Not frozen: a decision is built per request, and freezing costs more than the lookup.
  return {
    allowed: verdict === 'allow' || mode === 'audit',
    verdict,
    reason,
    rule: rule === null ? null : rule.key,
    matcher: rule === null ? null : rule.matcher.source,
    method,
    path,
    mode,
  };
}

function badRequest(mode: AuthorizationMode): AuthorizationDecision {
  // A bad request has no normal path to hand the handler: refused in audit mode too.
  return Object.freeze({
    allowed: false,
    verdict: 'deny',
    reason: 'bad_request',
    rule: null,
    matcher: null,
    method: '',
    path: null,
    mode,
  });
}

const BAD_REQUEST: Record<AuthorizationMode, AuthorizationDecision> = {
  enforce: badRequest('enforce'),
  audit: badRequest('audit'),
};

function compiled(policy: AuthorizationPolicy): CompiledAuthorizationPolicy | PolicyEngine {
  if (!(policy instanceof CompiledAuthorizationPolicy) && !(policy instanceof PolicyEngine)) {
    throw invalidOption('policy', 'a policy from createAuthorizationPolicy() or fromIstio()', policy);
  }
  return policy;
}

/**
 * Decides a request already normalised by `normalizeRequestTarget` (servers normalise once, use
 * the result to rewrite `req.url`, and decide on the same result). Never throws for a valid policy
 * and peer.
 */
export function authorizeNormalized(
  policy: AuthorizationPolicy,
  peer: Peer,
  target: NormalizeResult,
  attributes: RequestAttributes = NO_ATTRIBUTES,
): AuthorizationDecision {
  const p = compiled(policy);
  if (!target.ok) {
    const bad = BAD_REQUEST[p.mode];
    return target.method === '' ? bad : { ...bad, method: target.method };
  }
  const { method, path } = target;
  if (p instanceof PolicyEngine) {
    return p.evaluate(peer, {
      method,
      path,
      host: attributes.host,
      port: attributes.port,
      sni: attributes.sni,
    });
  }
  // Keys are lowercased at construction; routers match case-insensitively (fail closed).
  const key = path.toLowerCase();
  const denied = p.denyRules.firstMatch(method, key, peer);
  if (denied !== undefined) return decision(p.mode, 'deny', 'denied_by_rule', denied, method, path);
  const rule = p.allowRules.decide(method, key);
  if (rule === undefined) return decision(p.mode, 'deny', 'no_matching_rule', null, method, path);
  if (rule.matcher(peer)) return decision(p.mode, 'allow', 'allowed', rule, method, path);
  return decision(
    p.mode,
    'deny',
    peer.id === null ? 'unauthenticated' : 'peer_not_allowed',
    rule,
    method,
    path,
  );
}

/**
 * Decides whether `peer` may make `request` under `policy`: the same pure function a server runs
 * on every request, for unit tests with `fakePeer`.
 *
 * The path is normalised first, in this order: the query is stripped; percent-encoded unreserved
 * characters are decoded (`/%61dmin` is `/admin`; other escapes stay encoded, `%252e` stays the
 * literal text `%2e`); `//` is merged; `.` and `..` are resolved. `decision.path` is the result,
 * and servers hand exactly that path to the handler. Targets that routers could read more than
 * one way are refused as `bad_request`: an encoded `/` or backslash; a raw backslash, `;` or `#`;
 * NUL or another control character (raw or encoded); raw non-ASCII; a `..` above the root
 * (refused, not clamped); absolute-form (`GET http://host/x`) and `OPTIONS *`.
 *
 * Paths are matched the way lenient routers route them, so no spelling falls to a weaker rule:
 * case-insensitively (`/ADMIN/x` is `/admin/x`), an exact key also covers its path with a
 * trailing `/`, a prefix `/admin/*` also covers `/admin` and `/admin/`, and `GET` rules also bind
 * `HEAD`. Then any matching `deny` rule denies, then the most specific `authorize` rule decides.
 *
 * @param policy - from {@link createAuthorizationPolicy}
 * @param peer - who is calling (from a server, or `fakePeer()`)
 * @param request - the method and request-target as received
 * @returns the decision; `allowed` is what to enforce
 * @throws SidecarlessError `ERR_OPTION_INVALID` when `policy` was not made by
 *   `createAuthorizationPolicy`, or `peer` or `request` is not an object
 * @example
 * ```ts
 * import { authorize, createAuthorizationPolicy } from 'sidecarless';
 * import { fakePeer } from 'sidecarless/testing';
 *
 * const policy = createAuthorizationPolicy({
 *   authorize: { '/admin/*': 'cluster.local/ns/ops/sa/admin', '*': '*' },
 * });
 * const ui = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
 * authorize(policy, ui, { method: 'GET', path: '/boards' }).allowed; // true
 * const d = authorize(policy, ui, { method: 'GET', path: '//admin/./users' });
 * [d.allowed, d.reason, d.path]; // [false, 'peer_not_allowed', '/admin/users']
 * authorize(policy, fakePeer(null), { method: 'GET', path: '/boards' }).reason; // 'unauthenticated'
 * ```
 */
export function authorize(
  policy: AuthorizationPolicy,
  peer: Peer,
  request: AuthorizationRequest,
): AuthorizationDecision {
  if (typeof peer !== 'object' || peer === null) throw invalidOption('peer', 'a Peer', peer);
  if (typeof request !== 'object' || request === null) {
    throw invalidOption('request', 'an object { method, path }', request);
  }
  const attributes: RequestAttributes = {
    host: hostOfAuthority(request.host),
    port: typeof request.port === 'number' ? request.port : null,
    sni: typeof request.sni === 'string' && request.sni !== '' ? request.sni.toLowerCase() : null,
  };
  return authorizeNormalized(policy, peer, normalizeRequestTarget(request.method, request.path), attributes);
}
