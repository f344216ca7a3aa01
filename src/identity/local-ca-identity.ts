import { inspect } from 'node:util';
import { isSidecarlessError, SidecarlessError } from '../errors.js';
import { invalidOption } from '../internal/options.js';
import { setLongTimeout, type Timer } from '../internal/timers.js';
import type { SpiffeId } from '../spiffe/spiffe-id.js';
import { X509Bundle } from '../x509/bundle.js';
import { BundleSet } from '../x509/bundle-set.js';
import type { X509Svid } from '../x509/svid.js';
import type { Authority, IssueOptions, KeyType, LocalCaForIdentity } from './local-ca.js';
import { IdentityPublisher, validateIdentityUpdate } from './publisher.js';
import type { IdentitySource, ReadyOptions, WorkloadIdentity } from './source.js';

/**
 * Options of {@link LocalCa.identity}.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * const ours = createLocalCa({ trustDomain: 'cluster.local' });
 * const partner = createLocalCa({ trustDomain: 'partner.example' });
 * const identity = ours.identity('/ns/demo/sa/web', { ttl: 600_000, renewAt: 0.8, federatedBundles: [partner.bundle()] });
 * ```
 */
export interface LocalIdentityOptions extends IssueOptions {
  /** When to re-issue, as a fraction of the SVID's lifetime (default 0.5, as Istio). */
  readonly renewAt?: number;
  /** Bundles of other trust domains to trust as well (federation). */
  readonly federatedBundles?: readonly X509Bundle[];
}

interface Settings {
  readonly ttl: number;
  readonly keyType: KeyType;
  readonly hint: string | undefined;
  readonly renewAt: number | undefined;
  readonly federatedBundles: readonly X509Bundle[] | undefined;
}

/** Retry a failed renewal this soon, so a passing failure does not run the SVID out. */
const RETRY_DELAY = 1_000;

/** An identity served by a local CA. */
export class LocalCaIdentity implements IdentitySource {
  readonly #ca: LocalCaForIdentity;
  readonly #id: SpiffeId;
  readonly #settings: Settings;
  readonly #renewAt: number;
  readonly #federated: readonly X509Bundle[];
  readonly #publisher: IdentityPublisher;
  #svid: X509Svid | undefined;
  #authority: Authority | undefined;
  #timer: Timer | undefined;

  constructor(ca: LocalCaForIdentity, id: SpiffeId, settings: Settings) {
    const renewAt = settings.renewAt ?? 0.5;
    if (typeof renewAt !== 'number' || !(renewAt > 0 && renewAt < 1)) {
      throw invalidOption('renewAt', 'a fraction of the lifetime between 0 and 1 (exclusive)', renewAt);
    }
    const federated = settings.federatedBundles ?? [];
    if (!Array.isArray(federated) || !federated.every((b) => b instanceof X509Bundle)) {
      throw invalidOption('federatedBundles', 'a list of X509Bundles', federated);
    }
    for (const bundle of federated) {
      if (bundle.trustDomain.equals(ca.trustDomain)) {
        throw invalidOption(
          'federatedBundles',
          `bundles of other trust domains than ${ca.trustDomain.name}`,
          bundle.trustDomain.name,
        );
      }
    }
    this.#ca = ca;
    this.#id = id;
    this.#settings = settings;
    this.#renewAt = renewAt;
    this.#federated = federated;
    this.#publisher = new IdentityPublisher(() => `the local CA has not issued ${id} yet`, {
      source: `localCa ${id}`,
    });
    // The first SVID is issued here, so a CA that cannot issue fails the call that asked.
    this.#renew(true);
  }

  #bundles(): BundleSet {
    return BundleSet.of(this.#ca.bundle(), ...this.#federated);
  }

  /** The authority that signed the SVID in use, for the CA's root retirement. */
  authority(): Authority | undefined {
    return this.#authority;
  }

  /** Re-issues the SVID under the CA's active authority and publishes it. */
  renewNow(): void {
    this.#renew(false);
  }

  #renew(first: boolean): void {
    if (this.#publisher.closed) return;
    this.#timer?.cancel();
    const issuedAt = Date.now();
    try {
      const { svid, authority } = this.#ca.issueUnder(
        this.#id,
        this.#settings.ttl,
        this.#settings.keyType,
        this.#settings.hint,
      );
      const bundles = this.#bundles();
      // Checked now, not at issuedAt: an SVID clamped to a CA about to expire may already be
      // expired once issued, and must not be handed to subscribers.
      validateIdentityUpdate([svid], bundles);
      this.#svid = svid;
      this.#authority = authority;
      this.#publisher.publish([svid], bundles);
      const lifetime = svid.notAfter.getTime() - issuedAt;
      this.#timer = setLongTimeout(() => this.renewNow(), lifetime * this.#renewAt);
    } catch (err) {
      if (first) throw err;
      if (isSidecarlessError(err)) this.#publisher.error(err);
      // Keep the last good SVID while it lasts; withdraw it when it is gone.
      const svid = this.#svid;
      if (svid === undefined || svid.notAfter.getTime() <= Date.now()) {
        this.#publisher.withdraw(`renewing ${this.#id} failed: ${(err as Error).message}`);
        this.#publisher.fail(err);
      }
      this.#timer = setLongTimeout(() => this.renewNow(), RETRY_DELAY);
    }
  }

  /** Republishes the current SVID with the CA's new bundle. */
  bundleChanged(): void {
    const svid = this.#svid;
    if (this.#publisher.closed || svid === undefined) return;
    const bundles = this.#bundles();
    try {
      validateIdentityUpdate([svid], bundles);
    } catch {
      // The SVID expired (its renewal failed): republishing it would hand subscribers an invalid
      // identity. The renewal, already scheduled, publishes the next good one.
      return;
    }
    this.#publisher.publish([svid], bundles);
  }

  ready(options?: ReadyOptions): Promise<WorkloadIdentity> {
    return this.#publisher.ready(options);
  }

  current(): WorkloadIdentity {
    const identity = this.#publisher.current();
    if (identity.svid.notAfter.getTime() < Date.now()) {
      // The renewal timer is late (a blocked event loop): fail closed rather than present it.
      throw new SidecarlessError(
        'ERR_NO_IDENTITY',
        `no identity: the SVID of ${this.#id} expired before it was renewed`,
        {},
      );
    }
    return identity;
  }

  subscribe(listener: (identity: WorkloadIdentity) => void): () => void {
    return this.#publisher.subscribe(listener);
  }

  onWithdrawn(listener: (error: SidecarlessError) => void): () => void {
    return this.#publisher.onWithdrawn(listener);
  }

  async close(): Promise<void> {
    if (this.#publisher.closed) return;
    this.#timer?.cancel();
    this.#publisher.close();
    this.#authority = undefined;
    this.#ca.forget(this);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [inspect.custom](): string {
    return `LocalCaIdentity(${this.#id}, ${this.#svid === undefined ? 'no SVID' : `notAfter ${this.#svid.notAfter.toISOString()}`})`;
  }
}
