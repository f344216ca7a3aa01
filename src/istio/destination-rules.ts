// DestinationRule → the clients' `destinations` (secure naming per host), with Istio's lookup
// (https://istio.io/latest/docs/ops/best-practices/traffic-management/#cross-namespace-configuration):
// the client's namespace, then the service's, then the root namespace. Hosts without a rule get
// `auto` (Istio's auto-mTLS). The expected server identity is never "any peer": the host's
// namespace, the `serviceAccounts` named, or the rule's `subjectAltNames`.
import type { Destination, Destinations } from '../client/destinations.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { checkContext, type IstioContext, type ResolvedContext } from './context.js';
import type { IstioInput } from './documents.js';
import { type At, list, mapping, optionalMapping, portNumber, refName, stringList } from './fields.js';
import { collectObjects, type IstioObject, oldest, selects } from './objects.js';

/**
 * The well-known symbol under which {@link istioDestinations} leaves its search domains on the
 * destinations it returns, for the destination compiler to read (a `searchDomains` client option,
 * when given, comes first). Not enumerable: `Object.keys()` shows only destinations.
 * @example
 * ```ts
 * import { ISTIO_SEARCH_DOMAINS, istioDestinations } from 'sidecarless/istio';
 * const destinations = istioDestinations('', { namespace: 'demo', trustDomain: 'cluster.local' });
 * (destinations as Record<symbol, unknown>)[ISTIO_SEARCH_DOMAINS]; // ['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local']
 * ```
 */
export const ISTIO_SEARCH_DOMAINS: unique symbol = Symbol.for(
  'sidecarless.destinations.searchDomains',
) as never;

/**
 * Options of {@link istioDestinations}.
 * @example
 * ```ts
 * import type { IstioDestinationsOptions } from 'sidecarless/istio';
 * const options: IstioDestinationsOptions = {
 *   serviceAccounts: { 'boards.demo.svc.cluster.local': 'boards' },
 *   namespaces: ['ops'],
 * };
 * ```
 */
export interface IstioDestinationsOptions {
  /**
   * The service accounts a host's pods run as (Istio's secure naming), by host (full name, or a
   * short name of the client's namespace): the server must present one of them. Without it a host
   * is expected to present any identity of its namespace.
   */
  readonly serviceAccounts?: Readonly<Record<string, string | readonly string[]>>;
  /** More namespaces to give their own expectation (`*.<ns>.svc.<clusterDomain>` keys). */
  readonly namespaces?: readonly string[];
  /** The client's DNS search domains; default `<ns>.svc.<cd>`, `svc.<cd>`, `<cd>` as in a pod. */
  readonly searchDomains?: readonly string[];
}

type Mode = 'mtls' | 'plaintext' | 'auto';

/** What a rule says for one port: the mode, and subjectAltNames when it names them. */
interface Rule {
  readonly mode: Mode;
  readonly sans: readonly string[] | undefined;
}

interface Pattern {
  readonly kind: 'exact' | 'suffix' | 'any';
  /** The host, or the suffix without "*." */
  readonly host: string;
}

interface Entry {
  readonly pattern: Pattern;
  readonly port: number | undefined;
  readonly rule: Rule;
  /** 0 client namespace, 1 service namespace, 2 root namespace, 3 no DestinationRule. */
  readonly rank: number;
  readonly source: string;
}

/** One destination with what decided it, for `explainIstio()`. */
export interface DestinationExplanation {
  readonly key: string;
  readonly destination: Destination;
  readonly source: string;
}

/** Everything the client-side translation decided. */
export interface DestinationTranslation {
  readonly destinations: Destinations;
  readonly explained: readonly DestinationExplanation[];
  readonly notes: readonly string[];
  readonly searchDomains: readonly string[];
}

const HOST = /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function keyOf(pattern: Pattern, port: number | undefined): string {
  const host = pattern.kind === 'any' ? '*' : pattern.kind === 'suffix' ? `*.${pattern.host}` : pattern.host;
  return port === undefined ? host : `${host}:${port}`;
}

/** The namespace a host name belongs to, when it is a cluster service name. */
function namespaceOf(pattern: Pattern, ctx: ResolvedContext): string | undefined {
  if (pattern.kind === 'any') return undefined;
  const suffix = `.svc.${ctx.clusterDomain}`;
  if (!pattern.host.endsWith(suffix)) return undefined;
  const labels = pattern.host.slice(0, -suffix.length).split('.');
  // exact: name.ns; suffix: ns (so "*.ns.svc.cluster.local")
  if (pattern.kind === 'exact') return labels.length === 2 ? labels[1] : undefined;
  return labels.length === 1 ? labels[0] : undefined;
}

function covers(p: Pattern, q: Pattern): boolean {
  if (p.kind === 'any') return true;
  if (q.kind === 'any') return false;
  if (p.kind === 'exact') return q.kind === 'exact' && q.host === p.host;
  return q.host === p.host ? q.kind === 'suffix' : q.host.endsWith(`.${p.host}`);
}

/** More specific first: exact over suffix (longer first) over any. */
function specificity(p: Pattern): number {
  return p.kind === 'exact' ? 100_000 + p.host.length : p.kind === 'suffix' ? p.host.length : -1;
}

function readHost(value: unknown, at: At, object: IstioObject, ctx: ResolvedContext): Pattern {
  if (typeof value !== 'string' || value === '') throw at.invalid('must be a host name');
  const host = value.toLowerCase().replace(/\.$/, '');
  if (!HOST.test(host)) throw at.invalid(`${JSON.stringify(value)} must be a host name, "*.suffix" or "*"`);
  if (host === '*') return { kind: 'any', host: '' };
  if (host.startsWith('*.')) return { kind: 'suffix', host: host.slice(2) };
  // Istio reads a short name in the rule's namespace, whatever the service's is.
  if (!host.includes('.'))
    return { kind: 'exact', host: `${host}.${object.namespace}.svc.${ctx.clusterDomain}` };
  return { kind: 'exact', host };
}

const TLS_FIELDS = [
  'mode',
  'subjectAltNames',
  'sni',
  'clientCertificate',
  'privateKey',
  'caCertificates',
  'credentialName',
  'insecureSkipVerify',
  'caCrl',
];
const ORIGINATION =
  'TLS origination with your own certificates has no counterpart: call the server with https:// and a "plaintext" destination (ordinary TLS, system roots), or give the server an SVID and use ISTIO_MUTUAL';

function readTls(value: unknown, at: At): Rule | undefined {
  const tls = optionalMapping(value, at, TLS_FIELDS);
  if (tls === undefined) return undefined;
  const mode = tls.mode ?? 'DISABLE';
  if (mode === 'SIMPLE' || mode === 'MUTUAL') throw at.key('mode').unsupported(`${mode}: ${ORIGINATION}`);
  if (mode !== 'DISABLE' && mode !== 'ISTIO_MUTUAL') {
    throw at
      .key('mode')
      .invalid(`must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL, got ${JSON.stringify(mode)}`);
  }
  if (tls.insecureSkipVerify === true)
    throw at.key('insecureSkipVerify').unsupported('skipping server verification is never done (refused)');
  for (const field of [
    'clientCertificate',
    'privateKey',
    'caCertificates',
    'credentialName',
    'caCrl',
    'sni',
  ]) {
    if (tls[field] !== undefined && tls[field] !== null) {
      throw at
        .key(field)
        .invalid(
          `must be empty with mode ${mode} (the SVID and trust bundle come from the identity source; the SNI from the host)`,
        );
    }
  }
  const sans = stringList(tls.subjectAltNames, at.key('subjectAltNames'));
  if (mode === 'DISABLE') return { mode: 'plaintext', sans: undefined };
  sans?.forEach((san, i) => {
    if (!san.startsWith('spiffe://')) {
      throw at
        .key('subjectAltNames')
        .item(i)
        .unsupported(`${JSON.stringify(san)}: servers are named by SPIFFE ID; DNS names are not checked`);
    }
    try {
      SpiffeId.parse(san);
    } catch (err) {
      throw at
        .key('subjectAltNames')
        .item(i)
        .invalid(`${JSON.stringify(san)} is not a SPIFFE ID: ${(err as Error).message}`);
    }
  });
  return { mode: 'mtls', sans };
}

const WIRE = {
  tunnel: 'tunnelling through a CONNECT or POST proxy has no counterpart in sidecarless clients',
  proxyProtocol: 'the PROXY protocol has no counterpart in sidecarless clients',
};
const POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings'];

interface ReadRule {
  readonly pattern: Pattern;
  readonly top: Rule | undefined;
  readonly ports: ReadonlyMap<number, Rule>;
}

function readRule(object: IstioObject, ctx: ResolvedContext, notes: string[]): ReadRule {
  const at = object.at.key('spec');
  const spec = mapping(object.spec, at, ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector']);
  const pattern = readHost(spec.host, at.key('host'), object, ctx);
  const policyAt = at.key('trafficPolicy');
  const policy = optionalMapping(spec.trafficPolicy, policyAt, POLICY_FIELDS, WIRE) ?? {};
  const top = readTls(policy.tls, policyAt.key('tls'));
  const ports = new Map<number, Rule>();
  for (const [i, item] of (
    list(policy.portLevelSettings, policyAt.key('portLevelSettings')) ?? []
  ).entries()) {
    const pAt = policyAt.key('portLevelSettings').item(i);
    const pls = mapping(item, pAt, ['port', 'loadBalancer', 'connectionPool', 'outlierDetection', 'tls']);
    const port = portNumber(mapping(pls.port, pAt.key('port'), ['number']).number, pAt.key('port.number'));
    const tls = readTls(pls.tls, pAt.key('tls'));
    if (tls === undefined) {
      notes.push(
        `${refName(object)} portLevelSettings[${i}] (port ${port}) has no tls: the rule's tls applies`,
      );
      continue;
    }
    if (pattern.kind !== 'exact') {
      throw pAt
        .key('tls')
        .unsupported(
          'per-port TLS on a wildcard host cannot be expressed: destinations with a port name one host',
        );
    }
    ports.set(port, tls);
  }
  for (const [i, subset] of (list(spec.subsets, at.key('subsets')) ?? []).entries()) {
    const s = mapping(subset, at.key('subsets').item(i), ['name', 'labels', 'trafficPolicy']);
    const tp = optionalMapping(
      s.trafficPolicy,
      at.key('subsets').item(i).key('trafficPolicy'),
      POLICY_FIELDS,
      WIRE,
    );
    if (tp?.tls !== undefined || tp?.portLevelSettings !== undefined) {
      throw at
        .key('subsets')
        .item(i)
        .key('trafficPolicy')
        .unsupported('TLS per subset needs VirtualService routing, which sidecarless does not do');
    }
  }
  if (
    policy.loadBalancer !== undefined ||
    policy.connectionPool !== undefined ||
    policy.outlierDetection !== undefined
  ) {
    notes.push(
      `${refName(object)}: load balancing, connection pool and outlier detection are not applied (not security settings)`,
    );
  }
  return { pattern, top, ports };
}

/** Whether the rule is visible from the client's namespace (`exportTo`). */
function exported(object: IstioObject, ctx: ResolvedContext): boolean {
  const exportTo = stringList(object.spec.exportTo, object.at.key('spec.exportTo'));
  if (exportTo === undefined) return true;
  return exportTo.some(
    (ns) => ns === '*' || (ns === '.' ? object.namespace === ctx.namespace : ns === ctx.namespace),
  );
}

function checkServiceAccounts(value: unknown, ctx: ResolvedContext): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  if (value === undefined) return out;
  const proto = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
  if (proto !== Object.prototype && proto !== null)
    throw invalidOption('serviceAccounts', 'an object of hosts and service account names', value);
  for (const [host, accounts] of Object.entries(value as object)) {
    const list = typeof accounts === 'string' ? [accounts] : accounts;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((a) => typeof a === 'string' && DNS_LABEL.test(a))
    ) {
      throw invalidOption(
        `serviceAccounts[${JSON.stringify(host)}]`,
        'a service account name or a list of them',
        accounts,
      );
    }
    const name = host.toLowerCase();
    if (!HOST.test(name) || name.includes('*'))
      throw invalidOption('serviceAccounts', 'host names (no wildcards) as keys', host);
    out.set(name.includes('.') ? name : `${name}.${ctx.namespace}.svc.${ctx.clusterDomain}`, list);
  }
  return out;
}

/** The client-side translation: destinations with what decided each. */
export function translateDestinations(
  docs: IstioInput,
  context: IstioContext,
  options: IstioDestinationsOptions = {},
): DestinationTranslation {
  const opts = checkOptions<IstioDestinationsOptions>(
    options ?? {},
    ['serviceAccounts', 'namespaces', 'searchDomains'],
    'istioDestinations',
  );
  const ctx = checkContext(context, {});
  const accounts = checkServiceAccounts(opts.serviceAccounts, ctx);
  const extraNamespaces = opts.namespaces ?? [];
  if (
    !Array.isArray(extraNamespaces) ||
    !extraNamespaces.every((n) => typeof n === 'string' && DNS_LABEL.test(n))
  ) {
    throw invalidOption('namespaces', 'a list of namespace names', extraNamespaces);
  }
  const searchDomains = opts.searchDomains ?? [
    `${ctx.namespace}.svc.${ctx.clusterDomain}`,
    `svc.${ctx.clusterDomain}`,
    ctx.clusterDomain,
  ];
  if (
    !Array.isArray(searchDomains) ||
    !searchDomains.every((d) => typeof d === 'string' && HOST.test(d) && !d.includes('*'))
  ) {
    throw invalidOption('searchDomains', 'a list of DNS names', searchDomains);
  }
  const notes: string[] = [];
  const { objects } = collectObjects(docs, ctx);
  const byKey = new Map<string, { rank: number; objects: IstioObject[]; read: ReadRule[] }>();
  for (const object of objects) {
    if (object.kind !== 'DestinationRule') continue;
    const name = refName(object);
    if (!exported(object, ctx)) {
      notes.push(`${name} is not exported to namespace ${ctx.namespace}`);
      continue;
    }
    const applies = selects(object.spec, object.at.key('spec'), ctx.labels, 'workloadSelector');
    if (applies !== undefined) {
      if (object.namespace !== ctx.namespace) {
        notes.push(
          `${name} has a workloadSelector and is in another namespace: it applies to its own workloads only`,
        );
        continue;
      }
      if (!ctx.labelsGiven)
        throw object.at.key('spec.workloadSelector').invalid('selects workloads: give context.labels');
      if (!applies) {
        notes.push(`${name}: its workloadSelector does not match the client's labels`);
        continue;
      }
    }
    const read = readRule(object, ctx, notes);
    let { pattern } = read;
    let rank: number;
    if (object.namespace === ctx.namespace) rank = 0;
    else if (namespaceOf(pattern, ctx) === object.namespace) rank = 1;
    else if (object.namespace === ctx.rootNamespace) rank = 2;
    else {
      // A service-namespace rule only applies to its namespace's services: narrow a broad host.
      const own: Pattern = { kind: 'suffix', host: `${object.namespace}.svc.${ctx.clusterDomain}` };
      if (!covers(pattern, own)) {
        notes.push(
          `${name} is not on the lookup path of namespace ${ctx.namespace} (client, service or root namespace)`,
        );
        continue;
      }
      pattern = own;
      rank = 1;
    }
    const key = keyOf(pattern, undefined);
    const slot = byKey.get(key) ?? { rank, objects: [], read: [] };
    if (rank < slot.rank) byKey.set(key, { rank, objects: [object], read: [{ ...read, pattern }] });
    else if (rank === slot.rank) {
      slot.objects.push(object);
      slot.read.push({ ...read, pattern });
      byKey.set(key, slot);
    }
  }
  const entries: Entry[] = [];
  for (const slot of byKey.values()) {
    // Istio: of several rules for one host, the oldest one's settings apply.
    const chosen = oldest(
      slot.objects,
      `host ${keyOf(slot.read[0]?.pattern as Pattern, undefined)}`,
    ) as IstioObject;
    const read = slot.read[slot.objects.indexOf(chosen)] as ReadRule;
    const source = refName(chosen);
    entries.push({
      pattern: read.pattern,
      port: undefined,
      rule: read.top ?? { mode: 'auto', sans: undefined },
      rank: slot.rank,
      source,
    });
    for (const [port, rule] of read.ports)
      entries.push({
        pattern: read.pattern,
        port,
        rule,
        rank: slot.rank,
        source: `${source} portLevelSettings[${port}]`,
      });
  }
  // Hosts without a DestinationRule: auto-mTLS, expecting the host's namespace.
  const namespaces = new Set([ctx.namespace, ...extraNamespaces]);
  for (const o of objects) if (o.namespace !== '(cluster)') namespaces.add(o.namespace);
  for (const e of entries) {
    const ns = namespaceOf(e.pattern, ctx);
    if (ns !== undefined) namespaces.add(ns);
  }
  const auto: Rule = { mode: 'auto', sans: undefined };
  const defaults: Entry[] = [...namespaces].map((ns) => ({
    pattern: { kind: 'suffix', host: `${ns}.svc.${ctx.clusterDomain}` },
    port: undefined,
    rule: auto,
    rank: 3,
    source: 'no DestinationRule: auto-mTLS',
  }));
  defaults.push({
    pattern: { kind: 'suffix', host: `svc.${ctx.clusterDomain}` },
    port: undefined,
    rule: auto,
    rank: 3,
    source: 'no DestinationRule: auto-mTLS (namespace not named: any identity of the trust domain)',
  });
  defaults.push({
    pattern: { kind: 'any', host: '' },
    port: undefined,
    rule: { mode: 'plaintext', sans: undefined },
    rank: 3,
    source: 'not a mesh service: passed through as the application sends it',
  });
  for (const d of defaults)
    if (!entries.some((e) => keyOf(e.pattern, e.port) === keyOf(d.pattern, d.port))) entries.push(d);
  for (const [host] of accounts) {
    const p: Pattern = { kind: 'exact', host };
    if (!entries.some((e) => keyOf(e.pattern, e.port) === host))
      entries.push({
        pattern: p,
        port: undefined,
        rule: auto,
        rank: 3,
        source: 'no DestinationRule: auto-mTLS',
      });
  }
  // Flatten Istio's namespace precedence into most-specific-key-wins: a key is taken over by the
  // best rule of a higher-precedence namespace that covers it (Istio would stop there).
  const resolved = entries.map((e) => {
    const over = entries
      .filter(
        (p) =>
          p !== e &&
          p.rank < e.rank &&
          covers(p.pattern, e.pattern) &&
          (p.port === undefined || p.port === e.port),
      )
      .sort(
        (a, b) =>
          a.rank - b.rank ||
          specificity(b.pattern) - specificity(a.pattern) ||
          (b.port === undefined ? 0 : 1) - (a.port === undefined ? 0 : 1),
      )[0];
    return over === undefined ? e : { ...e, rule: over.rule, source: `${over.source} (over ${e.source})` };
  });
  const destinations: Record<string, Destination> = {};
  const explained: DestinationExplanation[] = [];
  for (const e of resolved) {
    const key = keyOf(e.pattern, e.port);
    const destination = destinationOf(e, ctx, accounts);
    destinations[key] = destination;
    explained.push(Object.freeze({ key, destination, source: e.source }));
  }
  Object.defineProperty(destinations, ISTIO_SEARCH_DOMAINS, {
    value: Object.freeze([...searchDomains]),
    enumerable: false,
  });
  return Object.freeze({
    destinations: Object.freeze(destinations),
    explained: Object.freeze(explained),
    notes: Object.freeze(notes),
    searchDomains: Object.freeze([...searchDomains]),
  });
}

function destinationOf(
  e: Entry,
  ctx: ResolvedContext,
  accounts: ReadonlyMap<string, readonly string[]>,
): Destination {
  if (e.rule.mode === 'plaintext') return Object.freeze({ mode: 'plaintext' });
  const td = ctx.trustDomain;
  let expect: string | readonly string[];
  const sas = e.pattern.kind === 'exact' ? accounts.get(e.pattern.host) : undefined;
  const ns = namespaceOf(e.pattern, ctx);
  if (e.rule.sans !== undefined) expect = Object.freeze([...e.rule.sans]);
  else if (sas !== undefined && ns !== undefined)
    expect = Object.freeze(sas.map((sa) => `spiffe://${td}/ns/${ns}/sa/${sa}`));
  else if (ns !== undefined) expect = `spiffe://${td}/ns/${ns}/*`;
  // No namespace in the name: any workload of the mesh's trust domain (never any trusted peer).
  else expect = `spiffe://${td}/*`;
  return Object.freeze({ mode: e.rule.mode, expect });
}

/**
 * The clients' `destinations` from Istio DestinationRules, for `createMtlsDispatcher` and
 * `createMtlsAgent`: `ISTIO_MUTUAL` is `mtls`, `DISABLE` is `plaintext`, per host and
 * `portLevelSettings` port; a host without a rule is `auto` (Istio's auto-mTLS); anything not a
 * cluster service is passed through in plaintext, as Istio does. Each mTLS destination expects
 * the host's namespace (`spiffe://<td>/ns/<ns>/*`), the accounts `serviceAccounts` names, or the
 * rule's `subjectAltNames`; never `'*'`. The result carries the pod's search domains under
 * {@link ISTIO_SEARCH_DOMAINS}, so short names (`http://boards:8080`) reach their service's
 * destination.
 *
 * @param docs - the Istio documents
 * @param context - the client: `namespace`, `trustDomain` (`labels` when a rule has a `workloadSelector`)
 * @param options - `serviceAccounts`, `namespaces`, `searchDomains`
 * @returns the destinations, frozen
 * @throws SidecarlessError `ERR_ISTIO_UNSUPPORTED` for `SIMPLE`/`MUTUAL` TLS, DNS
 *   `subjectAltNames`, per-subset TLS, tunnels; `ERR_ISTIO_INVALID` for a malformed rule;
 *   `ERR_ISTIO_CONFLICT` for two rules of one host without timestamps
 * @example
 * ```ts
 * import { createLocalCa, createMtlsDispatcher } from 'sidecarless';
 * import { istioDestinations } from 'sidecarless/istio';
 * const rule = `
 * apiVersion: networking.istio.io/v1alpha3
 * kind: DestinationRule
 * metadata: { name: destinationrule-mtls-istio-mutual, namespace: microservices-demo }
 * spec:
 *   host: "*.microservices-demo.svc.cluster.local"
 *   trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
 * `;
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/microservices-demo/sa/app-ui');
 * const destinations = istioDestinations(rule, { namespace: 'microservices-demo', trustDomain: 'cluster.local' });
 * destinations['*.microservices-demo.svc.cluster.local']; // { mode: 'mtls', expect: 'spiffe://cluster.local/ns/microservices-demo/*' }
 * const dispatcher = createMtlsDispatcher({ identity, destinations });
 * ```
 */
export function istioDestinations(
  docs: IstioInput,
  context: IstioContext,
  options: IstioDestinationsOptions = {},
): Destinations {
  return translateDestinations(docs, context, options).destinations;
}
