import { inspect } from 'node:util';
import { isSidecarlessError, SidecarlessError } from '../errors.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { expiryWarningOption } from './expiry-watch.js';
import { IdentityPublisher } from './publisher.js';
import type { IdentitySource, ReadyOptions, WorkloadIdentity } from './source.js';
import {
  ExpiryGuard,
  type IdentitySourceEvents,
  type ObservableSource,
  SourceEvents,
} from './source-events.js';
import { parseWorkloadApiAddress, SPIFFE_ENDPOINT_SOCKET } from './workload-api-address.js';
import type { X509SvidResponseMessage } from './workload-api-proto.js';
import { describePick, parseX509SvidResponse, pickSvid, type SvidPick } from './workload-api-response.js';
import { readyError, streamError } from './workload-api-status.js';
import {
  fatalError,
  type RetryOptions,
  retrySettings,
  type StreamEnd,
  WorkloadApiStream,
} from './workload-api-stream.js';

/**
 * Options of {@link workloadApiIdentity}.
 * @example
 * ```ts
 * import { workloadApiIdentity } from 'sidecarless';
 * const source = workloadApiIdentity({
 *   address: 'unix:///run/spire/sockets/agent.sock',
 *   pick: { hint: 'internal' },
 *   retry: { initialDelay: 100, maxDelay: 10_000 },
 * });
 * ```
 */
export interface WorkloadApiIdentityOptions {
  /** `unix:///abs/path` or `tcp://<IP>:<port>`; default: the `SPIFFE_ENDPOINT_SOCKET` environment variable. */
  readonly address?: string;
  /** Which SVID to present when the workload gets several: by hint or SPIFFE ID (default: the first). */
  readonly pick?: SvidPick;
  /** Reconnection backoff. */
  readonly retry?: RetryOptions;
  /**
   * Warn (the `expiring` event, the `sidecarless:identity:expiring` channel) when the SVID or
   * a bundle authority has less than this share of its lifetime left (default 0.2: 20 %).
   */
  readonly expiryWarning?: number;
}

/**
 * An identity source that also reports what it survived: discarded messages, stream failures,
 * reconnections and withdrawals (see {@link IdentitySourceEvents}).
 * @example
 * ```ts
 * import { workloadApiIdentity, type ObservedIdentitySource } from 'sidecarless';
 * const source: ObservedIdentitySource = workloadApiIdentity();
 * source.on('error', (err) => console.warn(err.code, err.message));
 * ```
 */
export interface ObservedIdentitySource extends IdentitySource, ObservableSource<IdentitySourceEvents> {}

const KNOWN: (keyof WorkloadApiIdentityOptions)[] = ['address', 'pick', 'retry', 'expiryWarning'];
const MESSAGE = 'X509SVIDResponse';

function pickOption(value: unknown): SvidPick | undefined {
  if (value === undefined) return undefined;
  const expected = '{ hint: string } or { id: SPIFFE ID }';
  if (typeof value !== 'object' || value === null) throw invalidOption('pick', expected, value);
  const keys = Object.keys(value);
  const { hint, id } = value as { hint?: unknown; id?: unknown };
  if (keys.length === 1 && typeof hint === 'string' && hint !== '') return Object.freeze({ hint });
  if (keys.length === 1 && (typeof id === 'string' || id instanceof SpiffeId)) {
    // Parsed now: a misspelt ID must fail here, not wait forever for an SVID that never comes.
    return Object.freeze({ id: id instanceof SpiffeId ? id : SpiffeId.parse(id) });
  }
  throw invalidOption('pick', expected, value);
}

/** The identity source on FetchX509SVID. */
export class WorkloadApiIdentity implements ObservedIdentitySource {
  readonly #address: string;
  readonly #pick: SvidPick | undefined;
  readonly #publisher: IdentityPublisher;
  readonly #events = new SourceEvents<IdentitySourceEvents>();
  readonly #expiry: ExpiryGuard;
  readonly #stream: WorkloadApiStream<'FetchX509SVID'>;
  #lastInvalid: SidecarlessError | undefined;
  #lastProblem: 'invalid' | 'end' | undefined;
  #withdrawn: string | undefined;
  #fatal: SidecarlessError | undefined;

  constructor(options: WorkloadApiIdentityOptions, random?: () => number) {
    const opts = checkOptions<WorkloadApiIdentityOptions>(options, KNOWN, 'workloadApiIdentity');
    const address = parseWorkloadApiAddress(opts.address ?? process.env[SPIFFE_ENDPOINT_SOCKET]);
    this.#pick = pickOption(opts.pick);
    const retry = retrySettings(opts.retry);
    this.#address = address.address;
    this.#publisher = new IdentityPublisher(() => this.#missing(), {
      source: `workloadApiIdentity ${this.#address}`,
      events: this.#events,
      expiryWarning: expiryWarningOption(opts.expiryWarning),
    });
    this.#expiry = new ExpiryGuard(this.#publisher, (reason) => this.#withdraw(reason));
    this.#stream = new WorkloadApiStream(
      address,
      'FetchX509SVID',
      retry,
      {
        message: (decoded) => {
          if ('undecodable' in decoded) {
            this.#discard(
              new SidecarlessError(
                'ERR_WORKLOAD_API_RESPONSE_INVALID',
                `Workload API ${MESSAGE} discarded: not a valid protobuf message (${decoded.undecodable})`,
                {},
              ),
            );
          } else {
            this.#accept(decoded.message);
          }
        },
        ended: (end) => this.#ended(end),
        retry: (info) => this.#events.emit('retry', info),
      },
      random,
    );
    this.#stream.start();
  }

  #missing(): string {
    return `no valid X509-SVID from the Workload API at ${this.#address} yet`;
  }

  #discard(err: SidecarlessError): void {
    this.#lastInvalid = err;
    this.#lastProblem = 'invalid';
    this.#publisher.error(err);
  }

  #accept(message: X509SvidResponseMessage): void {
    let parsed: ReturnType<typeof parseX509SvidResponse>;
    try {
      parsed = parseX509SvidResponse(message);
    } catch (err) {
      if (!isSidecarlessError(err)) throw err;
      this.#discard(err);
      return;
    }
    // A well-formed message: the agent is healthy, whatever it says about our pick.
    this.#stream.markGood();
    this.#lastInvalid = undefined;
    this.#lastProblem = undefined;
    const ordered = pickSvid(parsed.svids, this.#pick);
    if (ordered === undefined) {
      const pick = describePick(this.#pick as SvidPick);
      const ids = parsed.svids.map((s) => `${s.id}${s.hint === undefined ? '' : ` (hint ${s.hint})`}`);
      const reason = `the Workload API does not send ${pick} (it sends ${ids.join(', ')})`;
      // Workload API §5.2.1: an SVID left out of a later message is redacted; stop using it.
      if (this.#publisher.peek() !== undefined) this.#withdraw(reason);
      this.#discard(new SidecarlessError('ERR_NO_IDENTITY', reason, {}));
      return;
    }
    const identity = this.#publisher.publish(ordered, parsed.bundles);
    this.#withdrawn = undefined;
    this.#expiry.arm(identity);
    this.#events.emit('update', identity);
  }

  #withdraw(reason: string): void {
    this.#withdrawn = reason;
    this.#publisher.withdraw(reason);
    this.#events.emit(
      'withdrawn',
      new SidecarlessError('ERR_NO_IDENTITY', `identity withdrawn: ${reason}`, {}),
    );
  }

  #ended(end: StreamEnd): void {
    if (this.#publisher.closed) return;
    this.#lastProblem = 'end';
    if (end.fatal) {
      this.#fatal = fatalError(this.#address, 'FetchX509SVID', end);
      this.#publisher.error(this.#fatal);
      this.#publisher.fail(this.#fatal);
      return;
    }
    if (end.name === 'PERMISSION_DENIED' && this.#publisher.peek() !== undefined) {
      // SPIFFE Workload API §5.2.1: PERMISSION_DENIED redacts every SVID served so far.
      this.#withdraw(`the Workload API at ${this.#address} answered ${end.description}`);
    }
    // Workload API §4.2: the server may end a stream at any time; that alone is no error (the
    // retry event still reports it).
    if (end.code !== 0) this.#publisher.error(streamError(this.#address, 'FetchX509SVID', end));
  }

  async ready(options: ReadyOptions = {}): Promise<WorkloadIdentity> {
    if (this.#fatal !== undefined && this.#publisher.peek() === undefined) throw this.#fatal;
    try {
      return await this.#publisher.ready(options);
    } catch (err) {
      if (!isSidecarlessError(err, 'ERR_TIMEOUT')) throw err;
      throw readyError({
        what: 'X509-SVID',
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

  current(): WorkloadIdentity {
    this.#expiry.check();
    return this.#publisher.current();
  }

  subscribe(listener: (identity: WorkloadIdentity) => void): () => void {
    return this.#publisher.subscribe(listener);
  }

  onWithdrawn(listener: (error: SidecarlessError) => void): () => void {
    return this.#publisher.onWithdrawn(listener);
  }

  on<K extends keyof IdentitySourceEvents & string>(
    event: K,
    listener: (...args: IdentitySourceEvents[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  off<K extends keyof IdentitySourceEvents & string>(
    event: K,
    listener: (...args: IdentitySourceEvents[K]) => void,
  ): void {
    this.#events.off(event, listener);
  }

  async close(): Promise<void> {
    if (this.#publisher.closed) return;
    this.#stream.close();
    this.#expiry.cancel();
    this.#publisher.close();
    this.#events.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [inspect.custom](): string {
    const identity = this.#publisher.peek();
    const state =
      identity === undefined ? 'no identity' : `${identity.svid.id}, generation ${identity.generation}`;
    return `WorkloadApiIdentity(${this.#address}, ${state})`;
  }
}

/**
 * An identity source on the SPIFFE Workload API (a SPIRE agent, or any agent that serves it):
 * streams X509-SVIDs and bundles over gRPC (`FetchX509SVID`) and rotates as the agent pushes.
 *
 * - The address is checked before anything else (SPIFFE Workload Endpoint §4).
 * - Each message is the full state. It is validated whole (every SVID per the X509-SVID profile,
 *   `spiffe_id` equal to the URI SAN, key matching, chain verifying to its trust domain's bundle;
 *   federated bundles keyed `spiffe://<td>`, never our own trust domain). A bad message is
 *   discarded and reported as an `error` event; the last good identity stays.
 * - The stream is called again after it ends or fails, with capped exponential backoff and jitter,
 *   reset by a good message; INVALID_ARGUMENT and UNIMPLEMENTED are not retried.
 * - PERMISSION_DENIED after an identity was served withdraws it (the spec's redaction), as does a
 *   message without the picked SVID, or the SVID's expiry: `current()` throws `ERR_NO_IDENTITY`
 *   and `withdrawn` is emitted, until a new SVID arrives.
 * - CRLs in responses are not enforced.
 *
 * @param options - address, pick, retry
 * @throws SidecarlessError `ERR_WORKLOAD_API_ADDRESS_INVALID` for a missing or malformed address,
 *   `ERR_OPTION_INVALID` for a bad option. `ready()` rejects with `ERR_WORKLOAD_API_FAILED`
 *   (not retried), or at its timeout with `ERR_WORKLOAD_API_UNAVAILABLE` (the last gRPC status),
 *   `ERR_WORKLOAD_API_RESPONSE_INVALID` (the last message was discarded) or `ERR_TIMEOUT`.
 * @example
 * ```ts
 * import { workloadApiIdentity } from 'sidecarless';
 * // SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/sockets/agent.sock
 * const identity = workloadApiIdentity();
 * identity.on('error', (err) => console.warn(err.code, err.message));
 * const { svid } = await identity.ready({ timeout: 10_000 });
 * console.log(`running as ${svid.id}`);
 * identity.subscribe(({ svid }) => console.log(`rotated: ${svid.leaf.serialNumber}`));
 * ```
 */
export function workloadApiIdentity(options: WorkloadApiIdentityOptions = {}): ObservedIdentitySource {
  return new WorkloadApiIdentity(options);
}
