import { inspect } from 'node:util';
import { isSidecarlessError, SidecarlessError } from '../errors.js';
import { checkOptions } from '../internal/options.js';
import type { BundleSet } from '../x509/bundle-set.js';
import { expiryWarningOption } from './expiry-watch.js';
import { IdentityPublisher } from './publisher.js';
import type { BundleSource, ReadyOptions } from './source.js';
import { type IdentitySourceEvents, type ObservableSource, SourceEvents } from './source-events.js';
import { parseWorkloadApiAddress, SPIFFE_ENDPOINT_SOCKET } from './workload-api-address.js';
import { parseX509BundlesResponse } from './workload-api-response.js';
import { readyError, streamError } from './workload-api-status.js';
import {
  fatalError,
  type RetryOptions,
  retrySettings,
  type StreamEnd,
  WorkloadApiStream,
} from './workload-api-stream.js';

/**
 * Options of {@link workloadApiBundles}.
 * @example
 * ```ts
 * import { workloadApiBundles } from 'sidecarless';
 * const bundles = workloadApiBundles({ address: 'tcp://127.0.0.1:8081', retry: { maxDelay: 5_000 } });
 * ```
 */
export interface WorkloadApiBundlesOptions {
  /** `unix:///abs/path` or `tcp://<IP>:<port>`; default: the `SPIFFE_ENDPOINT_SOCKET` environment variable. */
  readonly address?: string;
  /** Reconnection backoff. */
  readonly retry?: RetryOptions;
  /**
   * Warn (the `expiring` event, the `sidecarless:identity:expiring` channel) when a bundle
   * authority has less than this share of its lifetime left (default 0.2: 20 %).
   */
  readonly expiryWarning?: number;
}

/**
 * A bundle source that also reports what it survived (see {@link IdentitySourceEvents}; its
 * `update` event carries the new `BundleSet`).
 * @example
 * ```ts
 * import { workloadApiBundles, type ObservedBundleSource } from 'sidecarless';
 * const source: ObservedBundleSource = workloadApiBundles();
 * source.on('update', (bundles) => console.log(`${bundles.size} trust domains`));
 * ```
 */
export interface ObservedBundleSource
  extends BundleSource,
    ObservableSource<IdentitySourceEvents<BundleSet>> {}

/** The bundle-only source on FetchX509Bundles. */
class WorkloadApiBundles implements ObservedBundleSource {
  readonly #address: string;
  // The identity publisher, holding snapshots without SVIDs: the same ready/subscribe/withdraw
  // semantics as the identity sources, without a second implementation of them.
  readonly #publisher: IdentityPublisher;
  readonly #events = new SourceEvents<IdentitySourceEvents<BundleSet>>();
  readonly #stream: WorkloadApiStream<'FetchX509Bundles'>;
  #lastInvalid: SidecarlessError | undefined;
  #lastProblem: 'invalid' | 'end' | undefined;
  #withdrawn: string | undefined;
  #fatal: SidecarlessError | undefined;

  constructor(options: WorkloadApiBundlesOptions) {
    const opts = checkOptions<WorkloadApiBundlesOptions>(
      options,
      ['address', 'retry', 'expiryWarning'],
      'workloadApiBundles',
    );
    const address = parseWorkloadApiAddress(opts.address ?? process.env[SPIFFE_ENDPOINT_SOCKET]);
    this.#address = address.address;
    this.#publisher = new IdentityPublisher(
      () => `no valid bundles from the Workload API at ${this.#address} yet`,
      {
        source: `workloadApiBundles ${this.#address}`,
        events: this.#events,
        expiryWarning: expiryWarningOption(opts.expiryWarning),
        bundlesOnly: true,
      },
    );
    this.#stream = new WorkloadApiStream(address, 'FetchX509Bundles', retrySettings(opts.retry), {
      message: (decoded) => {
        try {
          if ('undecodable' in decoded) {
            throw new SidecarlessError(
              'ERR_WORKLOAD_API_RESPONSE_INVALID',
              `Workload API X509BundlesResponse discarded: not a valid protobuf message (${decoded.undecodable})`,
              {},
            );
          }
          this.#accept(parseX509BundlesResponse(decoded.message));
        } catch (err) {
          if (!isSidecarlessError(err)) throw err;
          this.#lastInvalid = err;
          this.#lastProblem = 'invalid';
          this.#publisher.error(err);
        }
      },
      ended: (end) => this.#ended(end),
      retry: (info) => this.#events.emit('retry', info),
    });
    this.#stream.start();
  }

  #accept(bundles: BundleSet): void {
    this.#stream.markGood();
    this.#lastInvalid = undefined;
    this.#lastProblem = undefined;
    this.#withdrawn = undefined;
    this.#publisher.publish([], bundles);
    this.#events.emit('update', bundles);
  }

  #ended(end: StreamEnd): void {
    if (this.#publisher.closed) return;
    this.#lastProblem = 'end';
    if (end.fatal) {
      this.#fatal = fatalError(this.#address, 'FetchX509Bundles', end);
      this.#publisher.error(this.#fatal);
      this.#publisher.fail(this.#fatal);
      return;
    }
    if (end.name === 'PERMISSION_DENIED' && this.#publisher.peek() !== undefined) {
      // SPIFFE Workload API §5.2.2: PERMISSION_DENIED redacts every bundle served so far.
      this.#withdrawn = `the Workload API at ${this.#address} answered ${end.description}`;
      this.#publisher.withdraw(this.#withdrawn);
      this.#events.emit(
        'withdrawn',
        new SidecarlessError('ERR_NO_IDENTITY', `bundles withdrawn: ${this.#withdrawn}`, {}),
      );
    }
    // Workload API §4.2: the server may end a stream at any time; that alone is no error (the
    // retry event still reports it).
    if (end.code !== 0) this.#publisher.error(streamError(this.#address, 'FetchX509Bundles', end));
  }

  async ready(options: ReadyOptions = {}): Promise<BundleSet> {
    if (this.#fatal !== undefined && this.#publisher.peek() === undefined) throw this.#fatal;
    try {
      return (await this.#publisher.ready(options)).bundles;
    } catch (err) {
      if (!isSidecarlessError(err, 'ERR_TIMEOUT')) throw err;
      throw readyError({
        what: 'X.509 bundles',
        address: this.#address,
        timeout: options.timeout,
        calls: this.#stream.calls,
        lastEnd: this.#stream.lastEnd,
        lastInvalid: this.#lastInvalid,
        lastProblem: this.#lastProblem,
        withdrawn: this.#withdrawn,
      });
    }
  }

  current(): BundleSet {
    return this.#publisher.current().bundles;
  }

  subscribe(listener: (bundles: BundleSet) => void): () => void {
    if (typeof listener !== 'function') return this.#publisher.subscribe(listener);
    return this.#publisher.subscribe((snapshot) => listener(snapshot.bundles));
  }

  on<K extends keyof IdentitySourceEvents<BundleSet> & string>(
    event: K,
    listener: (...args: IdentitySourceEvents<BundleSet>[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  off<K extends keyof IdentitySourceEvents<BundleSet> & string>(
    event: K,
    listener: (...args: IdentitySourceEvents<BundleSet>[K]) => void,
  ): void {
    this.#events.off(event, listener);
  }

  async close(): Promise<void> {
    if (this.#publisher.closed) return;
    this.#stream.close();
    this.#publisher.close();
    this.#events.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [inspect.custom](): string {
    const snapshot = this.#publisher.peek();
    const state = snapshot === undefined ? 'no bundles' : inspect(snapshot.bundles);
    return `WorkloadApiBundles(${this.#address}, ${state})`;
  }
}

/**
 * A bundle source on the SPIFFE Workload API (`FetchX509Bundles`), for code that verifies peers
 * but presents no SVID. Each message is the full set of bundles, keyed by trust domain; a bad
 * message is discarded whole and reported (`error` event), the last good set stays. The stream
 * is called again with backoff as in {@link workloadApiIdentity}; PERMISSION_DENIED after
 * bundles were served withdraws them (`current()` throws `ERR_NO_IDENTITY`: verify nothing).
 * CRLs in responses are not enforced.
 *
 * @param options - address, retry
 * @throws SidecarlessError `ERR_WORKLOAD_API_ADDRESS_INVALID`, `ERR_OPTION_INVALID`; `ready()`
 *   rejects as {@link workloadApiIdentity}'s does
 * @example
 * ```ts
 * import { verifyPeerChain, workloadApiBundles, type X509Svid } from 'sidecarless';
 * const bundles = workloadApiBundles({ address: 'unix:///run/spire/sockets/agent.sock' });
 * await bundles.ready();
 * function check(peer: X509Svid) {
 *   return verifyPeerChain(peer.certificates, bundles.current()).id;
 * }
 * ```
 */
export function workloadApiBundles(options: WorkloadApiBundlesOptions = {}): ObservedBundleSource {
  return new WorkloadApiBundles(options);
}
