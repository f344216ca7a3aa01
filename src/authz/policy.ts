import { inspect } from 'node:util';
import { checkOptions, invalidOption } from '../internal/options.js';
import type { AuthorizationMap } from './authorization-map.js';
import type { AuthorizationDecision } from './authorize.js';
import type { Peer } from './peer.js';
import { type Rule, RuleTable } from './rule-table.js';

/**
 * `'enforce'` denies what the rules deny; `'audit'` decides and reports the same way but lets the
 * request through (Istio's dry-run). Audit never lets a malformed request (`bad_request`) through,
 * and never relaxes a transport check (mTLS mode, certificate, identity).
 *
 * @example
 * ```ts
 * import { type AuthorizationMode, createAuthorizationPolicy } from 'sidecarless';
 * const mode: AuthorizationMode = process.env.AUTHZ_DRY_RUN ? 'audit' : 'enforce';
 * const policy = createAuthorizationPolicy({ authorize: { '*': '*' }, mode });
 * ```
 */
export type AuthorizationMode = 'enforce' | 'audit';

/**
 * Options of {@link createAuthorizationPolicy}.
 *
 * @example
 * ```ts
 * import type { AuthorizationPolicyOptions } from 'sidecarless';
 * const options: AuthorizationPolicyOptions = {
 *   authorize: { '/admin/*': 'spiffe://cluster.local/ns/ops/*', '*': '*' },
 *   deny: { '/admin/*': 'spiffe://partner.example/*' },
 *   mode: 'audit',
 * };
 * ```
 */
export interface AuthorizationPolicyOptions {
  /**
   * What is allowed. The most specific matching key decides; no matching key and no `*`: deny.
   * Left out, nothing is allowed (fail closed); Istio's "only DENY policies" is
   * `authorize: { '*': ['*', 'unauthenticated'] }` plus `deny`.
   */
  readonly authorize?: AuthorizationMap | undefined;
  /** What is denied, checked first: any matching key whose matcher matches the peer denies. */
  readonly deny?: AuthorizationMap | undefined;
  /** `'enforce'` (default) or `'audit'`. */
  readonly mode?: AuthorizationMode | undefined;
}

/**
 * One compiled key of a policy, as {@link AuthorizationPolicy.describe} lists it.
 *
 * @example
 * ```ts
 * import { type AuthorizationRule, createAuthorizationPolicy } from 'sidecarless';
 * const policy = createAuthorizationPolicy({ authorize: { 'GET /boards/*': '*' } });
 * const [rule]: readonly AuthorizationRule[] = policy.describe().authorize;
 * rule?.kind; // 'prefix'
 * ```
 */
export interface AuthorizationRule {
  /** The key as written. */
  readonly key: string;
  /** The method the key is limited to, or `null` for any method. */
  readonly method: string | null;
  /** `exact` path, `prefix` pattern, or the `default` rule `*`. */
  readonly kind: 'exact' | 'prefix' | 'default';
  /** The path covered, lowercased (a prefix without its `/*`); `null` for the default rule. */
  readonly path: string | null;
  /** The matcher, as written. */
  readonly matcher: string;
}

/**
 * What {@link AuthorizationPolicy.describe} returns: the mode, and each map's rules, most specific
 * first (the order in which they are considered).
 *
 * @example
 * ```ts
 * import { type AuthorizationPolicyDescription, createAuthorizationPolicy } from 'sidecarless';
 * const policy = createAuthorizationPolicy({ authorize: { '*': '*' } });
 * const d: AuthorizationPolicyDescription = policy.describe();
 * console.log(JSON.stringify(d, null, 2));
 * ```
 */
export interface AuthorizationPolicyDescription {
  /** Whether decisions are enforced or only reported. */
  readonly mode: AuthorizationMode;
  /** The authorize rules, most specific first. */
  readonly authorize: readonly AuthorizationRule[];
  /** The deny rules, most specific first. */
  readonly deny: readonly AuthorizationRule[];
  /** For a policy engine (a policy from `fromIstio()`): its own rules, which the maps above cannot show. */
  readonly engine?: PolicyEngineDescription;
}

/**
 * One rule of a policy engine, as {@link AuthorizationPolicyDescription.engine} lists it.
 *
 * @example
 * ```ts
 * import type { PolicyEngineRule } from 'sidecarless';
 * const rule: PolicyEngineRule = {
 *   name: 'AuthorizationPolicy/demo/allow-ui rules[0]',
 *   action: 'ALLOW',
 *   enforced: true,
 *   rule: '{"from":[{"source":{"principals":["cluster.local/ns/demo/sa/app-ui"]}}]}',
 * };
 * ```
 */
export interface PolicyEngineRule {
  /** The deciding object and the rule's index: `kind/namespace/name rules[i]`. */
  readonly name: string;
  /** What a match does: allow, deny, or only report (AUDIT). */
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT';
  /** False for rules that are only reported (AUDIT, Istio's dry-run annotation). */
  readonly enforced: boolean;
  /** The rule as written (JSON). */
  readonly rule: string;
}

/**
 * What a policy engine says of itself in {@link AuthorizationPolicyDescription.engine}.
 *
 * @example
 * ```ts
 * import type { PolicyEngineDescription } from 'sidecarless';
 * function print(engine: PolicyEngineDescription): void {
 *   console.log(engine.kind, engine.rules.length, engine.notes.join('; '));
 * }
 * ```
 */
export interface PolicyEngineDescription {
  /** Which evaluation it runs (`'istio'`). */
  readonly kind: string;
  /** Its rules, in evaluation order. */
  readonly rules: readonly PolicyEngineRule[];
  /** What else decides (defaults, ignored objects), in words. */
  readonly notes: readonly string[];
}

/**
 * A compiled, frozen authorization policy: the `authorize` and `deny` maps and the mode. Opaque:
 * build it with {@link createAuthorizationPolicy}, pass it to {@link authorize} or a server.
 *
 * @example
 * ```ts
 * import { type AuthorizationPolicy, createAuthorizationPolicy } from 'sidecarless';
 * const policy: AuthorizationPolicy = createAuthorizationPolicy({
 *   authorize: { '/admin/*': 'cluster.local/ns/ops/sa/admin' },
 * });
 * policy.mode; // 'enforce'
 * ```
 */
export interface AuthorizationPolicy {
  /** `'enforce'` or `'audit'`. */
  readonly mode: AuthorizationMode;
  /**
   * The compiled rules, most specific first, with their matchers as written.
   * @example
   * ```ts
   * import { createAuthorizationPolicy } from 'sidecarless';
   * const policy = createAuthorizationPolicy({ authorize: { '/a/*': '*', '/a/b': '*' } });
   * policy.describe().authorize.map((r) => r.key); // ['/a/b', '/a/*']
   * ```
   */
  describe(): AuthorizationPolicyDescription;
}

/**
 * A request as a policy engine decides it: the method and the path already normalised (what the
 * handler receives), and what the connection says beyond the peer.
 */
export interface NormalizedAuthorizationRequest {
  /** The method, uppercased. */
  readonly method: string;
  /** The normalised path, without its query. */
  readonly path: string;
  /** The host the request names (`Host`, `:authority`), lowercased, without its port; or null. */
  readonly host: string | null;
  /** The server port the connection arrived on, or null. */
  readonly port: number | null;
  /** The TLS server name (SNI) the client sent, or null. */
  readonly sni: string | null;
}

/**
 * A policy that decides with its own evaluation rather than the authorization map's most-specific
 * key (the Istio import's compiled AuthorizationPolicies). Servers and {@link authorize} accept it
 * wherever they accept a policy from {@link createAuthorizationPolicy}. Internal: only code of this
 * package extends it, so a policy object cannot be forged from outside.
 */
export abstract class PolicyEngine implements AuthorizationPolicy {
  abstract readonly mode: AuthorizationMode;
  abstract describe(): AuthorizationPolicyDescription;
  /** Decides one normalised request; never throws (every input was checked at compile time). */
  abstract evaluate(peer: Peer, request: NormalizedAuthorizationRequest): AuthorizationDecision;
}

/** A rule whose matcher names trust domains, for the check against the trusted bundles. */
export interface NamedTrustDomains {
  readonly map: 'authorize' | 'deny';
  readonly key: string;
  readonly matcher: string;
  readonly trustDomains: readonly string[];
}

/** The trust domains each rule of a map policy names (engines: none, their own rules decide). */
export function namedTrustDomains(policy: AuthorizationPolicy): NamedTrustDomains[] {
  if (!(policy instanceof CompiledAuthorizationPolicy)) return [];
  const out: NamedTrustDomains[] = [];
  for (const [map, table] of [
    ['authorize', policy.allowRules],
    ['deny', policy.denyRules],
  ] as const) {
    for (const rule of table.rules) {
      if (rule.matcher.trustDomains.length > 0) {
        out.push({
          map,
          key: rule.key,
          matcher: rule.matcher.source,
          trustDomains: rule.matcher.trustDomains,
        });
      }
    }
  }
  return out;
}

/** Whether `value` is a compiled policy of either kind (a map policy or an engine). */
export function isAuthorizationPolicy(value: unknown): value is AuthorizationPolicy {
  return value instanceof CompiledAuthorizationPolicy || value instanceof PolicyEngine;
}

const KNOWN: (keyof AuthorizationPolicyOptions)[] = ['authorize', 'deny', 'mode'];
const MODES: readonly AuthorizationMode[] = ['enforce', 'audit'];

function describeRule(rule: Rule): AuthorizationRule {
  return Object.freeze({
    key: rule.key,
    method: rule.method,
    kind: rule.kind,
    path: rule.path,
    matcher: rule.matcher.source,
  });
}

/** The one implementation of {@link AuthorizationPolicy}. */
export class CompiledAuthorizationPolicy implements AuthorizationPolicy {
  readonly mode: AuthorizationMode;
  /** @internal */
  readonly allowRules: RuleTable;
  /** @internal */
  readonly denyRules: RuleTable;

  constructor(mode: AuthorizationMode, allowRules: RuleTable, denyRules: RuleTable) {
    this.mode = mode;
    this.allowRules = allowRules;
    this.denyRules = denyRules;
    Object.freeze(this);
  }

  describe(): AuthorizationPolicyDescription {
    return Object.freeze({
      mode: this.mode,
      authorize: Object.freeze(this.allowRules.rules.map(describeRule)),
      deny: Object.freeze(this.denyRules.rules.map(describeRule)),
    });
  }

  /** JSON form, for logs: the description. @internal */
  toJSON(): AuthorizationPolicyDescription {
    return this.describe();
  }

  /** @internal */
  [inspect.custom](): string {
    const n = (t: RuleTable) => t.rules.length;
    const rules = `${n(this.allowRules)} authorize rules, ${n(this.denyRules)} deny rules`;
    return `AuthorizationPolicy(${this.mode}, ${rules})`;
  }
}

function entriesOf(field: string, map: unknown): [string, unknown][] {
  if (map === undefined) return [];
  const proto = typeof map === 'object' && map !== null ? Object.getPrototypeOf(map) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw invalidOption(field, 'an object of "[METHOD ]path" keys and peer matchers', map);
  }
  return Object.entries(map as object);
}

/**
 * Compiles an authorization policy once, for {@link authorize} and servers: every key and matcher
 * is checked here, so deciding a request never throws.
 *
 * Decisions go: a malformed request is `bad_request`; then any matching `deny` rule denies
 * (`denied_by_rule`); then the most specific `authorize` rule covering the request decides
 * (`allowed`, or `unauthenticated` / `peer_not_allowed`); no covering rule: `no_matching_rule`.
 *
 * @param options - the `authorize` and `deny` maps ({@link AuthorizationMap}) and the `mode`
 * @returns the compiled policy, frozen
 * @throws SidecarlessError `ERR_POLICY_INVALID` for a malformed key or matcher, or two keys that
 *   differ only in case (`detail.field` is the key); `ERR_OPTION_INVALID` for an unknown option, a
 *   map that is not a plain object, or an unknown mode
 * @example
 * ```ts
 * import { authorize, createAuthorizationPolicy } from 'sidecarless';
 * import { fakePeer } from 'sidecarless/testing';
 *
 * const policy = createAuthorizationPolicy({
 *   authorize: {
 *     'GET /boards/*': 'cluster.local/ns/demo/sa/app-ui',
 *     '/admin/*': 'spiffe://cluster.local/ns/ops/*',
 *     '/healthz': ['*', 'unauthenticated'],
 *   },
 *   deny: { '/admin/*': 'spiffe://cluster.local/ns/ops/sa/intern' },
 * });
 * const ui = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
 * authorize(policy, ui, { method: 'GET', path: '/boards/7' }).allowed; // true
 * authorize(policy, ui, { method: 'GET', path: '/ADMIN/users' }).reason; // 'peer_not_allowed'
 * ```
 */
export function createAuthorizationPolicy(options: AuthorizationPolicyOptions): AuthorizationPolicy {
  const opts = checkOptions<AuthorizationPolicyOptions>(options, KNOWN, 'createAuthorizationPolicy');
  const mode = opts.mode ?? 'enforce';
  if (!MODES.includes(mode)) throw invalidOption('mode', `one of ${MODES.join(', ')}`, mode);
  const allow = new RuleTable('authorize', entriesOf('authorize', opts.authorize));
  const deny = new RuleTable('deny', entriesOf('deny', opts.deny));
  return new CompiledAuthorizationPolicy(mode, allow, deny);
}
