// Istio's value matching (https://istio.io/latest/docs/concepts/security/#value-matching):
// exact, "prefix*", "*suffix", and "*" for any non-empty value. Principals and namespaces use
// this string matching, not the library's SPIFFE segment matcher.
import { BlockList, isIP } from 'node:net';
import type { At } from './fields.js';

/** A compiled value test. */
export type ValueTest = (value: string) => boolean;

/**
 * Compiles one Istio string pattern. A `*` anywhere but at one end is refused: Istio has no
 * infix wildcard, so such a value would be matched literally, which no one means.
 * `lower` compiles the pattern lowercased (host matching is case-insensitive).
 */
export function stringMatch(pattern: string, at: At, lower = false): ValueTest {
  const p = lower ? pattern.toLowerCase() : pattern;
  if (p === '*') return (v) => v !== '';
  const inner = p.slice(1, -1);
  if (inner.includes('*') || p === '**') {
    throw at.invalid(
      `${JSON.stringify(pattern)} has a "*" inside it: Istio matches exact values, "prefix*", "*suffix" or "*"`,
    );
  }
  if (p.startsWith('*')) {
    const suffix = p.slice(1);
    return (v) => v.endsWith(suffix);
  }
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return (v) => v.startsWith(prefix);
  }
  return (v) => v === p;
}

/** Any of several patterns. */
export function anyOf(tests: readonly ValueTest[]): ValueTest {
  return tests.length === 1 ? (tests[0] as ValueTest) : (v) => tests.some((t) => t(v));
}

/** What Istio's "local trust domain" means in principals: the trust domain and its aliases. */
export interface TrustDomains {
  readonly trustDomain: string;
  readonly aliases: readonly string[];
}

/**
 * A `principals` value. Istio compares it with `source.principal`, the peer's SPIFFE ID without
 * `spiffe://`. A principal whose trust domain is `cluster.local`, the trust domain or one of its
 * aliases stands for all of them
 * (https://istio.io/latest/docs/tasks/security/authorization/authz-td-migration/#best-practices).
 */
export function principalMatch(pattern: string, at: At, domains: TrustDomains): ValueTest {
  if (pattern.startsWith('spiffe://')) {
    throw at.invalid(
      `${JSON.stringify(pattern)}: Istio principals are written without "spiffe://" ("cluster.local/ns/x/sa/y")`,
    );
  }
  const slash = pattern.indexOf('/');
  const td = slash === -1 ? '' : pattern.slice(0, slash);
  const local = [domains.trustDomain, ...domains.aliases];
  if (slash > 0 && !td.includes('*') && (td === 'cluster.local' || local.includes(td))) {
    const rest = pattern.slice(slash);
    return anyOf(local.map((name) => stringMatch(`${name}${rest}`, at)));
  }
  return stringMatch(pattern, at);
}

/**
 * The namespaces a principal names: Istio matches `namespaces` as `.../ns/<namespace>/...`
 * anywhere in `source.principal`, under any trust domain.
 */
export function namespacesOf(principal: string): readonly string[] {
  if (principal === '') return [];
  const segments = principal.split('/');
  const out: string[] = [];
  // segments[0] is the trust domain; a namespace segment must be followed by another one.
  for (let i = 1; i + 2 < segments.length; i++) {
    if (segments[i] === 'ns') out.push(segments[i + 1] as string);
  }
  return out;
}

/** Normalises an address: IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is the IPv4 address. */
export function normalizeAddress(address: string | null): string | null {
  if (address === null) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  return isIP(address) === 0 ? null : address.toLowerCase();
}

/** `ipBlocks` values: single addresses and CIDR ranges (Istio: exact forms only, no wildcards). */
export function ipBlocks(values: readonly string[], at: At): ValueTest {
  const list = new BlockList();
  values.forEach((value, i) => {
    const [address = '', bits, extra] = value.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
    if (family === 0 || extra !== undefined || prefix < 0 || prefix > max) {
      throw at
        .item(i)
        .invalid(`${JSON.stringify(value)} must be an IP address or a CIDR range ("10.0.0.0/8")`);
    }
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  });
  return (address) => list.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
}
