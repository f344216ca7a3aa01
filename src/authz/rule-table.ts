import { isSidecarlessError, SidecarlessError } from '../errors.js';
import { nodeHttp } from '../internal/builtins.js';
import { quote } from '../internal/show.js';
import { normalizePath } from './normalize.js';
import type { Peer } from './peer.js';
import { type CompiledPeerMatcher, compilePeerMatcher } from './peer-matcher.js';

/** What part of the path space a key covers. */
export type RouteKind = 'exact' | 'prefix' | 'default';

/** One compiled key of an authorization map. */
export interface Rule {
  /** The key as written. */
  readonly key: string;
  /** The method it is limited to, or `null` for any method. */
  readonly method: string | null;
  readonly kind: RouteKind;
  /** The path it covers, lowercased: the exact path, or the prefix without its `/*`; `null` for `*`. */
  readonly path: string | null;
  readonly matcher: CompiledPeerMatcher;
}

/** The rules of one path (or prefix): per method, and for any method. */
interface Slot {
  any: Rule | null;
  methods: Map<string, Rule> | null;
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(nodeHttp.METHODS);

function keyError(map: string, key: string, rule: string): SidecarlessError {
  return new SidecarlessError('ERR_POLICY_INVALID', `${map} key ${quote(key)}: ${rule}`, { field: key });
}

/** Parses `[METHOD ]path-pattern` into what it covers; every malformed key throws, naming it. */
function parseKey(map: string, key: string): Pick<Rule, 'method' | 'kind' | 'path'> {
  if (key === '') throw keyError(map, key, 'a key must not be empty; write "*" for the default rule');
  if (key !== key.trim() || /\s/.test(key.replace(' ', ''))) {
    throw keyError(map, key, 'a key is "[METHOD ]path": one space after the method, no other whitespace');
  }
  let method: string | null = null;
  let pattern = key;
  const space = key.indexOf(' ');
  if (space !== -1) {
    method = key.slice(0, space);
    pattern = key.slice(space + 1);
    if (!KNOWN_METHODS.has(method)) {
      const upper = method.toUpperCase();
      throw keyError(
        map,
        key,
        KNOWN_METHODS.has(upper)
          ? `methods are written in uppercase: write ${quote(`${upper} ${pattern}`)}`
          : `${quote(method)} is not an HTTP method Node.js accepts (see http.METHODS)`,
      );
    }
  }
  if (pattern === '*') return { method, kind: 'default', path: null };
  if (!pattern.startsWith('/')) {
    throw keyError(map, key, 'the path must start with "/" (or be "*" for the default rule)');
  }
  if (pattern.includes('?')) throw keyError(map, key, 'a key matches paths; it has no query');
  const prefix = pattern.endsWith('/*');
  const base = prefix ? pattern.slice(0, -2) : pattern;
  if (prefix && base === '') {
    throw keyError(map, key, '"/*" would cover every path; write "*" for the default rule');
  }
  if (base.includes('*')) {
    throw keyError(
      map,
      key,
      '"*" may only end a prefix pattern, as in "/prefix/*" (a literal star is "%2A")',
    );
  }
  if (base.length > 1 && base.endsWith('/')) {
    throw keyError(
      map,
      key,
      prefix
        ? 'a prefix pattern is "/prefix/*", without an empty segment before the "*"'
        : `an exact key has no trailing "/": ${quote(base.slice(0, -1))} also covers ${quote(base)}`,
    );
  }
  // A router's parameter (Express "/orders/:id") would be matched as the literal text ":id" and
  // deny every real path: refused, with what the map means instead. A ":" inside a segment
  // ("/v1/things:batchGet") is an ordinary path character.
  const param = base.split('/').find((segment) => segment.startsWith(':'));
  if (param !== undefined) {
    const at = base.indexOf(`/${param}`);
    throw keyError(
      map,
      key,
      `${quote(param)} looks like a router parameter; keys have no parameters: write the prefix ${quote(`${base.slice(0, at)}/*`)} for every ${quote(param.slice(1))}`,
    );
  }
  // Characters that cannot appear unencoded in a request path (RFC 3986): likely a pattern syntax.
  const odd = /[[\]{}|^\\]/.exec(base);
  if (odd !== null) {
    throw keyError(
      map,
      key,
      `${odd[0] === '\\' ? 'a backslash' : quote(odd[0])} cannot appear unencoded in a request path; keys are literal paths with an optional trailing "/*" (no globs, braces or regular expressions)`,
    );
  }
  const normal = normalizePath(base);
  if (typeof normal !== 'string') throw keyError(map, key, `not a valid request path: ${normal.problem}`);
  const lower = base.toLowerCase();
  if (normal.toLowerCase() !== lower) {
    // Keys are written as the requests they match are seen: after normalisation.
    throw keyError(map, key, `the path is not in normal form; write ${quote(normal + (prefix ? '/*' : ''))}`);
  }
  return { method, kind: prefix ? 'prefix' : 'exact', path: lower };
}

function segmentCount(path: string): number {
  let n = 0;
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) n++;
  return n;
}

const KIND_RANK: Record<RouteKind, number> = { exact: 0, prefix: 1, default: 2 };

/** Code-unit order: the same listing on every machine, whatever its locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Most specific first: exact, then longer prefixes, then the default; method-specific first. */
function bySpecificity(a: Rule, b: Rule): number {
  return (
    KIND_RANK[a.kind] - KIND_RANK[b.kind] ||
    segmentCount(b.path ?? '') - segmentCount(a.path ?? '') ||
    compare(a.path ?? '', b.path ?? '') ||
    (a.method === null ? 1 : 0) - (b.method === null ? 1 : 0) ||
    compare(a.method ?? '', b.method ?? '')
  );
}

/**
 * One authorization map, compiled: exact paths in a Map, prefixes in a Map found by walking up the
 * request path's segments (never deeper than the deepest prefix key), methods resolved per key.
 */
export class RuleTable {
  /** Every rule, most specific first. */
  readonly rules: readonly Rule[];
  readonly #exact = new Map<string, Slot>();
  readonly #prefix = new Map<string, Slot>();
  readonly #fallback: Slot = { any: null, methods: null };
  /** Segments of the deepest prefix key: the walk up a request path starts there. */
  readonly #depth: number;
  /** `#levels[n]`: some prefix key has n segments (the walk skips the other depths). */
  readonly #levels: readonly boolean[];
  /** The first segment (`/svc`) of every prefix key: a path starting elsewhere skips the walk. */
  readonly #heads = new Set<string>();
  /**
   * `#exactLengths[n]` / `#prefixLengths[n]`: some key's path is n characters long. Checked before
   * slicing and hashing a candidate: a Map lookup with a new string is most of a decision's cost.
   */
  readonly #exactLengths: Uint8Array;
  readonly #prefixLengths: Uint8Array;

  /**
   * @param map - which map this is (`authorize`, `deny`), for messages
   * @param entries - the map's keys and matchers
   * @throws SidecarlessError `ERR_POLICY_INVALID` naming the key (`detail.field`)
   */
  constructor(map: string, entries: readonly (readonly [string, unknown])[]) {
    const rules: Rule[] = [];
    const seen = new Map<string, string>();
    let depth = 0;
    for (const [key, spec] of entries) {
      const route = parseKey(map, key);
      const identity = `${route.method ?? '*'} ${route.kind} ${route.path ?? ''}`;
      const earlier = seen.get(identity);
      if (earlier !== undefined) {
        throw keyError(
          map,
          key,
          `it names the same route as ${quote(earlier)} (keys are case-insensitive, as routers are)`,
        );
      }
      seen.set(identity, key);
      let matcher: CompiledPeerMatcher;
      try {
        matcher = compilePeerMatcher(spec, key);
      } catch (err) {
        if (!isSidecarlessError(err)) throw err;
        // detail.field is the key itself; a list item's position goes in detail.index.
        const item = /\[(\d+)\]$/.exec(err.detail.field ?? '');
        const detail = item === null ? { field: key } : { field: key, index: Number(item[1]) };
        throw new SidecarlessError(err.code, `${map}: ${err.message}`, detail);
      }
      const rule: Rule = Object.freeze({ key, ...route, matcher });
      rules.push(rule);
      const slot = this.#slotFor(rule);
      if (rule.method === null) {
        slot.any = rule;
      } else {
        slot.methods ??= new Map();
        slot.methods.set(rule.method, rule);
      }
      if (rule.kind === 'prefix') {
        const path = rule.path as string;
        depth = Math.max(depth, segmentCount(path));
        const slash = path.indexOf('/', 1);
        this.#heads.add(slash === -1 ? path : path.slice(0, slash));
      }
    }
    this.#depth = depth;
    const levels = Array.from({ length: depth + 1 }, () => false);
    for (const rule of rules) if (rule.kind === 'prefix') levels[segmentCount(rule.path as string)] = true;
    this.#levels = levels;
    this.#exactLengths = lengthsOf(rules, 'exact');
    this.#prefixLengths = lengthsOf(rules, 'prefix');
    this.rules = Object.freeze(rules.sort(bySpecificity));
    Object.freeze(this);
  }

  #slotFor(rule: Rule): Slot {
    if (rule.kind === 'default') return this.#fallback;
    const slots = rule.kind === 'exact' ? this.#exact : this.#prefix;
    let slot = slots.get(rule.path as string);
    if (slot === undefined) {
      slot = { any: null, methods: null };
      slots.set(rule.path as string, slot);
    }
    return slot;
  }

  /**
   * The one rule that decides a request: the most specific path, then the most specific method.
   * @param method - uppercased
   * @param path - normalised and lowercased
   */
  decide(method: string, path: string): Rule | undefined {
    return this.#walk(method, path, undefined);
  }

  /**
   * The most specific rule among all that cover the request and match the peer (a deny map: any
   * matching rule denies, not only the most specific one).
   */
  firstMatch(method: string, path: string, peer: Peer): Rule | undefined {
    return this.#walk(method, path, peer);
  }

  /** Without a peer, the first rule covering the request; with one, the first that also matches it. */
  #walk(method: string, path: string, peer: Peer | undefined): Rule | undefined {
    // An exact key also covers its path with a trailing "/", as lenient routers do.
    const p = path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path;
    if (this.#exactLengths[p.length] === 1) {
      const slot = this.#exact.get(p);
      const rule = slot === undefined ? undefined : pick(slot, method, peer);
      if (rule !== undefined) return rule;
    }
    if (this.#depth > 0 && p.length > 1) {
      // A prefix "/a/*" covers "/a" and "/a/" too, so the walk starts with the path itself (or its
      // first #depth segments: no key is deeper) and goes up one segment at a time.
      const first = p.indexOf('/', 1);
      if (this.#heads.has(first === -1 ? p : p.slice(0, first))) {
        let level = 0;
        let end = 0;
        while (level < this.#depth) {
          level++;
          const next = p.indexOf('/', end + 1);
          if (next === -1) {
            end = p.length;
            break;
          }
          end = next;
        }
        for (; level > 0; level--) {
          if (this.#levels[level] === true && this.#prefixLengths[end] === 1) {
            const slot = this.#prefix.get(end === p.length ? p : p.slice(0, end));
            const rule = slot === undefined ? undefined : pick(slot, method, peer);
            if (rule !== undefined) return rule;
          }
          end = p.lastIndexOf('/', end - 1);
        }
      }
    }
    return pick(this.#fallback, method, peer);
  }
}

function lengthsOf(rules: readonly Rule[], kind: RouteKind): Uint8Array {
  const paths = rules.filter((r) => r.kind === kind).map((r) => r.path as string);
  const lengths = new Uint8Array(paths.reduce((max, path) => Math.max(max, path.length), 0) + 1);
  for (const path of paths) lengths[path.length] = 1;
  return lengths;
}

/**
 * The rule of a slot for a method: the method's own, then GET's for HEAD (Express answers HEAD
 * with the GET handler, so GET's rules bind HEAD too), then the any-method rule. With a peer, each
 * candidate must also match it, and every candidate is tried.
 */
function pick(slot: Slot, method: string, peer: Peer | undefined): Rule | undefined {
  if (slot.methods !== null) {
    const own = slot.methods.get(method);
    if (own !== undefined && (peer === undefined || own.matcher(peer))) return own;
    if (method === 'HEAD') {
      const get = slot.methods.get('GET');
      if (get !== undefined && (peer === undefined || get.matcher(peer))) return get;
    }
  }
  const any = slot.any;
  if (any !== null && (peer === undefined || any.matcher(peer))) return any;
  return undefined;
}
