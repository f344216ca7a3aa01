import { SidecarlessError } from '../errors.js';
import {
  publishSourceError,
  publishSourceExpiring,
  publishSourceUpdate,
  publishSourceWithdrawn,
} from '../observe/channels.js';
import type { ExpiringEvent } from '../observe/identity-events.js';
import type { BundleSet } from '../x509/bundle-set.js';
import type { X509Svid } from '../x509/svid.js';
import { verifyPeerChain } from '../x509/verify.js';
import { DEFAULT_EXPIRY_WARNING, ExpiryWatch } from './expiry-watch.js';
import type { ReadyOptions, WorkloadIdentity } from './source.js';

/**
 * How a publisher reports, besides its subscribers: the source's name for the
 * sidecarless:identity:* channels, the source's own `expiring`/`error` events, and the expiry
 * warning share.
 */
export interface PublisherReporting {
  /** The source's kind and where it reads from, as events name it. */
  readonly source: string;
  /** The source's events, when it has them (`expiring` and `error` are emitted there too). */
  readonly events?: {
    emit(event: 'expiring', value: ExpiringEvent): void;
    emit(event: 'error', error: SidecarlessError): void;
  };
  /** The share of a lifetime left when `expiring` fires (default 0.2). */
  readonly expiryWarning?: number;
  /** True for a bundle-only source: published snapshots have no SVID. */
  readonly bundlesOnly?: boolean;
}

export const DEFAULT_READY_TIMEOUT = 30_000;

/**
 * Validates a whole update before it may become current: every SVID must verify, at `now`,
 * against the bundle of its own trust domain. Throws the first failure.
 */
export function validateIdentityUpdate(
  svids: readonly X509Svid[],
  bundles: BundleSet,
  now = Date.now(),
): void {
  if (svids.length === 0) {
    throw new SidecarlessError('ERR_NO_IDENTITY', 'an identity update must hold at least one SVID', {});
  }
  for (const svid of svids) verifyPeerChain(svid.certificates, bundles, { now });
}

interface Waiter {
  resolve(identity: WorkloadIdentity): void;
  reject(err: unknown): void;
}

/**
 * The state every identity source shares: the current snapshot, its generation, subscribers,
 * `ready()` waiters and the closed flag. Sources gather and validate updates; this publishes them
 * all at once, so nothing partial is ever current.
 */
export class IdentityPublisher {
  #current: WorkloadIdentity | undefined;
  #generation = 0;
  #missing: () => string;
  #withdrawn: string | undefined;
  #closed = false;
  readonly #listeners = new Set<(identity: WorkloadIdentity) => void>();
  readonly #withdrawnListeners = new Set<(error: SidecarlessError) => void>();
  readonly #waiters = new Set<Waiter>();
  readonly #reporting: PublisherReporting;
  readonly #expiry: ExpiryWatch;

  /**
   * @param missing - describes what is missing, for `ERR_NO_IDENTITY` and `ready()` timeouts
   * @param reporting - how it reports on the identity channels and the source's events
   */
  constructor(missing: () => string, reporting: PublisherReporting = { source: 'identity source' }) {
    this.#missing = missing;
    this.#reporting = reporting;
    this.#expiry = new ExpiryWatch(reporting.expiryWarning ?? DEFAULT_EXPIRY_WARNING, (warning) => {
      if (this.#closed) return;
      const event: ExpiringEvent = Object.freeze({ source: reporting.source, ...warning });
      reporting.events?.emit('expiring', event);
      publishSourceExpiring(event);
    });
  }

  /**
   * Reports an error the source survived: the source's `error` event, the identity:error channel,
   * and, near expiry, `expiring` with `rotation-failed` (the source could not renew in time).
   */
  error(err: SidecarlessError): void {
    this.#reporting.events?.emit('error', err);
    publishSourceError(
      Object.freeze({
        source: this.#reporting.source,
        code: err.code,
        message: err.message,
        file: err.detail.file ?? null,
      }),
    );
    if (this.#current !== undefined) this.#expiry.rotationFailed();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Makes a validated update current and tells everyone. */
  publish(svids: readonly X509Svid[], bundles: BundleSet): WorkloadIdentity {
    if (this.#closed) throw new SidecarlessError('ERR_SOURCE_CLOSED', 'the identity source is closed', {});
    const identity: WorkloadIdentity = Object.freeze({
      svid: svids[0] as X509Svid,
      svids: Object.freeze([...svids]),
      bundles,
      generation: ++this.#generation,
    });
    this.#current = identity;
    this.#withdrawn = undefined;
    const svid = this.#reporting.bundlesOnly === true ? undefined : identity.svid;
    this.#expiry.arm(svid, bundles);
    publishSourceUpdate(() =>
      Object.freeze({
        source: this.#reporting.source,
        id: svid?.id.toString() ?? null,
        serial: svid?.leaf.serialNumber ?? null,
        notAfter: svid?.notAfter ?? null,
        generation: identity.generation,
        trustDomains: Object.freeze(bundles.trustDomains().map((td) => td.name)),
      }),
    );
    for (const waiter of this.#waiters) waiter.resolve(identity);
    this.#waiters.clear();
    const errors: unknown[] = [];
    for (const listener of [...this.#listeners]) {
      try {
        listener(identity);
      } catch (err) {
        errors.push(err);
      }
    }
    // A throwing subscriber is a bug in the caller: every subscriber still gets the update, then
    // the error surfaces as an uncaught exception, as it would from an EventEmitter listener.
    for (const err of errors) {
      queueMicrotask(() => {
        throw err;
      });
    }
    return identity;
  }

  /**
   * Withdraws the identity (revoked, redacted, expired): `current()` throws until the next
   * publish. `onWithdrawn` listeners hear of it once per withdrawal of a current identity.
   */
  withdraw(reason: string): void {
    const had = this.#current;
    this.#current = undefined;
    this.#withdrawn = reason;
    this.#expiry.cancel();
    if (had === undefined) return;
    const err = new SidecarlessError('ERR_NO_IDENTITY', `identity withdrawn: ${reason}`, {});
    publishSourceWithdrawn(
      Object.freeze({
        source: this.#reporting.source,
        id: this.#reporting.bundlesOnly === true ? null : had.svid.id.toString(),
        message: err.message,
      }),
    );
    for (const listener of [...this.#withdrawnListeners]) {
      try {
        listener(err);
      } catch (thrown) {
        queueMicrotask(() => {
          throw thrown;
        });
      }
    }
  }

  /** Calls `listener` whenever a current identity is withdrawn; returns the function that stops it. */
  onWithdrawn(listener: (error: SidecarlessError) => void): () => void {
    if (typeof listener !== 'function') {
      throw new SidecarlessError('ERR_OPTION_INVALID', 'onWithdrawn(listener): listener must be a function', {
        field: 'listener',
      });
    }
    const entry = (error: SidecarlessError) => listener(error);
    this.#withdrawnListeners.add(entry);
    return () => {
      this.#withdrawnListeners.delete(entry);
    };
  }

  /** Rejects pending `ready()` calls with a fatal error. */
  fail(err: unknown): void {
    for (const waiter of this.#waiters) waiter.reject(err);
    this.#waiters.clear();
  }

  peek(): WorkloadIdentity | undefined {
    return this.#current;
  }

  current(): WorkloadIdentity {
    if (this.#current !== undefined) return this.#current;
    if (this.#closed)
      throw new SidecarlessError('ERR_NO_IDENTITY', 'no identity: the identity source is closed', {});
    const why = this.#withdrawn ?? this.#missing();
    throw new SidecarlessError('ERR_NO_IDENTITY', `no identity: ${why}`, {});
  }

  subscribe(listener: (identity: WorkloadIdentity) => void): () => void {
    if (typeof listener !== 'function') {
      throw new SidecarlessError('ERR_OPTION_INVALID', 'subscribe(listener): listener must be a function', {
        field: 'listener',
      });
    }
    const entry = (identity: WorkloadIdentity) => listener(identity);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  ready(options: ReadyOptions = {}): Promise<WorkloadIdentity> {
    const timeout = options.timeout ?? DEFAULT_READY_TIMEOUT;
    if (!(Number.isFinite(timeout) && timeout >= 0)) {
      return Promise.reject(
        new SidecarlessError('ERR_OPTION_INVALID', 'option "timeout" must be a non-negative number of ms', {
          field: 'timeout',
        }),
      );
    }
    if (this.#current !== undefined) return Promise.resolve(this.#current);
    if (this.#closed) {
      return Promise.reject(new SidecarlessError('ERR_SOURCE_CLOSED', 'the identity source is closed', {}));
    }
    const { signal } = options;
    if (signal?.aborted) {
      return Promise.reject(
        new SidecarlessError(
          'ERR_ABORTED',
          'waiting for an identity was aborted',
          {},
          { cause: signal.reason },
        ),
      );
    }
    return new Promise<WorkloadIdentity>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        resolve: (identity) => {
          cleanup();
          resolve(identity);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const onAbort = () =>
        waiter.reject(
          new SidecarlessError(
            'ERR_ABORTED',
            'waiting for an identity was aborted',
            {},
            { cause: signal?.reason },
          ),
        );
      const timer = setTimeout(
        () =>
          waiter.reject(
            new SidecarlessError(
              'ERR_TIMEOUT',
              `no identity after ${timeout} ms: ${this.#withdrawn ?? this.#missing()}`,
              {},
            ),
          ),
        timeout,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#current = undefined;
    this.#expiry.cancel();
    this.fail(
      new SidecarlessError(
        'ERR_SOURCE_CLOSED',
        'the identity source was closed before it had an identity',
        {},
      ),
    );
    this.#listeners.clear();
    this.#withdrawnListeners.clear();
  }
}
