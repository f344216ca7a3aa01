import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { type TrustDomain, toTrustDomain } from '../spiffe/trust-domain.js';
import { X509Bundle } from './bundle.js';

/**
 * The bundles a workload trusts, keyed by trust domain: its own plus federated ones. A peer's
 * chain is only ever checked against the bundle of the peer's own trust domain. Immutable.
 *
 * @example
 * ```ts
 * import { BundleSet, createLocalCa } from 'sidecarless';
 * const ours = createLocalCa({ trustDomain: 'cluster.local' });
 * const partner = createLocalCa({ trustDomain: 'partner.example' });
 * const bundles = BundleSet.of(ours.bundle(), partner.bundle());
 * bundles.get('partner.example'); // partner's authorities only
 * ```
 */
export class BundleSet {
  readonly #bundles: ReadonlyMap<string, X509Bundle>;

  private constructor(bundles: ReadonlyMap<string, X509Bundle>) {
    this.#bundles = bundles;
    Object.freeze(this);
  }

  /**
   * Builds a set from bundles; two bundles for the same trust domain are an error.
   *
   * @param bundles - one bundle per trust domain
   * @throws SidecarlessError `ERR_BUNDLE_INVALID` when a trust domain appears twice
   * @example
   * ```ts
   * import { BundleSet, createLocalCa } from 'sidecarless';
   * const set = BundleSet.of(createLocalCa({ trustDomain: 'td' }).bundle());
   * ```
   */
  static of(...bundles: X509Bundle[]): BundleSet {
    const map = new Map<string, X509Bundle>();
    for (const [index, bundle] of bundles.entries()) {
      if (!(bundle instanceof X509Bundle)) {
        throw new SidecarlessError('ERR_OPTION_INVALID', `bundle ${index} must be an X509Bundle`, { index });
      }
      const name = bundle.trustDomain.name;
      if (map.has(name)) {
        throw new SidecarlessError('ERR_BUNDLE_INVALID', `two bundles for trust domain ${name}`, {
          index,
          trustDomain: name,
        });
      }
      map.set(name, bundle);
    }
    return new BundleSet(map);
  }

  /**
   * The empty set: trusts nobody.
   * @example
   * ```ts
   * import { BundleSet } from 'sidecarless';
   * BundleSet.empty().size; // 0
   * ```
   */
  static empty(): BundleSet {
    return new BundleSet(new Map());
  }

  /**
   * The bundle of a trust domain, or undefined when it is not trusted.
   * @param trustDomain - a trust domain or its name
   * @example
   * ```ts
   * import { BundleSet, createLocalCa } from 'sidecarless';
   * BundleSet.of(createLocalCa({ trustDomain: 'td' }).bundle()).get('td');
   * ```
   */
  get(trustDomain: TrustDomain | string): X509Bundle | undefined {
    return this.#bundles.get(typeof trustDomain === 'string' ? trustDomain : trustDomain.name);
  }

  /**
   * Whether the set has a bundle for the trust domain.
   * @param trustDomain - a trust domain or its name
   * @example
   * ```ts
   * import { BundleSet } from 'sidecarless';
   * BundleSet.empty().has('td'); // false
   * ```
   */
  has(trustDomain: TrustDomain | string): boolean {
    return this.get(trustDomain) !== undefined;
  }

  /**
   * A new set with `bundle` added, replacing the bundle of the same trust domain.
   * @param bundle - the bundle to add or replace
   * @example
   * ```ts
   * import { BundleSet, createLocalCa } from 'sidecarless';
   * const set = BundleSet.empty().with(createLocalCa({ trustDomain: 'td' }).bundle());
   * ```
   */
  with(bundle: X509Bundle): BundleSet {
    if (!(bundle instanceof X509Bundle)) {
      throw new SidecarlessError('ERR_OPTION_INVALID', 'bundle must be an X509Bundle', { field: 'bundle' });
    }
    const map = new Map(this.#bundles);
    map.set(bundle.trustDomain.name, bundle);
    return new BundleSet(map);
  }

  /**
   * A new set without the trust domain's bundle.
   * @param trustDomain - a trust domain or its name
   * @example
   * ```ts
   * import { BundleSet, createLocalCa } from 'sidecarless';
   * BundleSet.of(createLocalCa({ trustDomain: 'td' }).bundle()).without('td').size; // 0
   * ```
   */
  without(trustDomain: TrustDomain | string): BundleSet {
    const map = new Map(this.#bundles);
    map.delete(toTrustDomain(trustDomain).name);
    return new BundleSet(map);
  }

  /** The number of trust domains. */
  get size(): number {
    return this.#bundles.size;
  }

  /**
   * The trusted trust domains.
   * @example
   * ```ts
   * import { BundleSet, createLocalCa } from 'sidecarless';
   * BundleSet.of(createLocalCa({ trustDomain: 'td' }).bundle()).trustDomains(); // [TrustDomain(td)]
   * ```
   */
  trustDomains(): TrustDomain[] {
    return [...this.#bundles.values()].map((b) => b.trustDomain);
  }

  /**
   * The bundles, one per trust domain.
   * @example
   * ```ts
   * import { BundleSet } from 'sidecarless';
   * for (const bundle of BundleSet.empty().bundles()) console.log(bundle.trustDomain.name);
   * ```
   */
  bundles(): X509Bundle[] {
    return [...this.#bundles.values()];
  }

  /**
   * The earliest `notAfter` of any authority in any bundle; undefined when there is none.
   * @example
   * ```ts
   * import { BundleSet, createLocalCa } from 'sidecarless';
   * BundleSet.of(createLocalCa({ trustDomain: 'td' }).bundle()).earliestNotAfter();
   * ```
   */
  earliestNotAfter(): Date | undefined {
    let earliest: number | undefined;
    for (const bundle of this.#bundles.values()) {
      const t = bundle.earliestNotAfter()?.getTime();
      if (t !== undefined && (earliest === undefined || t < earliest)) earliest = t;
    }
    return earliest === undefined ? undefined : new Date(earliest);
  }

  /**
   * Whether both sets trust the same authorities for the same trust domains.
   * @param other - another set
   * @example
   * ```ts
   * import { BundleSet } from 'sidecarless';
   * BundleSet.empty().equals(BundleSet.empty()); // true
   * ```
   */
  equals(other: BundleSet): boolean {
    if (this.size !== other.size) return false;
    for (const [name, bundle] of this.#bundles) {
      const theirs = other.get(name);
      if (theirs === undefined || !bundle.equals(theirs)) return false;
    }
    return true;
  }

  /** @internal */
  [inspect.custom](): string {
    return `BundleSet(${[...this.#bundles.keys()].join(', ')})`;
  }
}
