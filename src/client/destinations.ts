import type { Peer } from '../authz/peer.js';
import { type CompiledPeerMatcher, compilePeerMatcher, type PeerMatcher } from '../authz/peer-matcher.js';
import { SidecarlessError } from '../errors.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { quote } from '../internal/show.js';
import { embeddedIpv4, type HostKind, isThisHost, parseHost, portOf } from './hosts.js';

/**
 * How a client reaches a destination (the Istio DestinationRule TLS mode, client side):
 * - `'mtls'` (default): mutual TLS with the workload's SVID, the server authenticated by its SPIFFE
 *   ID (Istio `ISTIO_MUTUAL`); a server that does not speak TLS is refused;
 * - `'plaintext'`: no SVID; `http://` URLs go in plaintext, `https://` URLs get ordinary TLS
 *   (system roots, hostname verification);
 * - `'auto'`: mutual TLS, falling back to plaintext only when the server does not speak TLS at
 *   all (its first byte is not a TLS record), never after a failed check; each fallback is
 *   reported by a `fallback` event.
 * @example
 * ```ts
 * import type { DestinationMode } from 'sidecarless';
 * const migrating: DestinationMode = 'auto';
 * ```
 */
export type DestinationMode = 'mtls' | 'plaintext' | 'auto';

/**
 * What a client does for one destination: its mode, and which server identity it expects.
 * @example
 * ```ts
 * import type { Destination } from 'sidecarless';
 * const boards: Destination = { expect: 'spiffe://cluster.local/ns/demo/sa/boards' };
 * const legacy: Destination = { mode: 'auto', expect: 'spiffe://cluster.local/ns/old/sa/legacy' };
 * ```
 */
export interface Destination {
  /** `'mtls'` (default), `'plaintext'` or `'auto'`. */
  readonly mode?: DestinationMode;
  /**
   * The server identities accepted (secure naming), as peer matchers: required in `mtls` and
   * `auto` mode (`'*'` accepts any authenticated server of a trusted trust domain, on purpose);
   * `'unauthenticated'` is refused. Not allowed in `plaintext` mode.
   */
  readonly expect?: PeerMatcher;
}

/**
 * Destinations by key: `'host:port'`, `'host'`, `'*.suffix'` (any name under the suffix) or
 * `'*'` (everything else). The most specific key wins: `host:port`, then `host`, then the
 * longest matching `*.suffix`, then `'*'`. Hosts are compared in canonical form (case, trailing
 * dot, IPv6 brackets and RFC 5952 form, IPv4 spellings, IPv4-mapped IPv6, default ports 80/443),
 * so no spelling of a URL reaches a weaker key.
 *
 * A connection may reach a host under more than one name; each is a candidate, and the
 * strictest destination among them applies (`mtls` over `auto` over `plaintext`; the server must
 * satisfy every `expect` among them):
 * - the host as written, with `'*'` as its default;
 * - when some key is an IP literal, every address the host resolves to (the client resolves
 *   once per new connection and connects to those addresses only);
 * - the IPv4 address inside an IPv4-compatible, IPv4-translated or NAT64 IPv6 address;
 * - for an address of this host (`127.0.0.0/8`, `::1`, `0.0.0.0/8`, `::`), every key on one of
 *   those addresses: a server bound to `0.0.0.0` answers on all of them;
 * - for a name without a dot (`boards`), the name under each of the client's `searchDomains`.
 *
 * Candidates other than the host as written count only through a key that names them, never
 * through `'*'`. IPv6 zone ids (`fe80::1%eth0`) are refused: no key can say which interface.
 * @example
 * ```ts
 * import type { Destinations } from 'sidecarless';
 * const destinations: Destinations = {
 *   'boards.demo.svc.cluster.local:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' },
 *   '*.demo.svc.cluster.local': { expect: 'spiffe://cluster.local/ns/demo/*' },
 *   '10.0.0.7:5432': { expect: 'spiffe://cluster.local/ns/data/sa/postgres' },
 *   '*': { mode: 'plaintext' },
 * };
 * ```
 */
export type Destinations = Readonly<Record<string, Destination>>;

/** A destination after compilation, or the combination of several for one connection. */
export interface ResolvedDestination {
  /** The key as written in the options (the first of `keys`). */
  readonly key: string;
  /** Every key that decided, as written (more than one when candidates combined). */
  readonly keys: readonly string[];
  readonly mode: DestinationMode;
  /** Set for `mtls` and `auto`. */
  readonly expect: CompiledPeerMatcher | undefined;
}

/** Why a host is a candidate of a connection. */
export type CandidateSource = 'host' | 'address' | 'embedded-ipv4' | 'search-domain';

/** One host a connection may reach, in canonical form. */
export interface Candidate {
  readonly host: string;
  readonly kind: HostKind;
  readonly source: CandidateSource;
}

/** Picks the destination of a connection. */
export interface DestinationTable {
  /** Whether the addresses a name resolves to take part: some key is an IP literal. */
  readonly resolvesNames: boolean;
  /**
   * The candidates of a connection to `host` (which must be canonical, see `parseHost`): the host,
   * the names its search domains make of it, the given `addresses` it resolved to, and the IPv4
   * addresses inside IPv6 ones.
   */
  candidates(host: string, kind: HostKind, addresses?: readonly string[]): readonly Candidate[];
  /**
   * The strictest destination among the candidates on `port`, or undefined when none matches a
   * key (and the host as written has no `'*'`).
   */
  select(candidates: readonly Candidate[], port: number): ResolvedDestination | undefined;
  /**
   * The destination for a host and port, without resolving: `select(candidates(host))`.
   * Undefined when no key matches, or when the host or port is malformed.
   * @param host - a host name or IP address, in any spelling
   * @param port - the port; empty or undefined means the protocol's default
   * @param protocol - `'http:'` or `'https:'`, for the default port
   */
  resolve(host: string, port: string | number | undefined, protocol: string): ResolvedDestination | undefined;
}

const MODES: readonly DestinationMode[] = ['mtls', 'plaintext', 'auto'];
const RANK: Readonly<Record<DestinationMode, number>> = { plaintext: 0, auto: 1, mtls: 2 };

/** The most searchDomains a client takes: each is one more candidate per short name. */
export const MAX_SEARCH_DOMAINS = 16;

interface ParsedKey {
  readonly kind: 'exact' | 'suffix' | 'any';
  readonly host: string;
  readonly hostKind: HostKind | undefined;
  readonly port: number | undefined;
}

function parseKey(key: string): ParsedKey {
  const bad = (rule: string) =>
    new SidecarlessError('ERR_OPTION_INVALID', `destinations: key ${quote(key)} ${rule}`, {
      field: `destinations[${quote(key)}]`,
    });
  if (key === '*') return { kind: 'any', host: '', hostKind: undefined, port: undefined };
  let hostPart = key;
  let port: number | undefined;
  const portMatch = /^(.*\]|[^:]*):(\d+)$/.exec(key);
  if (portMatch !== null) {
    hostPart = portMatch[1] as string;
    port = portOf(portMatch[2], 'http:');
    if (port === undefined) throw bad('has a port outside 1-65535');
  }
  if (hostPart.startsWith('*.')) {
    if (port !== undefined) throw bad('cannot have a port: wildcard keys are "*.suffix"');
    const suffix = parseHost(hostPart.slice(2));
    if (!suffix.ok || suffix.kind !== 'name' || suffix.host.includes('*')) {
      throw bad('must be "*.suffix" with a DNS name suffix');
    }
    return { kind: 'suffix', host: suffix.host, hostKind: 'name', port: undefined };
  }
  if (hostPart.includes('*')) throw bad('may only use "*" as a whole first label ("*.suffix") or alone');
  const bracketed = hostPart.startsWith('[') && hostPart.endsWith(']');
  const unbracketed = bracketed ? hostPart.slice(1, -1) : hostPart;
  if (unbracketed.includes(':') !== bracketed) {
    throw bad('must write an IPv6 address in brackets ("[::1]:8080"), and only an IPv6 address');
  }
  const host = parseHost(unbracketed);
  if (!host.ok) {
    throw bad(bracketed ? host.rule : 'must be "host:port", "host", "*.suffix" or "*"');
  }
  return { kind: 'exact', host: host.host, hostKind: host.kind, port };
}

function compileDestination(key: string, value: unknown): ResolvedDestination {
  const field = `destinations[${quote(key)}]`;
  const opts = checkOptions<Destination>(value, ['mode', 'expect'], field);
  const mode = opts.mode ?? 'mtls';
  if (!MODES.includes(mode)) throw invalidOption(`${field}.mode`, `one of ${MODES.join(', ')}`, mode);
  const keys = Object.freeze([key]);
  if (mode === 'plaintext') {
    if (opts.expect !== undefined) {
      throw invalidOption(
        `${field}.expect`,
        'absent in plaintext mode (no server identity is checked)',
        opts.expect,
      );
    }
    return Object.freeze({ key, keys, mode, expect: undefined });
  }
  if (opts.expect === undefined) {
    // No implicit "any peer": the caller says what it expects, or '*' on purpose.
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `destinations: ${quote(key)} is in ${mode} mode and must say which server it expects ("expect"; "*" accepts any authenticated server)`,
      { field: `${field}.expect` },
    );
  }
  const expect = compilePeerMatcher(opts.expect, `${field}.expect`, { allowUnauthenticated: false });
  return Object.freeze({ key, keys, mode, expect });
}

/**
 * The strictest of several destinations: the highest mode (`mtls` > `auto` > `plaintext`), and a
 * server that satisfies every `expect` among them. Pure; `destinations` is not empty.
 */
export function strictest(destinations: readonly ResolvedDestination[]): ResolvedDestination {
  let top = destinations[0] as ResolvedDestination;
  for (const d of destinations) if (RANK[d.mode] > RANK[top.mode]) top = d;
  if (top.mode === 'plaintext') return top;
  const checked: ResolvedDestination[] = [];
  for (const d of destinations) if (d.mode !== 'plaintext' && !checked.includes(d)) checked.push(d);
  if (checked.length === 1) return top;
  const matchers = checked.map((d) => d.expect as CompiledPeerMatcher);
  const expect: CompiledPeerMatcher = Object.assign((peer: Peer) => matchers.every((m) => m(peer)), {
    source: matchers.map((m) => m.source).join(' and '),
    matchesUnauthenticated: matchers.every((m) => m.matchesUnauthenticated),
    trustDomains: Object.freeze([...new Set(matchers.flatMap((m) => m.trustDomains))]),
  });
  const keys = Object.freeze(checked.flatMap((d) => d.keys));
  return Object.freeze({ key: keys[0] as string, keys, mode: top.mode, expect });
}

function searchDomainsOf(spec: unknown): readonly string[] {
  if (spec === undefined) return [];
  const expected = `a list of at most ${MAX_SEARCH_DOMAINS} DNS names ("demo.svc.cluster.local")`;
  if (!Array.isArray(spec) || spec.length > MAX_SEARCH_DOMAINS)
    throw invalidOption('searchDomains', expected, spec);
  const out: string[] = [];
  for (const [i, domain] of spec.entries()) {
    const parsed = typeof domain === 'string' ? parseHost(domain) : undefined;
    if (parsed === undefined || !parsed.ok || parsed.kind !== 'name' || parsed.host.includes('*')) {
      throw invalidOption(`searchDomains[${i}]`, 'a DNS name ("demo.svc.cluster.local")', domain);
    }
    if (!out.includes(parsed.host)) out.push(parsed.host);
  }
  return Object.freeze(out);
}

/**
 * Where destinations built for a client carry their search domains (`istioDestinations()` puts
 * the pod's there): a non-enumerable property under this `Symbol.for` key, read when the client
 * has no `searchDomains` option of its own, so `createMtlsDispatcher({ identity, destinations })`
 * expands short names without a cast in user code.
 */
export const DESTINATIONS_SEARCH_DOMAINS: unique symbol = Symbol.for(
  'sidecarless.destinations.searchDomains',
) as never;

/**
 * Compiles the destinations option (and the client's `searchDomains`) once, at construction.
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a malformed key, a duplicate key (after
 *   canonicalisation), a bad mode, a missing `expect` or bad search domains; `ERR_POLICY_INVALID`
 *   for a malformed matcher (including `'unauthenticated'`)
 */
export function compileDestinations(spec: unknown, searchDomainsSpec?: unknown): DestinationTable {
  const proto = typeof spec === 'object' && spec !== null ? Object.getPrototypeOf(spec) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw invalidOption(
      'destinations',
      'an object of destinations by "host:port", "host", "*.suffix" or "*"',
      spec,
    );
  }
  const keys = Object.keys(spec as object);
  if (keys.length === 0) throw invalidOption('destinations', 'at least one destination', spec);
  const searchDomains = searchDomainsOf(
    searchDomainsSpec ?? (spec as Record<symbol, unknown>)[DESTINATIONS_SEARCH_DOMAINS],
  );
  const exact = new Map<string, ResolvedDestination>();
  const suffixes: { suffix: string; destination: ResolvedDestination }[] = [];
  // The addresses of this host that some key names: a key on one of them covers them all.
  const local: { host: string; kind: HostKind }[] = [];
  let fallback: ResolvedDestination | undefined;
  let resolvesNames = false;
  const seen = new Map<string, string>();
  for (const key of keys) {
    const parsed = parseKey(key);
    const canonical = `${parsed.kind}|${parsed.host}|${parsed.port ?? ''}`;
    const other = seen.get(canonical);
    if (other !== undefined) {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `destinations: keys ${quote(other)} and ${quote(key)} name the same destination`,
        { field: `destinations[${quote(key)}]` },
      );
    }
    seen.set(canonical, key);
    const destination = compileDestination(key, (spec as Record<string, unknown>)[key]);
    if (parsed.kind === 'any') fallback = destination;
    else if (parsed.kind === 'suffix') suffixes.push({ suffix: `.${parsed.host}`, destination });
    else {
      exact.set(parsed.port === undefined ? parsed.host : `${parsed.host}|${parsed.port}`, destination);
      if (parsed.hostKind !== 'name') resolvesNames = true;
      const kind = parsed.hostKind as HostKind;
      if (isThisHost(parsed.host, kind) && !local.some((l) => l.host === parsed.host)) {
        local.push({ host: parsed.host, kind });
      }
    }
  }
  // Longest suffix first: the most specific wildcard wins.
  suffixes.sort((a, b) => b.suffix.length - a.suffix.length);

  /** The most specific key naming `host` on `port`; `'*'` only when `withDefault`. */
  const match = (host: string, kind: HostKind, port: number, withDefault: boolean) => {
    const found = exact.get(`${host}|${port}`) ?? exact.get(host);
    if (found !== undefined) return found;
    if (kind === 'name')
      for (const { suffix, destination } of suffixes) if (host.endsWith(suffix)) return destination;
    return withDefault ? fallback : undefined;
  };

  const candidates = (host: string, kind: HostKind, addresses: readonly string[] = []): Candidate[] => {
    const out: Candidate[] = [{ host, kind, source: 'host' }];
    const add = (h: string, k: HostKind, source: CandidateSource) => {
      if (!out.some((c) => c.host === h)) out.push({ host: h, kind: k, source });
    };
    if (kind === 'name' && !host.includes('.'))
      for (const d of searchDomains) add(`${host}.${d}`, 'name', 'search-domain');
    for (const address of addresses) {
      // The resolver's own spelling (a scope id, "::ffff:a.b.c.d") gets the keys' canonical form.
      const parsed = parseHost(address.replace(/%.*$/, ''));
      if (parsed.ok && parsed.kind !== 'name') add(parsed.host, parsed.kind, 'address');
    }
    for (const c of [...out]) {
      if (c.kind !== 'ipv6') continue;
      const embedded = embeddedIpv4(c.host);
      if (embedded !== undefined) add(embedded.ipv4, 'ipv4', 'embedded-ipv4');
    }
    return out;
  };

  const select = (list: readonly Candidate[], port: number): ResolvedDestination | undefined => {
    const found: ResolvedDestination[] = [];
    let aliasesAdded = false;
    for (const c of list) {
      const d = match(c.host, c.kind, port, c.source === 'host');
      if (d !== undefined) found.push(d);
      if (!aliasesAdded && local.length > 0 && isThisHost(c.host, c.kind)) {
        aliasesAdded = true;
        // Each with its own most specific key on this port, as if the connection went there.
        for (const l of local) {
          const d = match(l.host, l.kind, port, false);
          if (d !== undefined) found.push(d);
        }
      }
    }
    if (found.length <= 1) return found[0];
    return combined(found);
  };

  // Combinations are few (the keys of one server's names and addresses): built once each.
  const combinations = new Map<string, ResolvedDestination>();
  const combined = (found: ResolvedDestination[]): ResolvedDestination => {
    const id = found.map((d) => d.keys.join('\0')).join('\0\0');
    let result = combinations.get(id);
    if (result === undefined) {
      result = strictest(found);
      if (combinations.size >= COMBINATION_LIMIT)
        combinations.delete(combinations.keys().next().value as string);
      combinations.set(id, result);
    }
    return result;
  };

  return Object.freeze({
    resolvesNames,
    candidates,
    select,
    resolve(host: string, port: string | number | undefined, protocol: string) {
      const parsed = parseHost(host);
      const number = portOf(port, protocol);
      // An unparseable host or port matches nothing, not even '*': fail closed.
      if (!parsed.ok || number === undefined) return undefined;
      return select(candidates(parsed.host, parsed.kind), number);
    },
  });
}

const COMBINATION_LIMIT = 256;

/** `host:port` as it appears in messages (IPv6 in brackets). */
export function hostPort(host: string, port: string | number | undefined, protocol: string): string {
  const parsed = parseHost(host);
  const name = parsed.ok ? parsed.host : quote(String(host));
  const number = portOf(port, protocol) ?? quote(String(port));
  return parsed.ok && parsed.kind === 'ipv6' ? `[${name}]:${number}` : `${name}:${number}`;
}
