import { isIPv6 } from 'node:net';
import { type CompiledPeerMatcher, compilePeerMatcher, type PeerMatcher } from '../authz/peer-matcher.js';
import { SidecarlessError } from '../errors.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { quote } from '../internal/show.js';

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
 * longest matching `*.suffix`, then `'*'`. Names are compared in canonical form (case, trailing
 * dot, IPv6 brackets, IPv4 spellings, default ports 80/443), so no spelling of a URL reaches a
 * weaker key. Names are matched as written: a short name resolved through a DNS search path
 * (`boards`) is a key of its own.
 * @example
 * ```ts
 * import type { Destinations } from 'sidecarless';
 * const destinations: Destinations = {
 *   'boards.demo.svc.cluster.local:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' },
 *   '*.demo.svc.cluster.local': { expect: 'spiffe://cluster.local/ns/demo/*' },
 *   '*': { mode: 'plaintext' },
 * };
 * ```
 */
export type Destinations = Readonly<Record<string, Destination>>;

/** A destination after compilation. */
export interface ResolvedDestination {
  /** The key as written in the options. */
  readonly key: string;
  readonly mode: DestinationMode;
  /** Set for `mtls` and `auto`. */
  readonly expect: CompiledPeerMatcher | undefined;
}

/** Picks the destination of a connection. */
export interface DestinationTable {
  /**
   * The destination for a host and port, or undefined when no key matches (and no `'*'`).
   * @param host - a host name or IP address, in any spelling
   * @param port - the port; empty or undefined means the protocol's default
   * @param protocol - `'http:'` or `'https:'`, for the default port
   */
  resolve(host: string, port: string | number | undefined, protocol: string): ResolvedDestination | undefined;
}

const MODES: readonly DestinationMode[] = ['mtls', 'plaintext', 'auto'];

/**
 * The canonical form of a host: the WHATWG URL host parser (lower case, IDNA, IPv4 and IPv6
 * spellings, percent-decoding, as `fetch` does), without IPv6 brackets or trailing dots.
 * Undefined when it is not a valid host.
 */
export function canonicalHost(host: string): string | undefined {
  if (typeof host !== 'string' || host === '') return undefined;
  // Every new connection asks, usually for the same few hosts: the URL parser runs once per name.
  if (canonical.has(host)) return canonical.get(host);
  const name = parseHost(host);
  if (canonical.size >= CANONICAL_LIMIT) canonical.delete(canonical.keys().next().value as string);
  canonical.set(host, name);
  return name;
}

const canonical = new Map<string, string | undefined>();
const CANONICAL_LIMIT = 1024;

function parseHost(host: string): string | undefined {
  const bracketed = isIPv6(host) ? `[${host}]` : host;
  let parsed: string;
  try {
    const url = new URL(`http://${bracketed}/`);
    // Anything but a bare host (a port, a userinfo, a path) is not a host.
    if (url.port !== '' || url.username !== '' || url.password !== '' || url.pathname !== '/')
      return undefined;
    parsed = url.hostname;
  } catch {
    return undefined;
  }
  if (parsed.startsWith('[')) return parsed.slice(1, -1);
  // "boards." and "boards" are one DNS name (the root label); more dots cannot resolve, and
  // stripping them all keeps a strange spelling on the stronger key.
  const name = parsed.replace(/\.+$/, '');
  return name === '' ? undefined : name;
}

/** The port as a number: empty or undefined means the protocol's default. */
export function portOf(port: string | number | undefined, protocol: string): number | undefined {
  if (port === undefined || port === '') return protocol === 'https:' ? 443 : 80;
  const n = typeof port === 'number' ? port : /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  return Number.isInteger(n) && n > 0 && n <= 65_535 ? n : undefined;
}

interface ParsedKey {
  readonly kind: 'exact' | 'suffix' | 'any';
  readonly host: string;
  readonly port: number | undefined;
}

function parseKey(key: string): ParsedKey {
  const bad = (rule: string) =>
    new SidecarlessError('ERR_OPTION_INVALID', `destinations: key ${quote(key)} ${rule}`, {
      field: `destinations[${quote(key)}]`,
    });
  if (key === '*') return { kind: 'any', host: '', port: undefined };
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
    const suffix = canonicalHost(hostPart.slice(2));
    if (suffix === undefined || suffix.includes('*') || isIPv6(suffix)) {
      throw bad('must be "*.suffix" with a DNS name suffix');
    }
    return { kind: 'suffix', host: suffix, port: undefined };
  }
  if (hostPart.includes('*')) throw bad('may only use "*" as a whole first label ("*.suffix") or alone');
  const unbracketed = hostPart.startsWith('[') && hostPart.endsWith(']') ? hostPart.slice(1, -1) : hostPart;
  if (isIPv6(unbracketed) !== (unbracketed !== hostPart)) {
    throw bad('must write an IPv6 address in brackets ("[::1]:8080"), and only an IPv6 address');
  }
  const host = canonicalHost(unbracketed);
  if (host === undefined) throw bad('must be "host:port", "host", "*.suffix" or "*"');
  return { kind: 'exact', host, port };
}

function compileDestination(key: string, value: unknown): ResolvedDestination {
  const field = `destinations[${quote(key)}]`;
  const opts = checkOptions<Destination>(value, ['mode', 'expect'], field);
  const mode = opts.mode ?? 'mtls';
  if (!MODES.includes(mode)) throw invalidOption(`${field}.mode`, `one of ${MODES.join(', ')}`, mode);
  if (mode === 'plaintext') {
    if (opts.expect !== undefined) {
      throw invalidOption(
        `${field}.expect`,
        'absent in plaintext mode (no server identity is checked)',
        opts.expect,
      );
    }
    return Object.freeze({ key, mode, expect: undefined });
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
  return Object.freeze({ key, mode, expect });
}

/**
 * Compiles the destinations option once, at construction.
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a malformed key, a duplicate key (after
 *   canonicalisation), a bad mode or a missing `expect`; `ERR_POLICY_INVALID` for a malformed
 *   matcher (including `'unauthenticated'`)
 */
export function compileDestinations(spec: unknown): DestinationTable {
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
  const exact = new Map<string, ResolvedDestination>();
  const suffixes: { suffix: string; destination: ResolvedDestination }[] = [];
  let fallback: ResolvedDestination | undefined;
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
    else exact.set(parsed.port === undefined ? parsed.host : `${parsed.host}|${parsed.port}`, destination);
  }
  // Longest suffix first: the most specific wildcard wins.
  suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  return Object.freeze({
    resolve(host: string, port: string | number | undefined, protocol: string) {
      const name = canonicalHost(host);
      const number = portOf(port, protocol);
      // An unparseable host or port matches nothing, not even '*': fail closed.
      if (name === undefined || number === undefined) return undefined;
      const found = exact.get(`${name}|${number}`) ?? exact.get(name);
      if (found !== undefined) return found;
      for (const { suffix, destination } of suffixes) if (name.endsWith(suffix)) return destination;
      return fallback;
    },
  });
}

/** `host:port` as it appears in messages (IPv6 in brackets). */
export function hostPort(host: string, port: string | number | undefined, protocol: string): string {
  const name = canonicalHost(host) ?? quote(String(host));
  const number = portOf(port, protocol) ?? quote(String(port));
  return isIPv6(name) ? `[${name}]:${number}` : `${name}:${number}`;
}
