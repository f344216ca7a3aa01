// AuthorizationPolicy rules compiled to tests of one request. Semantics, each from Istio's
// reference (https://istio.io/latest/docs/reference/config/security/authorization-policy/):
// a rule matches when one of its sources, one of its operations and all of its conditions
// match; fields inside a source or operation are ANDed; a "not" field matches when none of its
// values does; a rule without `from` (`to`, `when`) places no condition on sources (operations).
import { normalizePath } from '../authz/normalize.js';
import { type At, list, mapping, portNumber, stringList } from './fields.js';
import { anyOf, ipBlocks, principalMatch, stringMatch, type TrustDomains } from './match.js';

/** What a rule is tested against: one request in one reading. */
export interface Facts {
  /** `source.principal`: the SPIFFE ID without `spiffe://`, or `''` without a verified identity. */
  readonly principal: string;
  readonly namespaces: readonly string[];
  /** The remote address, or null when unknown. */
  readonly ip: string | null;
  /** The spellings of the method this reading considers. */
  readonly methods: readonly string[];
  /** The spellings of the path this reading considers (lowercased in the router reading). */
  readonly paths: readonly string[];
  /** True in the router reading: path patterns are compared lowercased. */
  readonly lenient: boolean;
  /** The Host without its port, lowercased; `''` when there is none. */
  readonly host: string;
  /** The destination port, or null when unknown. */
  readonly port: number | null;
  /** The SNI, lowercased; `''` when there is none. */
  readonly sni: string;
}

/**
 * A test of one request. `deny` is whether the policy is a DENY policy: an attribute the
 * library does not know (a port when `authorize()` is called without one) matches in a DENY
 * policy and fails in an ALLOW one, as Istio treats attributes it cannot see
 * ("for a DENY rule, missing attributes are treated as matches").
 */
export type Test = (facts: Facts, deny: boolean) => boolean;

/** One compiled rule. */
export interface CompiledRule {
  /** `AuthorizationPolicy/ns/name rules[i]`. */
  readonly name: string;
  /** The rule as written (JSON, shortened). */
  readonly text: string;
  /** Null: no `from` (any source). */
  readonly from: readonly Test[] | null;
  /** Null: no `to` (any operation). */
  readonly to: readonly Test[] | null;
  readonly when: readonly Test[];
}

const JWT = 'JWT request authentication has no counterpart in sidecarless';
const SOURCE_REFUSED = {
  requestPrincipals: JWT,
  notRequestPrincipals: JWT,
  remoteIpBlocks: 'remote.ip comes from X-Forwarded-For or PROXY protocol, which sidecarless does not trust',
  notRemoteIpBlocks:
    'remote.ip comes from X-Forwarded-For or PROXY protocol, which sidecarless does not trust',
};
const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
];
const OPERATION_FIELDS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
];

function positive(
  values: readonly string[] | undefined,
  test: (values: readonly string[]) => Test,
): Test | undefined {
  return values === undefined ? undefined : test(values);
}

function negate(test: Test | undefined): Test | undefined {
  return test === undefined ? undefined : (f, deny) => !test(f, !deny);
}

/** A test of a value known to the library, or unknown (null): unknown decides by `deny`. */
function known<T>(get: (f: Facts) => T | null, test: (value: T) => boolean): Test {
  return (f, deny) => {
    const value = get(f);
    return value === null ? deny : test(value);
  };
}

function principals(values: readonly string[], at: At, domains: TrustDomains): Test {
  const test = anyOf(values.map((v, i) => principalMatch(v, at.item(i), domains)));
  return (f) => test(f.principal);
}

function namespaces(values: readonly string[], at: At): Test {
  const test = anyOf(values.map((v, i) => stringMatch(v, at.item(i))));
  return (f) => f.namespaces.some(test);
}

function ips(values: readonly string[], at: At): Test {
  const test = ipBlocks(values, at);
  return known((f) => f.ip, test);
}

function ports(values: readonly string[], at: At): Test {
  // Istio: `ports` take exact values only.
  const set = new Set(values.map((v, i) => portNumber(v, at.item(i))));
  return known(
    (f) => f.port,
    (p) => set.has(p),
  );
}

function methods(values: readonly string[], at: At): Test {
  const test = anyOf(values.map((v, i) => stringMatch(v, at.item(i))));
  return (f) => f.methods.some(test);
}

const HOST_PORT = /^(\[[^\]]*\]|[^:[\]]*):(\*|\d+)$/;

function hosts(values: readonly string[], at: At): Test {
  const tests = values.map((v, i) => {
    const withPort = HOST_PORT.exec(v);
    let host = v;
    if (withPort !== null) {
      // Servers hand the Host without its port, so "example.com:*" (the form the best-practices
      // page recommends beside "example.com") is the same host; a fixed port cannot be honoured.
      if (withPort[2] !== '*') {
        throw at
          .item(i)
          .unsupported(
            `${JSON.stringify(v)} names a port: sidecarless matches the Host without its port (use "ports" for the port)`,
          );
      }
      host = withPort[1] as string;
    }
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    return stringMatch(host, at.item(i), true);
  });
  const test = anyOf(tests);
  return (f) => test(f.host);
}

/** The literal part of a path pattern must be in the one spelling the normaliser produces. */
function checkPathPattern(pattern: string, at: At): void {
  if (pattern.includes('{') || pattern.includes('}')) {
    throw at.unsupported(
      `${JSON.stringify(pattern)} is a path template ({*}, {**}): not supported (refused, not ignored); use "prefix*" or "*suffix"`,
    );
  }
  if (pattern === '*') return;
  const literal = pattern.startsWith('*')
    ? pattern.slice(1)
    : pattern.endsWith('*')
      ? pattern.slice(0, -1)
      : pattern;
  const rooted = !pattern.startsWith('*');
  const probe = rooted ? literal : `/${literal.replace(/^\/+/, '')}`;
  const normal = rooted && !literal.startsWith('/') ? undefined : normalizePath(probe);
  const kept = typeof normal === 'string' && (normal === probe || (probe.endsWith('/') && normal === probe));
  if (!kept || literal.includes('?') || (!rooted && literal.startsWith('//'))) {
    throw at.invalid(
      `${JSON.stringify(pattern)} can never match: paths are matched after normalisation (one "/" between segments, no "." or ".." segments, unreserved characters decoded, no query), so write the pattern that way`,
    );
  }
}

function paths(values: readonly string[], at: At): Test {
  for (const [i, v] of values.entries()) checkPathPattern(v, at.item(i));
  const strict = anyOf(values.map((v, i) => stringMatch(v, at.item(i))));
  const lenient = anyOf(values.map((v, i) => stringMatch(v.toLowerCase(), at.item(i))));
  return (f) => (f.lenient ? f.paths.some(lenient) : strict(f.paths[0] as string));
}

function and(tests: readonly (Test | undefined)[]): Test {
  const present = tests.filter((t): t is Test => t !== undefined);
  return (f, deny) => present.every((t) => t(f, deny));
}

function source(value: unknown, at: At, domains: TrustDomains): Test {
  const s = mapping(value, at, SOURCE_FIELDS, SOURCE_REFUSED);
  const field = (name: string) => stringList(s[name], at.key(name));
  const present = SOURCE_FIELDS.filter((name) => field(name) !== undefined);
  if (present.length === 0) throw at.invalid('must not be empty (Istio refuses an empty source)');
  return and([
    positive(field('principals'), (v) => principals(v, at.key('principals'), domains)),
    negate(positive(field('notPrincipals'), (v) => principals(v, at.key('notPrincipals'), domains))),
    positive(field('namespaces'), (v) => namespaces(v, at.key('namespaces'))),
    negate(positive(field('notNamespaces'), (v) => namespaces(v, at.key('notNamespaces')))),
    positive(field('ipBlocks'), (v) => ips(v, at.key('ipBlocks'))),
    negate(positive(field('notIpBlocks'), (v) => ips(v, at.key('notIpBlocks')))),
  ]);
}

function operation(value: unknown, at: At): Test {
  const o = mapping(value, at, OPERATION_FIELDS);
  const field = (name: string) => stringList(o[name], at.key(name), name === 'ports' || name === 'notPorts');
  if (OPERATION_FIELDS.every((name) => field(name) === undefined)) {
    throw at.invalid('must not be empty (Istio refuses an empty operation)');
  }
  return and([
    positive(field('hosts'), (v) => hosts(v, at.key('hosts'))),
    negate(positive(field('notHosts'), (v) => hosts(v, at.key('notHosts')))),
    positive(field('ports'), (v) => ports(v, at.key('ports'))),
    negate(positive(field('notPorts'), (v) => ports(v, at.key('notPorts')))),
    positive(field('methods'), (v) => methods(v, at.key('methods'))),
    negate(positive(field('notMethods'), (v) => methods(v, at.key('notMethods')))),
    positive(field('paths'), (v) => paths(v, at.key('paths'))),
    negate(positive(field('notPaths'), (v) => paths(v, at.key('notPaths')))),
  ]);
}

function conditionValues(key: string, values: readonly string[], at: At, domains: TrustDomains): Test {
  switch (key) {
    case 'source.principal':
      return principals(values, at, domains);
    case 'source.namespace':
      return namespaces(values, at);
    case 'source.ip':
      return ips(values, at);
    case 'destination.port':
      return ports(values, at);
    case 'connection.sni': {
      const test = anyOf(values.map((v, i) => stringMatch(v, at.item(i), true)));
      return (f) => test(f.sni);
    }
    default:
      throw new TypeError('unreachable: keys are checked first');
  }
}

const KNOWN_KEYS = [
  'source.principal',
  'source.namespace',
  'source.ip',
  'destination.port',
  'connection.sni',
];

function refusedKey(key: string): string | undefined {
  if (key.startsWith('request.auth.')) return JWT;
  if (key.startsWith('request.headers')) return 'sidecarless policies do not read request headers';
  if (key === 'remote.ip') return SOURCE_REFUSED.remoteIpBlocks;
  if (key === 'destination.ip') return 'the destination address is not an attribute sidecarless decides on';
  if (key.startsWith('experimental.')) return 'experimental Envoy metadata has no counterpart';
  return KNOWN_KEYS.includes(key) ? undefined : 'not an attribute sidecarless knows';
}

function condition(value: unknown, at: At, domains: TrustDomains): Test {
  const c = mapping(value, at, ['key', 'values', 'notValues']);
  const key = c.key;
  if (typeof key !== 'string' || key === '') throw at.key('key').invalid('must not be empty');
  const why = refusedKey(key);
  if (why !== undefined)
    throw at.key('key').unsupported(`${JSON.stringify(key)} is not supported: ${why} (refused, not ignored)`);
  const numbers = key === 'destination.port';
  const values = stringList(c.values, at.key('values'), numbers);
  const notValues = stringList(c.notValues, at.key('notValues'), numbers);
  if (values === undefined && notValues === undefined) {
    throw at.invalid(`must set "values" or "notValues" for key ${key}`);
  }
  return and([
    positive(values, (v) => conditionValues(key, v, at.key('values'), domains)),
    negate(positive(notValues, (v) => conditionValues(key, v, at.key('notValues'), domains))),
  ]);
}

function shortText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

/**
 * `from` or `to`: absent is no condition (null); each entry must hold its one field (`source`,
 * `operation`). Istio's validation refuses an empty list and an entry without its field.
 */
function clauses(
  value: unknown,
  at: At,
  field: string,
  compile: (value: unknown, at: At) => Test,
): readonly Test[] | null {
  const items = list(value, at);
  if (items === undefined) return null;
  if (items.length === 0) throw at.invalid(`must not be empty (Istio refuses an empty list)`);
  return items.map((item, i) => {
    const entry = mapping(item, at.item(i), [field]);
    if (entry[field] === undefined || entry[field] === null) {
      throw at.item(i).key(field).invalid(`must be set (Istio refuses an entry without "${field}")`);
    }
    return compile(entry[field], at.item(i).key(field));
  });
}

/** Compiles `rules[index]` of a policy. */
export function compileRule(value: unknown, at: At, name: string, domains: TrustDomains): CompiledRule {
  const r = mapping(value, at, ['from', 'to', 'when']);
  const when = list(r.when, at.key('when'));
  return Object.freeze({
    name,
    text: shortText(value),
    from: clauses(r.from, at.key('from'), 'source', (v, a) => source(v, a, domains)),
    to: clauses(r.to, at.key('to'), 'operation', operation),
    when: (when ?? []).map((item, i) => condition(item, at.key('when').item(i), domains)),
  });
}

/** Whether the operation and conditions of a rule match (its sources aside). */
export function operationMatches(rule: CompiledRule, facts: Facts, deny: boolean): boolean {
  return (rule.to === null || rule.to.some((t) => t(facts, deny))) && rule.when.every((t) => t(facts, deny));
}

/** Whether a rule matches. */
export function ruleMatches(rule: CompiledRule, facts: Facts, deny: boolean): boolean {
  return operationMatches(rule, facts, deny) && (rule.from === null || rule.from.some((t) => t(facts, deny)));
}
