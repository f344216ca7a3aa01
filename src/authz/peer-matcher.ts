import { SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import type { Peer } from './peer.js';

/**
 * Who may be on the other end, in the forms the README lists (Authorization):
 * - an exact SPIFFE ID: `spiffe://cluster.local/ns/demo/sa/app-ui`;
 * - a SPIFFE ID with `*` for one whole path segment (`spiffe://cluster.local/ns/*\/sa/app-ui`), and a
 *   trailing `/*` or `/**` for one or more remaining segments (`spiffe://cluster.local/ns/demo/*`);
 * - `spiffe://<td>/*`: any member of that trust domain;
 * - the Istio principal form `cluster.local/ns/demo/sa/app-ui` (the literal trust domain);
 * - `'*'`: any authenticated peer of any trusted trust domain (federated included);
 * - `'unauthenticated'`: peers without a client certificate (plaintext, or TLS without one);
 * - a function `(peer) => boolean` (an exception counts as no match);
 * - a list: any of them.
 *
 * @example
 * ```ts
 * import type { PeerMatcher } from 'sidecarless';
 * const ui: PeerMatcher = 'spiffe://cluster.local/ns/demo/sa/app-ui';
 * const ops: PeerMatcher = ['spiffe://cluster.local/ns/ops/*', (peer) => peer.trustDomain?.name === 'ops.example'];
 * ```
 */
export type PeerMatcher =
  | string
  | ((peer: Peer) => boolean)
  | readonly (string | ((peer: Peer) => boolean))[];

/** A compiled matcher: a pure function of the peer, plus what it was compiled from. */
export interface CompiledPeerMatcher {
  (peer: Peer): boolean;
  /** The matcher as written, for decisions and events. */
  readonly source: string;
  /** Whether it can match a peer without a verified identity. */
  readonly matchesUnauthenticated: boolean;
  /** The trust domains its SPIFFE ID patterns name (not those a function might accept). */
  readonly trustDomains: readonly string[];
}

interface Options {
  /** `'unauthenticated'` is refused where it makes no sense (a client's `expect`). */
  readonly allowUnauthenticated?: boolean;
}

function invalid(field: string, rule: string): SidecarlessError {
  return new SidecarlessError('ERR_POLICY_INVALID', `${field}: ${rule}`, { field });
}

type Test = (peer: Peer) => boolean;

/** One string matcher, compiled. */
function compileString(
  text: string,
  field: string,
  options: Options,
): { test: Test; unauthenticated: boolean; trustDomain?: string } {
  if (text === '*') return { test: (p) => p.mtls && p.id !== null, unauthenticated: false };
  if (text === 'unauthenticated') {
    if (options.allowUnauthenticated === false) {
      throw invalid(field, '"unauthenticated" cannot be used here: a server is always authenticated');
    }
    return { test: (p) => p.id === null, unauthenticated: true };
  }
  // Istio principals are SPIFFE IDs without the scheme: "cluster.local/ns/demo/sa/app-ui".
  const pattern = text.startsWith('spiffe://')
    ? text
    : /^[a-z0-9._-]+\//.test(text)
      ? `spiffe://${text}`
      : undefined;
  if (pattern === undefined) {
    throw invalid(
      field,
      `matcher ${quote(text)} must be a SPIFFE ID ("spiffe://td/path"), an Istio principal ("td/ns/x/sa/y"), "*", "unauthenticated" or a function`,
    );
  }
  const tail = /\/\*\*?$/.exec(pattern);
  const body = tail === null ? pattern : pattern.slice(0, tail.index);
  const afterScheme = body.slice('spiffe://'.length);
  const slash = afterScheme.indexOf('/');
  const td = slash === -1 ? afterScheme : afterScheme.slice(0, slash);
  const segments = slash === -1 ? [] : afterScheme.slice(slash + 1).split('/');
  if (segments.some((s) => s !== '*' && s.includes('*')) || td.includes('*')) {
    throw invalid(
      field,
      `matcher ${quote(text)}: "*" stands for a whole path segment only (no partial or trust domain wildcards)`,
    );
  }
  // Validate as an ID, with each wildcard segment stood in for by a valid one.
  try {
    SpiffeId.fromSegments(td, ...segments.map((s) => (s === '*' ? 'x' : s)));
  } catch (err) {
    throw new SidecarlessError(
      'ERR_POLICY_INVALID',
      `${field}: matcher ${quote(text)} is not a valid SPIFFE ID pattern: ${(err as Error).message}`,
      { field },
      { cause: err },
    );
  }
  if (tail === null && segments.length === 0) {
    throw invalid(
      field,
      `matcher ${quote(text)} names a trust domain, not a workload; write "spiffe://${td}/*" for any member`,
    );
  }
  const wildcards = segments.includes('*');
  if (tail === null && !wildcards) {
    return {
      test: (p) => p.mtls && p.id !== null && p.id.toString() === pattern,
      unauthenticated: false,
      trustDomain: td,
    };
  }
  // Matchers run per request, so each compiles to one string test on the canonical ID (no empty
  // segments, no trailing "/"); p.id.segments() would allocate an array per call.
  if (!wildcards) {
    // "spiffe://td/a/*": any ID under "spiffe://td/a/", which has at least one more segment.
    const prefix = `spiffe://${td}/${segments.map((s) => `${s}/`).join('')}`;
    return {
      test: (p) => p.mtls && p.id?.toString().startsWith(prefix) === true,
      unauthenticated: false,
      trustDomain: td,
    };
  }
  const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  const source = segments.map((s) => (s === '*' ? '/[^/]+' : `/${literal(s)}`)).join('');
  const regex = new RegExp(`^spiffe://${literal(td)}${source}${tail === null ? '' : '/.+'}$`);
  return {
    test: (p) => p.mtls && p.id !== null && regex.test(p.id.toString()),
    unauthenticated: false,
    trustDomain: td,
  };
}

/**
 * Compiles a {@link PeerMatcher} once, at construction: every malformed matcher is an
 * `ERR_POLICY_INVALID` naming `field`. The result never throws: a function that throws is a
 * non-match (fail closed).
 */
export function compilePeerMatcher(spec: unknown, field: string, options: Options = {}): CompiledPeerMatcher {
  const items: unknown[] = Array.isArray(spec) ? spec : [spec];
  if (items.length === 0) throw invalid(field, 'an empty list matches nobody; give at least one matcher');
  const tests: Test[] = [];
  const sources: string[] = [];
  let unauthenticated = false;
  const trustDomains = new Set<string>();
  for (const [i, item] of items.entries()) {
    const where = Array.isArray(spec) ? `${field}[${i}]` : field;
    if (typeof item === 'function') {
      const fn = item as Test;
      tests.push((peer) => {
        try {
          return fn(peer) === true;
        } catch {
          return false;
        }
      });
      sources.push(fn.name === '' ? '<function>' : `<function ${fn.name}>`);
      unauthenticated = true;
    } else if (typeof item === 'string') {
      const compiled = compileString(item, where, options);
      tests.push(compiled.test);
      sources.push(item);
      unauthenticated ||= compiled.unauthenticated;
      if (compiled.trustDomain !== undefined) trustDomains.add(compiled.trustDomain);
    } else {
      throw invalid(
        where,
        `a matcher must be a string or a function, got ${item === null ? 'null' : typeof item}`,
      );
    }
  }
  const matcher =
    tests.length === 1
      ? (tests[0] as Test)
      : (peer: Peer) => {
          for (const test of tests) if (test(peer)) return true;
          return false;
        };
  return Object.assign((peer: Peer) => matcher(peer), {
    source: sources.length === 1 ? (sources[0] as string) : `[${sources.join(', ')}]`,
    matchesUnauthenticated: unauthenticated,
    trustDomains: Object.freeze([...trustDomains]),
  });
}
