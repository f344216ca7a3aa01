import type { SidecarlessError } from '../errors.js';
import type { BundleSet } from '../x509/bundle-set.js';
import type { X509Svid } from '../x509/svid.js';

/**
 * A snapshot of what a workload is: its SVIDs and the bundles it trusts. Immutable; every
 * accepted update produces a new snapshot with a higher `generation`.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * const { svid, bundles, generation } = await createLocalCa({ trustDomain: 'td' }).identity('/web').ready();
 * console.log(svid.id.toString(), bundles.size, generation);
 * ```
 */
export interface WorkloadIdentity {
  /** The default SVID: the one the workload presents (the first one the Workload API sends). */
  readonly svid: X509Svid;
  /** Every SVID the workload holds, the default first. */
  readonly svids: readonly X509Svid[];
  /** The trusted bundles, keyed by trust domain: own plus federated. */
  readonly bundles: BundleSet;
  /** Increases by one with every accepted update, starting at 1. */
  readonly generation: number;
}

/**
 * Options of `ready()`.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * const source = createLocalCa({ trustDomain: 'td' }).identity('/web');
 * await source.ready({ timeout: 5_000, signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface ReadyOptions {
  /** How long to wait, in ms (default 30 000). */
  readonly timeout?: number;
  /** Stops waiting when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * Where the workload's SVID and bundles come from, and how they rotate. Every source validates
 * an update completely before it becomes current (leaf profile, key matches certificate, chain
 * verifies to the bundle of its trust domain, not expired); a bad update is reported and the last
 * good identity stays. Nothing partial is ever current.
 *
 * @example
 * ```ts
 * import { createLocalCa, type IdentitySource } from 'sidecarless';
 * const source: IdentitySource = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/web');
 * const { svid } = await source.ready();
 * const stop = source.subscribe((identity) => console.log('rotated to', identity.svid.notAfter));
 * const stopWatching = source.onWithdrawn?.((err) => console.warn(err.message));
 * stop();
 * stopWatching?.();
 * await source.close();
 * ```
 */
export interface IdentitySource extends AsyncDisposable {
  /**
   * Resolves with the first valid identity; rejects with a typed error naming what is missing
   * after the timeout (30 s by default), on abort, or on a fatal error.
   */
  ready(options?: ReadyOptions): Promise<WorkloadIdentity>;
  /** The current identity; throws `ERR_NO_IDENTITY` when there is none (consumers fail closed). */
  current(): WorkloadIdentity;
  /** Calls `listener` with every accepted update; returns the function that unsubscribes. */
  subscribe(listener: (identity: WorkloadIdentity) => void): () => void;
  /**
   * Calls `listener` when the identity is withdrawn (revoked, redacted by the Workload API,
   * expired without renewal): from then on `current()` throws `ERR_NO_IDENTITY` until the next
   * update. Returns the function that stops listening. Optional, so that sources written for
   * the four methods above keep working: servers and clients then notice a withdrawal only at the
   * next handshake or request, and warn once. Every built-in source implements it.
   */
  onWithdrawn?(listener: (error: SidecarlessError) => void): () => void;
  /** Releases sockets, watchers and timers. Idempotent. */
  close(): Promise<void>;
}

/**
 * The smaller interface for code that only verifies peers: bundles, without an SVID.
 *
 * @example
 * ```ts
 * import type { BundleSource } from 'sidecarless';
 * function trustedDomains(source: BundleSource): string[] {
 *   return source.current().trustDomains().map((td) => td.name);
 * }
 * ```
 */
export interface BundleSource extends AsyncDisposable {
  /** Resolves with the first valid bundle set. */
  ready(options?: ReadyOptions): Promise<BundleSet>;
  /** The current bundles; throws `ERR_NO_IDENTITY` when there are none yet. */
  current(): BundleSet;
  /** Calls `listener` with every accepted update; returns the function that unsubscribes. */
  subscribe(listener: (bundles: BundleSet) => void): () => void;
  /** Releases resources. Idempotent. */
  close(): Promise<void>;
}
