import { inspect } from 'node:util';
import type { SidecarlessError } from '../errors.js';
import { setLongTimeout, type Timer } from '../internal/timers.js';
import type { ExpiringEvent } from '../observe/identity-events.js';
import type { IdentityPublisher } from './publisher.js';
import type { WorkloadIdentity } from './source.js';

/**
 * A reconnection the Workload API sources scheduled, as the `retry` event reports it.
 * @example
 * ```ts
 * import { workloadApiIdentity, type RetryInfo } from 'sidecarless';
 * const source = workloadApiIdentity({ address: 'unix:///run/spire/sockets/agent.sock' });
 * source.on('retry', (info: RetryInfo) => console.log(`retry ${info.attempt} in ${info.delay} ms: ${info.status}`));
 * ```
 */
export interface RetryInfo {
  /** Failures in a row since the last good message, this one included (1 for the first). */
  readonly attempt: number;
  /** How long the source waits before the next call, in ms (backoff with jitter). */
  readonly delay: number;
  /** Why the stream ended: the gRPC status, e.g. `UNAVAILABLE (14): No connection established`. */
  readonly status: string;
}

/**
 * The events an identity source reports, by name, with their arguments. Payloads carry IDs,
 * serial numbers, file paths and gRPC statuses, never key material.
 *
 * - `update`: an update was accepted and is now current (as `subscribe` listeners see it).
 * - `error`: something went wrong and was survived: an update was discarded (the last good
 *   identity stays), a file could not be read, the stream failed and will be retried. The error
 *   has a stable `code`. Unlike a Node.js `EventEmitter`, an `error` without a listener does not
 *   throw: it becomes a process warning (once per distinct message), so it is never silent.
 * - `withdrawn`: the identity is no longer usable (the Workload API said PERMISSION_DENIED or
 *   removed the SVID, or it expired): `current()` throws `ERR_NO_IDENTITY` until the next
 *   update. Servers and clients close connections that use the withdrawn SVID.
 * - `retry`: the Workload API stream ended and a new call is scheduled.
 * - `expiring`: the SVID or a bundle authority has less than `expiryWarning` of its lifetime
 *   left (default 20 %), or the source failed to renew it after that ({@link ExpiringEvent}).
 *
 * @example
 * ```ts
 * import { fileIdentity, type IdentitySourceEvents } from 'sidecarless';
 * const source = fileIdentity({ preset: 'istio', dir: '/etc/certs' });
 * const onError = (...[err]: IdentitySourceEvents['error']) => console.error(err.code, err.message);
 * source.on('error', onError);
 * ```
 */
export interface IdentitySourceEvents<T = WorkloadIdentity> {
  /** An update was accepted and is current now. */
  update: [value: T];
  /** Something went wrong and was survived (a discarded update, a failed call, unreadable files). */
  error: [error: SidecarlessError];
  /** The identity was withdrawn: `current()` throws `ERR_NO_IDENTITY` until the next update. */
  withdrawn: [error: SidecarlessError];
  /** The Workload API stream ended; a new call is scheduled. */
  retry: [info: RetryInfo];
  /** The SVID or a bundle authority is near its end, or the source failed to renew it then. */
  expiring: [event: ExpiringEvent];
}

/**
 * Listening to a source's events: `on(name, listener)` returns the function that removes the
 * listener (as `subscribe` does); `off` removes it too.
 * @example
 * ```ts
 * import { workloadApiIdentity } from 'sidecarless';
 * const source = workloadApiIdentity();
 * const stop = source.on('withdrawn', (err) => console.warn('identity withdrawn:', err.message));
 * stop();
 * ```
 */
export interface ObservableSource<E extends { [K in keyof E]: unknown[] }> {
  /** Calls `listener` on every `event`; returns the function that removes it. */
  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): () => void;
  /** Removes a listener added with `on`. */
  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): void;
}

type AnyListener = (...args: unknown[]) => void;

/**
 * A small typed emitter. Not Node's EventEmitter: an `error` nobody listens to must not crash a
 * server over an update that was safely discarded, yet must not be silent either.
 */
export class SourceEvents<E extends { [K in keyof E]: unknown[] }> implements ObservableSource<E> {
  readonly #listeners = new Map<keyof E, Set<AnyListener>>();
  readonly #warned = new Set<string>();

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`on("${event}"): listener must be a function`);
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as unknown as AnyListener);
    return () => this.off(event, listener);
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): void {
    this.#listeners.get(event)?.delete(listener as unknown as AnyListener);
  }

  emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined || set.size === 0) {
      if (event === 'error') this.#warn(args[0] as SidecarlessError);
      return;
    }
    for (const listener of [...set]) {
      try {
        listener(...(args as unknown[]));
      } catch (err) {
        // A throwing listener is the caller's bug: the others still run, then it surfaces.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  #warn(err: SidecarlessError): void {
    const key = `${err.code}:${err.message}`;
    if (this.#warned.has(key)) return;
    if (this.#warned.size > 100) this.#warned.clear();
    this.#warned.add(key);
    process.emitWarning(err.message, { type: 'SidecarlessWarning', code: err.code });
  }

  clear(): void {
    this.#listeners.clear();
  }

  [inspect.custom](): string {
    return 'SourceEvents';
  }
}

/**
 * Withdraws a published identity when its default SVID expires: an agent or file writer that
 * stopped rotating must not leave an expired SVID current. Re-armed on every publish.
 */
export class ExpiryGuard {
  #timer: Timer | undefined;
  readonly #publisher: IdentityPublisher;
  readonly #onExpired: (reason: string) => void;

  constructor(publisher: IdentityPublisher, onExpired: (reason: string) => void) {
    this.#publisher = publisher;
    this.#onExpired = onExpired;
  }

  /** Arms the timer for the identity just published. */
  arm(identity: WorkloadIdentity): void {
    this.#timer?.cancel();
    const notAfter = identity.svid.notAfter.getTime();
    // Timers run on the monotonic clock and Date.now() on the wall clock: a timer may fire a
    // moment "early" by Date.now(), so it re-arms until the SVID has really expired.
    const fire = () => {
      if (this.#publisher.peek() !== identity) return;
      if (!this.check()) this.#timer = setLongTimeout(fire, Math.max(notAfter - Date.now() + 1, 1));
    };
    this.#timer = setLongTimeout(fire, notAfter - Date.now() + 1);
  }

  /** Withdraws the identity when its default SVID has expired (the timer may be late); true if it did. */
  check(): boolean {
    const identity = this.#publisher.peek();
    if (identity === undefined || this.#publisher.closed) return false;
    if (identity.svid.notAfter.getTime() >= Date.now()) return false;
    this.#timer?.cancel();
    const reason = `the X509-SVID ${identity.svid.id} expired at ${identity.svid.notAfter.toISOString()} and no newer one arrived`;
    this.#publisher.withdraw(reason);
    this.#onExpired(reason);
    return true;
  }

  cancel(): void {
    this.#timer?.cancel();
  }
}
