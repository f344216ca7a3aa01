import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';

/**
 * SPIFFE-ID §2.1: a trust domain name is at most 255 bytes.
 * @example
 * ```ts
 * import { MAX_TRUST_DOMAIN_BYTES } from 'sidecarless';
 * console.log(`trust domains over ${MAX_TRUST_DOMAIN_BYTES} bytes are refused`);
 * ```
 */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME = 'spiffe://';
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;

function tdError(input: string, rule: string): SidecarlessError {
  // detail.value is the same short, escaped excerpt as the message: never the raw input.
  const shown = quote(input);
  return new SidecarlessError('ERR_TRUST_DOMAIN_INVALID', `trust domain ${shown}: ${rule}`, { value: shown });
}

/**
 * Returns the broken rule for a trust domain name, or `undefined` when the name is valid.
 * Shared by {@link TrustDomain.parse} and the SPIFFE ID parser so both give the same words.
 */
export function trustDomainNameRule(name: string): string | undefined {
  if (name.length === 0) return 'trust domain is missing';
  if (name.length > MAX_TRUST_DOMAIN_BYTES) {
    return `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes (${name.length})`;
  }
  if (TRUST_DOMAIN_CHARS.test(name)) return undefined;
  if (name.includes('@')) return 'trust domain must not include userinfo ("user@")';
  if (name.includes(':')) return 'trust domain must not include a port';
  if (name.includes('%')) return 'trust domain must not be percent-encoded';
  if (/[A-Z]/.test(name)) {
    return 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores (uppercase is an error, not normalised)';
  }
  return 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
}

/**
 * A SPIFFE trust domain, such as `cluster.local`: an immutable value, valid by construction.
 *
 * @example
 * ```ts
 * import { TrustDomain } from 'sidecarless';
 * const td = TrustDomain.parse('cluster.local');
 * td.idString(); // 'spiffe://cluster.local'
 * ```
 */
export class TrustDomain {
  /** The trust domain name, e.g. `cluster.local`. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
    Object.freeze(this);
  }

  /**
   * Parses a trust domain name (`cluster.local`) or a trust domain's SPIFFE ID
   * (`spiffe://cluster.local`, without a path).
   *
   * @param input - the name or trust domain ID
   * @throws SidecarlessError `ERR_TRUST_DOMAIN_INVALID` naming the broken rule
   * @example
   * ```ts
   * import { TrustDomain } from 'sidecarless';
   * TrustDomain.parse('spiffe://example.org').name; // 'example.org'
   * ```
   */
  static parse(input: string): TrustDomain {
    if (typeof input !== 'string') {
      throw new SidecarlessError(
        'ERR_TRUST_DOMAIN_INVALID',
        `trust domain must be a string, got ${typeof input}`,
        {},
      );
    }
    let name = input;
    if (input.startsWith(SCHEME)) {
      name = input.slice(SCHEME.length);
      if (name.includes('/')) {
        throw tdError(input, 'a trust domain has no path (use SpiffeId.parse for a workload ID)');
      }
    } else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(input)) {
      throw tdError(input, 'scheme must be "spiffe://" (lowercase) when a trust domain is written as an ID');
    }
    const rule = trustDomainNameRule(name);
    if (rule !== undefined) throw tdError(input, rule);
    return new TrustDomain(name);
  }

  /** @internal Builds from a name already checked by `trustDomainNameRule`. */
  static fromValidatedName(name: string): TrustDomain {
    return new TrustDomain(name);
  }

  /**
   * The trust domain's SPIFFE ID as a string, `spiffe://<name>`.
   * @example
   * ```ts
   * import { TrustDomain } from 'sidecarless';
   * TrustDomain.parse('cluster.local').idString(); // 'spiffe://cluster.local'
   * ```
   */
  idString(): string {
    return `${SCHEME}${this.name}`;
  }

  /**
   * Whether `other` is the same trust domain.
   * @param other - a trust domain or a name
   * @example
   * ```ts
   * import { TrustDomain } from 'sidecarless';
   * TrustDomain.parse('a.org').equals('a.org'); // true
   * ```
   */
  equals(other: TrustDomain | string): boolean {
    if (typeof other === 'string') return this.name === other;
    // Compares by name so a TrustDomain from another copy of the package works; null, a number or
    // an object without a name is not equal (rather than a TypeError).
    const name: unknown = typeof other === 'object' && other !== null ? other.name : undefined;
    return typeof name === 'string' && this.name === name;
  }

  /**
   * The trust domain name.
   * @example
   * ```ts
   * import { TrustDomain } from 'sidecarless';
   * `${TrustDomain.parse('a.org')}`; // 'a.org'
   * ```
   */
  toString(): string {
    return this.name;
  }

  /** JSON form: the name. */
  toJSON(): string {
    return this.name;
  }

  /** @internal */
  [inspect.custom](): string {
    return `TrustDomain(${this.name})`;
  }
}

/**
 * A trust domain from what callers pass: a `TrustDomain`, a name, or a `TrustDomain` of another
 * copy of the package (checked again from its name). Anything else is refused with
 * `ERR_TRUST_DOMAIN_INVALID` naming the field.
 */
export function toTrustDomain(value: unknown, field = 'trustDomain'): TrustDomain {
  if (value instanceof TrustDomain) return value;
  if (typeof value === 'string') return TrustDomain.parse(value);
  const name = typeof value === 'object' && value !== null ? (value as { name?: unknown }).name : undefined;
  if (typeof name === 'string') return TrustDomain.parse(name);
  throw new SidecarlessError(
    'ERR_TRUST_DOMAIN_INVALID',
    `${field} must be a trust domain name or a TrustDomain, got ${value === null ? 'null' : typeof value}`,
    { field },
  );
}
