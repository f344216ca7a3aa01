// Host names and IP literals as destinations see them: one canonical spelling per host, the IPv4
// address inside an IPv6 one, and the addresses that reach this host.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** What a canonical host is. */
export type HostKind = 'name' | 'ipv4' | 'ipv6';

/**
 * IPv6 addresses that carry an IPv4 address in their last 32 bits, each with the prefix (its first
 * six 16-bit groups) and where it is defined. A mapped address is the IPv4 address itself (a
 * dual-stack socket to it is an IPv4 connection), so it is rewritten to it; the others reach the
 * IPv4 host through a translator (SIIT, NAT64) or a tunnel, so a key on the IPv4 address applies
 * to them too.
 */
export const EMBEDDED_IPV4_FORMS = Object.freeze([
  { form: 'ipv4-mapped', prefix: [0, 0, 0, 0, 0, 0xffff], spec: 'RFC 4291 §2.5.5.2', rewritten: true },
  { form: 'ipv4-compatible', prefix: [0, 0, 0, 0, 0, 0], spec: 'RFC 4291 §2.5.5.1', rewritten: false },
  { form: 'ipv4-translated', prefix: [0, 0, 0, 0, 0xffff, 0], spec: 'RFC 2765 §2.1', rewritten: false },
  { form: 'nat64', prefix: [0x64, 0xff9b, 0, 0, 0, 0], spec: 'RFC 6052 §2.1', rewritten: false },
] as const);

/**
 * The addresses that reach this host whatever service listens there: a key on any of them
 * applies to all of them (fail closed), since a server bound to `0.0.0.0` or `::` answers on every
 * one. The host's own interface addresses are not included: they change at run time and are
 * reached from other hosts too.
 */
export const THIS_HOST_RANGES = Object.freeze([
  { form: 'loopback-v4', address: '127.0.0.0', prefix: 8, family: 'ipv4', spec: 'RFC 1122 §3.2.1.3' },
  { form: 'loopback-v6', address: '::1', prefix: 128, family: 'ipv6', spec: 'RFC 4291 §2.5.3' },
  { form: 'unspecified-v4', address: '0.0.0.0', prefix: 8, family: 'ipv4', spec: 'RFC 1122 §3.2.1.3' },
  { form: 'unspecified-v6', address: '::', prefix: 128, family: 'ipv6', spec: 'RFC 4291 §2.5.2' },
] as const);

const thisHost = new BlockList();
for (const range of THIS_HOST_RANGES) thisHost.addSubnet(range.address, range.prefix, range.family);

const thisHostCache = new Map<string, boolean>();

/**
 * Whether a canonical IP address reaches this host (loopback or unspecified). Cached, bounded:
 * every new connection asks, and a BlockList check costs about 20 µs.
 */
export function isThisHost(host: string, kind: HostKind): boolean {
  if (kind === 'name') return false;
  const key = `${kind}\0${host}`;
  let answer = thisHostCache.get(key);
  if (answer === undefined) {
    answer = thisHost.check(host, kind);
    if (thisHostCache.size >= CACHE_LIMIT) thisHostCache.delete(thisHostCache.keys().next().value as string);
    thisHostCache.set(key, answer);
  }
  return answer;
}

/** A host in canonical form, or the rule it breaks. */
export type ParsedHost =
  | { readonly ok: true; readonly host: string; readonly kind: HostKind }
  | { readonly ok: false; readonly rule: string };

/**
 * The canonical form of a host, for keys and requests alike: the WHATWG URL host parser (lower
 * case, IDNA, IPv4 shorthand and hex, percent-decoding, as `fetch` does), IPv6 in RFC 5952 form
 * (the URL serialisation) without brackets, an IPv4-mapped IPv6 address as its IPv4 address, and
 * a name without trailing dots. Undefined when it is not a host a destination can be chosen for.
 */
export function canonicalHost(host: string): string | undefined {
  const parsed = parseHost(host);
  return parsed.ok ? parsed.host : undefined;
}

/** As {@link canonicalHost}, with the kind of host or the rule it breaks. Cached, bounded. */
export function parseHost(host: string): ParsedHost {
  if (typeof host !== 'string' || host === '') return INVALID;
  // Every new connection asks, usually for the same few hosts: the URL parser runs once per name.
  const cached = cache.get(host);
  if (cached !== undefined) return cached;
  const parsed = parseUncached(host);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(host, parsed);
  return parsed;
}

const cache = new Map<string, ParsedHost>();
const CACHE_LIMIT = 1024;
const INVALID: ParsedHost = Object.freeze({ ok: false, rule: 'must be a host name or an IP address' });
const ZONE: ParsedHost = Object.freeze({
  ok: false,
  rule: 'must not have an IPv6 zone id ("%eth0"): a zone id names a network interface, not a host, so no key can say which server that is',
});

function parseUncached(written: string): ParsedHost {
  // "[::1]", as a URL writes it, is the address inside.
  const host = written.startsWith('[') && written.endsWith(']') ? written.slice(1, -1) : written;
  // "fe80::1%eth0" (Node's form) and "fe80::1%25eth0" (RFC 6874's URL form).
  if (host.includes(':') && host.includes('%')) return ZONE;
  // A colon only appears in an IPv6 address: "boards:80" is a host and a port, not a host.
  if (host.includes(':') && !isIPv6(host)) return INVALID;
  let parsed: string;
  try {
    const url = new URL(`http://${isIPv6(host) ? `[${host}]` : host}/`);
    // Anything but a bare host (a port, a userinfo, a path) is not a host.
    if (url.port !== '' || url.username !== '' || url.password !== '' || url.pathname !== '/') return INVALID;
    parsed = url.hostname;
  } catch {
    return INVALID;
  }
  if (parsed.startsWith('[')) {
    const address = parsed.slice(1, -1);
    const embedded = embeddedIpv4(address);
    if (embedded !== undefined && embedded.form === 'ipv4-mapped') {
      return Object.freeze({ ok: true, host: embedded.ipv4, kind: 'ipv4' });
    }
    return Object.freeze({ ok: true, host: address, kind: 'ipv6' });
  }
  if (isIPv4(parsed)) return Object.freeze({ ok: true, host: parsed, kind: 'ipv4' });
  // "boards." and "boards" are one DNS name (the root label); more dots cannot resolve, and
  // stripping them all keeps a strange spelling on the stronger key.
  const name = parsed.replace(/\.+$/, '');
  return name === '' ? INVALID : Object.freeze({ ok: true, host: name, kind: 'name' });
}

/** The eight 16-bit groups of an IPv6 address as the URL parser writes it (hex only, one "::" at most). */
function groupsOf(address: string): number[] {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const left = head === '' || head === undefined ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(zeros).fill('0'), ...right].map((g) => Number.parseInt(g, 16));
}

/** The IPv4 address an IPv6 address carries, with its form; undefined for other addresses. */
export function embeddedIpv4(address: string): { readonly ipv4: string; readonly form: string } | undefined {
  const groups = groupsOf(address);
  if (groups.length !== 8) return undefined;
  for (const { form, prefix } of EMBEDDED_IPV4_FORMS) {
    if (!prefix.every((g, i) => groups[i] === g)) continue;
    const high = groups[6] as number;
    const low = groups[7] as number;
    // "::" and "::1" are the unspecified and loopback addresses, not IPv4-compatible ones.
    if (form === 'ipv4-compatible' && high === 0 && low <= 1) return undefined;
    return { ipv4: `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`, form };
  }
  return undefined;
}

/** The port as a number: empty or undefined means the protocol's default. */
export function portOf(port: string | number | undefined, protocol: string): number | undefined {
  if (port === undefined || port === '') return protocol === 'https:' ? 443 : 80;
  const n = typeof port === 'number' ? port : /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  return Number.isInteger(n) && n > 0 && n <= 65_535 ? n : undefined;
}
