import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';
import { TrustDomain, toTrustDomain, trustDomainNameRule } from './trust-domain.js';

/**
 * SPIFFE-ID §2.3: implementations must not accept an ID longer than 2048 bytes.
 * @example
 * ```ts
 * import { MAX_SPIFFE_ID_BYTES } from 'sidecarless';
 * console.log(`SPIFFE IDs over ${MAX_SPIFFE_ID_BYTES} bytes are refused`);
 * ```
 */
export const MAX_SPIFFE_ID_BYTES = 2048;

const SCHEME = 'spiffe://';
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;

function idError(input: string, rule: string): SidecarlessError {
  // detail.value is the same short, escaped excerpt as the message: never the raw input.
  const shown = quote(input);
  return new SidecarlessError('ERR_SPIFFE_ID_INVALID', `SPIFFE ID ${shown}: ${rule}`, { value: shown });
}

/**
 * A trust domain argument as a checked TrustDomain. Anything that is not one of ours is parsed again
 * (a name, or the `name` of a TrustDomain from another copy of the package), so a non-string cannot
 * reach an ID unchecked and gives the typed error, not a TypeError.
 */
function segmentRule(segment: string): string | undefined {
  if (segment === '') return 'path cannot contain empty segments';
  if (segment === '.' || segment === '..') return 'path cannot contain dot segments';
  if (SEGMENT_CHARS.test(segment)) return undefined;
  if (segment.includes('%')) return 'path must not be percent-encoded';
  return 'path characters are limited to letters, numbers, dots, dashes, and underscores';
}

/** The broken rule for a path (`''` or `/a/b`), or `undefined` when it is valid. */
function pathRule(path: string): string | undefined {
  if (path === '') return undefined;
  if (!path.startsWith('/')) return 'path must have a leading slash';
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '' && i === segments.length - 1) return 'path cannot have a trailing slash';
    const rule = segmentRule(segment);
    if (rule !== undefined) return rule;
  }
  return undefined;
}

/**
 * A SPIFFE ID (`spiffe://<trust domain>/<path>`): an immutable value, valid by construction,
 * exactly per the SPIFFE-ID specification. Nothing is normalised: an ID that is not already in
 * canonical form is refused.
 *
 * @example
 * ```ts
 * import { SpiffeId } from 'sidecarless';
 * const id = SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/boards');
 * id.trustDomain.name; // 'cluster.local'
 * id.path;             // '/ns/demo/sa/boards'
 * ```
 */
export class SpiffeId {
  /** The trust domain the ID belongs to. */
  readonly trustDomain: TrustDomain;
  /** The path, `''` for a trust domain's own ID, else `/seg/seg…`. */
  readonly path: string;
  readonly #text: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    this.#text = `${SCHEME}${trustDomain.name}${path}`;
    Object.freeze(this);
  }

  /**
   * Parses a SPIFFE ID, strictly.
   *
   * @param input - the ID, e.g. `spiffe://cluster.local/ns/demo/sa/boards`
   * @throws SidecarlessError `ERR_SPIFFE_ID_INVALID` naming the broken rule and showing the input
   *   (escaped, truncated, redacted)
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * SpiffeId.parse('spiffe://example.org/web').path; // '/web'
   * ```
   */
  static parse(input: string): SpiffeId {
    if (typeof input !== 'string') {
      throw new SidecarlessError('ERR_SPIFFE_ID_INVALID', `SPIFFE ID must be a string, got ${typeof input}`);
    }
    if (input === '') throw idError(input, 'SPIFFE ID is empty');
    // Bounded work for an attacker's input: refuse long strings before looking at them.
    if (input.length > MAX_SPIFFE_ID_BYTES || Buffer.byteLength(input, 'utf8') > MAX_SPIFFE_ID_BYTES) {
      throw idError(input, `SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
    }
    if (!input.startsWith(SCHEME)) {
      if (input.toLowerCase().startsWith(SCHEME)) throw idError(input, 'scheme must be lowercase "spiffe"');
      throw idError(input, 'scheme is missing or invalid: a SPIFFE ID starts with "spiffe://"');
    }
    const rest = input.slice(SCHEME.length);
    if (rest.includes('?')) throw idError(input, 'a SPIFFE ID must not have a query');
    if (rest.includes('#')) throw idError(input, 'a SPIFFE ID must not have a fragment');
    const slash = rest.indexOf('/');
    const name = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    const tdRule = trustDomainNameRule(name);
    if (tdRule !== undefined) throw idError(input, tdRule);
    const rule = pathRule(path);
    if (rule !== undefined) throw idError(input, rule);
    return new SpiffeId(TrustDomain.fromValidatedName(name), path);
  }

  /**
   * Builds an ID from a trust domain and path segments, each checked.
   *
   * @param trustDomain - a trust domain or its name
   * @param segments - the path segments, without slashes
   * @throws SidecarlessError `ERR_SPIFFE_ID_INVALID` naming the segment at fault
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * SpiffeId.fromSegments('cluster.local', 'ns', 'demo', 'sa', 'boards').toString();
   * // 'spiffe://cluster.local/ns/demo/sa/boards'
   * ```
   */
  static fromSegments(trustDomain: TrustDomain | string, ...segments: string[]): SpiffeId {
    const td = toTrustDomain(trustDomain);
    for (const [i, segment] of segments.entries()) {
      if (typeof segment !== 'string') {
        throw new SidecarlessError('ERR_SPIFFE_ID_INVALID', `path segment ${i} must be a string`, {
          index: i,
        });
      }
      const rule = segment.includes('/') ? 'a path segment cannot contain "/"' : segmentRule(segment);
      if (rule !== undefined) {
        const shown = quote(segment);
        throw new SidecarlessError('ERR_SPIFFE_ID_INVALID', `path segment ${i} ${shown}: ${rule}`, {
          value: shown,
          index: i,
        });
      }
    }
    const path = segments.length === 0 ? '' : `/${segments.join('/')}`;
    return SpiffeId.#checkedLength(new SpiffeId(td, path));
  }

  /**
   * Builds an ID from a trust domain and a path (`''` or `/a/b`).
   *
   * @param trustDomain - a trust domain or its name
   * @param path - the path, with its leading slash
   * @throws SidecarlessError `ERR_SPIFFE_ID_INVALID` naming the broken rule
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * SpiffeId.fromPath('cluster.local', '/ns/demo/sa/ui').toString(); // 'spiffe://cluster.local/ns/demo/sa/ui'
   * ```
   */
  static fromPath(trustDomain: TrustDomain | string, path: string): SpiffeId {
    const td = toTrustDomain(trustDomain);
    if (typeof path !== 'string') {
      throw new SidecarlessError('ERR_SPIFFE_ID_INVALID', `path must be a string, got ${typeof path}`);
    }
    if (path.length > MAX_SPIFFE_ID_BYTES) {
      throw idError(path, `SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
    }
    const rule = pathRule(path);
    if (rule !== undefined) {
      const shown = quote(path);
      throw new SidecarlessError('ERR_SPIFFE_ID_INVALID', `path ${shown}: ${rule}`, { value: shown });
    }
    return SpiffeId.#checkedLength(new SpiffeId(td, path));
  }

  static #checkedLength(id: SpiffeId): SpiffeId {
    if (id.#text.length > MAX_SPIFFE_ID_BYTES) {
      throw idError(id.#text, `SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
    }
    return id;
  }

  /**
   * The path segments (`['ns', 'demo', 'sa', 'boards']`); empty for a trust domain's ID.
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * SpiffeId.parse('spiffe://td/a/b').segments(); // ['a', 'b']
   * ```
   */
  segments(): string[] {
    return this.path === '' ? [] : this.path.slice(1).split('/');
  }

  /**
   * Whether the ID belongs to the trust domain.
   * @param trustDomain - a trust domain or its name
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * SpiffeId.parse('spiffe://cluster.local/x').memberOf('cluster.local'); // true
   * ```
   */
  memberOf(trustDomain: TrustDomain | string): boolean {
    return this.trustDomain.equals(trustDomain);
  }

  /**
   * Whether `other` is the same ID (exact comparison: IDs are canonical by construction).
   * @param other - an ID or its string form
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * SpiffeId.parse('spiffe://td/a').equals('spiffe://td/a'); // true
   * ```
   */
  equals(other: SpiffeId | string): boolean {
    if (typeof other === 'string') return this.#text === other;
    // Anything else that is not a SpiffeId (null, a number, a plain object) is not equal.
    const o: unknown = other;
    return typeof o === 'object' && o !== null && #text in o && this.#text === (o as SpiffeId).#text;
  }

  /**
   * The ID as a string, `spiffe://<trust domain><path>`.
   * @example
   * ```ts
   * import { SpiffeId } from 'sidecarless';
   * String(SpiffeId.parse('spiffe://td/a')); // 'spiffe://td/a'
   * ```
   */
  toString(): string {
    return this.#text;
  }

  /** JSON form: the string. */
  toJSON(): string {
    return this.#text;
  }

  /** @internal */
  [inspect.custom](): string {
    return `SpiffeId(${this.#text})`;
  }
}

/**
 * Parses a SPIFFE ID; the same as {@link SpiffeId.parse}.
 *
 * @param input - the ID
 * @throws SidecarlessError `ERR_SPIFFE_ID_INVALID` naming the broken rule
 * @example
 * ```ts
 * import { parseSpiffeId } from 'sidecarless';
 * parseSpiffeId('spiffe://cluster.local/ns/demo/sa/boards').trustDomain.name; // 'cluster.local'
 * ```
 */
export function parseSpiffeId(input: string): SpiffeId {
  return SpiffeId.parse(input);
}
