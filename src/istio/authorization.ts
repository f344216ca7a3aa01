// AuthorizationPolicy → a policy engine with Istio's evaluation
// (https://istio.io/latest/docs/reference/config/security/authorization-policy/): deny if any
// rule of any DENY policy matches; allow if no ALLOW policy applies, or if any rule of any ALLOW
// policy matches; otherwise deny. AUDIT policies only report. The library then takes the
// strictest of two readings of the request: Istio's literal one, and a lenient router's (see
// docs/istio.md, "Deviations").
import { inspect } from 'node:util';
import type { AuthorizationDecision, AuthorizationReason } from '../authz/authorize.js';
import type { Peer } from '../authz/peer.js';
import {
  type AuthorizationMode,
  type AuthorizationPolicyDescription,
  type NormalizedAuthorizationRequest,
  PolicyEngine,
  type PolicyEngineRule,
} from '../authz/policy.js';
import { type CompiledRule, compileRule, type Facts, operationMatches, ruleMatches } from './authz-rules.js';
import type { ResolvedContext } from './context.js';
import { list, mapping, refName } from './fields.js';
import { namespacesOf, normalizeAddress, type TrustDomains } from './match.js';
import { type IstioObject, selects } from './objects.js';

type Action = 'ALLOW' | 'DENY' | 'AUDIT';

/** One applicable AuthorizationPolicy, compiled. */
export interface CompiledPolicy {
  readonly name: string;
  readonly action: Action;
  /** Istio's `istio.io/dry-run: "true"` annotation: decided, reported, never enforced. */
  readonly dryRun: boolean;
  readonly rules: readonly CompiledRule[];
}

/**
 * What happens when no ALLOW policy applies to the workload: `'allow'` as Istio does, or
 * `'deny'` as the library's authorization maps do.
 * @example
 * ```ts
 * import type { NoAllowPolicy } from 'sidecarless/istio';
 * const safer: NoAllowPolicy = 'deny';
 * ```
 */
export type NoAllowPolicy = 'allow' | 'deny';

/** How an AuthorizationPolicy relates to the workload. */
export interface PolicyScope {
  readonly name: string;
  readonly applies: boolean;
  /** Why it applies or not, in words. */
  readonly why: string;
}

const FIELDS = ['selector', 'rules', 'action', 'provider'];
const REFUSED = {
  targetRef:
    'a policy attached to a Gateway or Service by reference cannot be placed on a workload by sidecarless; use a selector',
  targetRefs:
    'a policy attached to a Gateway or Service by reference cannot be placed on a workload by sidecarless; use a selector',
};

/** Which AuthorizationPolicies apply to the workload: root namespace, its namespace, and selectors. */
export function authorizationScope(object: IstioObject, context: ResolvedContext): PolicyScope {
  const name = refName(object);
  const inRoot = object.namespace === context.rootNamespace;
  if (!inRoot && object.namespace !== context.namespace) {
    return {
      name,
      applies: false,
      why: `in namespace ${object.namespace}, not ${context.namespace} or the root namespace`,
    };
  }
  if (object.spec.targetRef !== undefined || object.spec.targetRefs !== undefined) {
    // Refused only where it could apply: a policy elsewhere in the mesh does not bear on this workload.
    mapping(object.spec, object.at.key('spec'), FIELDS, REFUSED);
  }
  const selected = selects(object.spec, object.at.key('spec'), context.labels);
  if (selected === false)
    return { name, applies: false, why: 'its selector does not match the workload labels' };
  const where = inRoot ? 'the root namespace (mesh-wide)' : `namespace ${object.namespace}`;
  return {
    name,
    applies: true,
    why: selected === true ? `${where}, selector matches` : `${where}, no selector`,
  };
}

/** Compiles one applicable AuthorizationPolicy. */
export function compilePolicy(object: IstioObject, domains: TrustDomains): CompiledPolicy {
  const at = object.at.key('spec');
  const spec = mapping(object.spec, at, FIELDS, REFUSED);
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM') {
    throw at
      .key('action')
      .unsupported(
        'CUSTOM delegates the decision to an external authorizer sidecarless does not call (refused, not ignored)',
      );
  }
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') {
    throw at.key('action').invalid(`must be ALLOW, DENY, AUDIT or CUSTOM, got ${JSON.stringify(action)}`);
  }
  if (spec.provider !== undefined && spec.provider !== null) {
    throw at.key('provider').invalid('is only allowed with action CUSTOM (Istio refuses it)');
  }
  const rules = list(spec.rules, at.key('rules')) ?? [];
  if (action === 'DENY' && rules.length === 0) {
    throw at
      .key('rules')
      .invalid(
        'DENY without rules never triggers; Istio refuses it (add an empty rule {} to deny every request)',
      );
  }
  const name = refName(object);
  const dryRun = object.annotations['istio.io/dry-run'] === 'true';
  return Object.freeze({
    name,
    action,
    dryRun,
    rules: Object.freeze(
      rules.map((rule, i) => compileRule(rule, at.key('rules').item(i), `${name} rules[${i}]`, domains)),
    ),
  });
}

/** The outcome of one reading. */
interface Outcome {
  readonly verdict: 'allow' | 'deny';
  readonly reason: AuthorizationReason;
  readonly rule: CompiledRule | null;
}

/** Options of the compiled engine. */
export interface EngineOptions {
  readonly mode: AuthorizationMode;
  readonly noAllowPolicy: NoAllowPolicy;
  /** Exact paths a plaintext GET or HEAD may reach whatever the policies say (kubelet probes). */
  readonly probePaths: ReadonlySet<string>;
  readonly notes: readonly string[];
}

const PROBE_RULE = 'kubelet probes bypass authorization, as Istio rewrites them to its agent';

/**
 * The compiled AuthorizationPolicies of one workload. Servers and `authorize()` call
 * `evaluate()` with the normalised request.
 */
export class IstioAuthorizationEngine extends PolicyEngine {
  readonly mode: AuthorizationMode;
  readonly #enforced: readonly CompiledPolicy[];
  readonly #deny: readonly CompiledPolicy[];
  readonly #allow: readonly CompiledPolicy[];
  readonly #reported: readonly CompiledPolicy[];
  readonly #options: EngineOptions;

  constructor(policies: readonly CompiledPolicy[], options: EngineOptions) {
    super();
    this.mode = options.mode;
    this.#options = options;
    this.#enforced = policies.filter((p) => p.action !== 'AUDIT' && !p.dryRun);
    this.#deny = this.#enforced.filter((p) => p.action === 'DENY');
    this.#allow = this.#enforced.filter((p) => p.action === 'ALLOW');
    this.#reported = policies.filter((p) => p.action === 'AUDIT' || p.dryRun);
    Object.freeze(this);
  }

  describe(): AuthorizationPolicyDescription {
    const rules: PolicyEngineRule[] = [];
    for (const p of [...this.#deny, ...this.#allow, ...this.#reported]) {
      for (const r of p.rules) {
        rules.push(
          Object.freeze({
            name: r.name,
            action: p.action,
            enforced: p.action !== 'AUDIT' && !p.dryRun,
            rule: r.text,
          }),
        );
      }
    }
    const notes = [...this.#options.notes];
    if (this.#allow.length === 0) {
      notes.push(
        this.#options.noAllowPolicy === 'allow'
          ? 'no ALLOW policy applies: requests not denied are allowed (Istio); noAllowPolicy: "deny" denies them (the library default for maps)'
          : 'no ALLOW policy applies: requests are denied (noAllowPolicy: "deny"; Istio would allow them)',
      );
    }
    return Object.freeze({
      mode: this.mode,
      authorize: Object.freeze([]),
      deny: Object.freeze([]),
      engine: Object.freeze({ kind: 'istio', rules: Object.freeze(rules), notes: Object.freeze(notes) }),
    });
  }

  evaluate(peer: Peer, request: NormalizedAuthorizationRequest): AuthorizationDecision {
    const { method, path } = request;
    if (!peer.tls && (method === 'GET' || method === 'HEAD') && this.#options.probePaths.has(path)) {
      return this.#decision('allow', 'allowed', 'probePaths', PROBE_RULE, method, path, undefined);
    }
    const { principal, namespaces, ip } = peerFacts(peer);
    const host = request.host ?? '';
    const sni = request.sni ?? '';
    // Object literals, not spreads: a spread costs microseconds per request on Node 20.
    const literal: Facts = {
      principal,
      namespaces,
      ip,
      host,
      port: request.port,
      sni,
      methods: [method],
      paths: [path],
      lenient: false,
    };
    const audit = this.#audit(literal);
    const a = this.#decide(literal, peer);
    if (a.verdict === 'deny') return this.#fromOutcome(a, method, path, audit, '');
    // The router reading: as a case-insensitive, trailing-slash-tolerant router that answers
    // HEAD with its GET route would read the request. Only ever adds denials.
    const methods = method === 'HEAD' ? ['HEAD', 'GET'] : literal.methods;
    const lenient: Facts = {
      principal,
      namespaces,
      ip,
      host,
      port: request.port,
      sni,
      methods,
      paths: spellings(path),
      lenient: true,
    };
    const b = this.#decide(lenient, peer);
    if (b.verdict === 'deny')
      return this.#fromOutcome(b, method, path, audit, ' [router reading: see docs/istio.md#deviations]');
    return this.#fromOutcome(a, method, path, audit, '');
  }

  #decide(facts: Facts, peer: Peer): Outcome {
    for (const p of this.#deny) {
      for (const r of p.rules)
        if (ruleMatches(r, facts, true)) return { verdict: 'deny', reason: 'denied_by_rule', rule: r };
    }
    if (this.#allow.length === 0) {
      return this.#options.noAllowPolicy === 'allow'
        ? { verdict: 'allow', reason: 'allowed', rule: null }
        : { verdict: 'deny', reason: 'no_matching_rule', rule: null };
    }
    let nearest: CompiledRule | null = null;
    for (const p of this.#allow) {
      for (const r of p.rules) {
        if (!operationMatches(r, facts, false)) continue;
        if (r.from === null || r.from.some((t) => t(facts, false)))
          return { verdict: 'allow', reason: 'allowed', rule: r };
        nearest ??= r;
      }
    }
    if (nearest === null) return { verdict: 'deny', reason: 'no_matching_rule', rule: null };
    return {
      verdict: 'deny',
      reason: peer.id === null ? 'unauthenticated' : 'peer_not_allowed',
      rule: nearest,
    };
  }

  #audit(facts: Facts): readonly string[] | undefined {
    const out: string[] = [];
    for (const p of this.#reported) {
      const r = p.rules.find((rule) => ruleMatches(rule, facts, p.action === 'DENY'));
      if (r !== undefined) out.push(p.dryRun ? `${r.name} (dry-run ${p.action})` : r.name);
    }
    return out.length === 0 ? undefined : out;
  }

  #fromOutcome(
    o: Outcome,
    method: string,
    path: string,
    audit: readonly string[] | undefined,
    suffix: string,
  ): AuthorizationDecision {
    const rule =
      o.rule === null
        ? o.verdict === 'allow'
          ? 'no ALLOW policy applies (Istio allows)'
          : null
        : o.rule.name;
    return this.#decision(
      o.verdict,
      o.reason,
      rule,
      o.rule === null ? null : `${o.rule.text}${suffix}`,
      method,
      path,
      audit,
    );
  }

  #decision(
    verdict: 'allow' | 'deny',
    reason: AuthorizationReason,
    rule: string | null,
    matcher: string | null,
    method: string,
    path: string,
    audit: readonly string[] | undefined,
  ): AuthorizationDecision {
    const decision: { -readonly [K in keyof AuthorizationDecision]: AuthorizationDecision[K] } = {
      allowed: verdict === 'allow' || this.mode === 'audit',
      verdict,
      reason,
      rule,
      matcher,
      method,
      path,
      mode: this.mode,
    };
    if (audit !== undefined) decision.audit = audit;
    return decision;
  }

  /** JSON form, for logs: the description. @internal */
  toJSON(): AuthorizationPolicyDescription {
    return this.describe();
  }

  /** @internal */
  [inspect.custom](): string {
    return `IstioAuthorization(${this.mode}, ${this.#deny.length} DENY, ${this.#allow.length} ALLOW, ${this.#reported.length} reported)`;
  }
}

interface PeerFacts {
  readonly principal: string;
  readonly namespaces: readonly string[];
  readonly ip: string | null;
}

// Per peer, not per request: a connection's peer is one frozen object for all its requests.
const peerFactsCache = new WeakMap<Peer, PeerFacts>();

function peerFacts(peer: Peer): PeerFacts {
  let facts = peerFactsCache.get(peer);
  if (facts === undefined) {
    const principal = peer.id === null ? '' : peer.id.toString().slice('spiffe://'.length);
    facts = { principal, namespaces: namespacesOf(principal), ip: normalizeAddress(peer.remoteAddress) };
    peerFactsCache.set(peer, facts);
  }
  return facts;
}

/** The spellings a lenient router treats as one path: any case, with or without a trailing "/". */
function spellings(path: string): readonly string[] {
  const lower = path.toLowerCase();
  if (lower === '/') return ['/'];
  return lower.endsWith('/') ? [lower, lower.slice(0, -1)] : [lower, `${lower}/`];
}
