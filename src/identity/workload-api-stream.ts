import type * as grpc from '@grpc/grpc-js';
import { SidecarlessError } from '../errors.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import type { RetryInfo } from './source-events.js';
import type { WorkloadApiAddress } from './workload-api-address.js';
import type { Decoded, ResponseOf, WorkloadApiMethod } from './workload-api-proto.js';

/**
 * Reconnection backoff of the Workload API sources.
 * @example
 * ```ts
 * import { workloadApiIdentity, type RetryOptions } from 'sidecarless';
 * const retry: RetryOptions = { initialDelay: 50, maxDelay: 5_000 };
 * workloadApiIdentity({ retry });
 * ```
 */
export interface RetryOptions {
  /** The delay before the first retry, in ms (default 100). It doubles with every failure in a row. */
  readonly initialDelay?: number;
  /** The cap of the delay, in ms (default 30 000). */
  readonly maxDelay?: number;
}

/** The retry option after checking: backoff bounds in ms. */
export interface RetrySettings {
  readonly initialDelay: number;
  readonly maxDelay: number;
}

const DEFAULT_RETRY: RetrySettings = { initialDelay: 100, maxDelay: 30_000 };

/** Checks the `retry` option. */
export function retrySettings(value: unknown): RetrySettings {
  if (value === undefined) return DEFAULT_RETRY;
  const opts = checkOptions<RetryOptions>(value, ['initialDelay', 'maxDelay'], 'retry');
  const initialDelay = durationOption('retry.initialDelay', opts.initialDelay, DEFAULT_RETRY.initialDelay);
  const maxDelay = durationOption(
    'retry.maxDelay',
    opts.maxDelay,
    Math.max(DEFAULT_RETRY.maxDelay, initialDelay),
  );
  if (maxDelay < initialDelay)
    throw invalidOption('retry.maxDelay', `at least retry.initialDelay (${initialDelay})`, maxDelay);
  return { initialDelay, maxDelay };
}

/**
 * Capped exponential backoff with jitter: the base doubles from `initialDelay` with each failure
 * in a row up to `maxDelay`, and the delay is drawn from [base/2, base], so many workloads that
 * lost the same agent do not come back in step.
 *
 * @param attempt - failures in a row, from 1
 * @param random - a number in [0, 1)
 */
export function backoffDelay(attempt: number, retry: RetrySettings, random: number): number {
  const base = Math.min(retry.maxDelay, retry.initialDelay * 2 ** Math.min(Math.max(attempt, 1) - 1, 52));
  return Math.round(base / 2 + (base / 2) * random);
}

/** How a call ended. */
export interface StreamEnd {
  readonly code: number;
  /** The status name, e.g. `UNAVAILABLE`. */
  readonly name: string;
  readonly details: string;
  /** For messages: `UNAVAILABLE (14): No connection established`. */
  readonly description: string;
  /** INVALID_ARGUMENT or UNIMPLEMENTED: not retried (SPIFFE Workload Endpoint, appendix A). */
  readonly fatal: boolean;
}

/** What a stream reports to its source: each decoded message, and how the call ended. */
export interface StreamHandlers<M extends WorkloadApiMethod> {
  message(decoded: Decoded<ResponseOf[M]>): void;
  ended(end: StreamEnd): void;
  retry(info: RetryInfo): void;
}

type Grpc = typeof grpc;
type Proto = typeof import('./workload-api-proto.js');
let modules: Promise<{ grpc: Grpc; proto: Proto }> | undefined;

/** Loaded on the first connection, so importing sidecarless does not load gRPC. */
function loadModules(): Promise<{ grpc: Grpc; proto: Proto }> {
  // A CommonJS build imports CommonJS modules here: their exports may sit on `default` only.
  const named = <T extends object>(mod: T, key: string): T =>
    key in mod ? mod : ((mod as { default?: T }).default ?? mod);
  modules ??= Promise.all([import('@grpc/grpc-js'), import('./workload-api-proto.js')]).then(
    ([grpcModule, proto]) => ({ grpc: named(grpcModule, 'Client'), proto: named(proto, 'decodeResponse') }),
  );
  return modules;
}

// Our backoff decides when to call again: no gRPC-level retries, and a fresh channel per call, so
// the channel's own reconnect backoff (up to 120 s) never delays a call our backoff allows.
const CHANNEL_OPTIONS = { 'grpc.enable_retries': 0 };

/**
 * One Workload API server stream, called again after every end (stream end, UNAVAILABLE,
 * PERMISSION_DENIED, any other status) with backoff, until it is closed or the server answers
 * INVALID_ARGUMENT or UNIMPLEMENTED. @internal
 */
export class WorkloadApiStream<M extends WorkloadApiMethod> {
  readonly #address: WorkloadApiAddress;
  readonly #method: M;
  readonly #retry: RetrySettings;
  readonly #handlers: StreamHandlers<M>;
  readonly #random: () => number;
  #client: grpc.Client | undefined;
  #call: grpc.ClientReadableStream<Decoded<ResponseOf[M]>> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #calls = 0;
  #lastEnd: StreamEnd | undefined;
  #closed = false;

  constructor(
    address: WorkloadApiAddress,
    method: M,
    retry: RetrySettings,
    handlers: StreamHandlers<M>,
    random: () => number = Math.random,
  ) {
    this.#address = address;
    this.#method = method;
    this.#retry = retry;
    this.#handlers = handlers;
    this.#random = random;
  }

  /** Calls made so far. */
  get calls(): number {
    return this.#calls;
  }

  /** How the last call ended, if one did. */
  get lastEnd(): StreamEnd | undefined {
    return this.#lastEnd;
  }

  start(): void {
    void this.#connect();
  }

  /** A good message arrived: the next failure starts the backoff from the beginning. */
  markGood(): void {
    this.#failures = 0;
  }

  async #connect(): Promise<void> {
    let loaded: { grpc: Grpc; proto: Proto };
    try {
      loaded = await loadModules();
    } catch (err) {
      // A broken install: nothing to retry.
      this.#handlers.ended({
        code: -1,
        name: 'LOAD_FAILED',
        details: 'could not load @grpc/grpc-js',
        description: `could not load @grpc/grpc-js: ${(err as Error).message}`,
        fatal: true,
      });
      return;
    }
    if (this.#closed) return;
    const { grpc: g, proto } = loaded;
    this.#calls++;
    const method = this.#method;
    const client = new g.Client(this.#address.target, g.credentials.createInsecure(), CHANNEL_OPTIONS);
    const metadata = new g.Metadata();
    metadata.set(proto.SECURITY_HEADER, 'true');
    const call = client.makeServerStreamRequest(
      proto.METHOD_PATHS[method],
      () => proto.encodeRequest(method),
      (bytes: Buffer) => proto.decodeResponse(method, bytes),
      {},
      metadata,
    );
    this.#client = client;
    this.#call = call;
    call.on('data', (decoded: Decoded<ResponseOf[M]>) => {
      if (!this.#closed && this.#call === call) this.#handlers.message(decoded);
    });
    // Every failure also arrives as the 'status' event; without a listener 'error' would throw.
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => {
      client.close();
      if (this.#call !== call || this.#closed) return;
      this.#call = undefined;
      this.#client = undefined;
      this.#ended(g, status);
    });
  }

  #ended(g: Grpc, status: grpc.StatusObject): void {
    const name = g.status[status.code] ?? `code ${status.code}`;
    const fatal = status.code === g.status.INVALID_ARGUMENT || status.code === g.status.UNIMPLEMENTED;
    const details = status.code === g.status.OK ? 'the server ended the stream' : status.details;
    const end: StreamEnd = {
      code: status.code,
      name,
      details,
      description: `${name} (${status.code}): ${details}`,
      fatal,
    };
    this.#lastEnd = end;
    this.#handlers.ended(end);
    if (fatal || this.#closed) return;
    this.#failures++;
    const delay = backoffDelay(this.#failures, this.#retry, this.#random());
    this.#handlers.retry({ attempt: this.#failures, delay, status: end.description });
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, delay);
    this.#timer.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#call?.cancel();
    this.#client?.close();
    this.#call = undefined;
    this.#client = undefined;
  }
}

/** The error a fatal end becomes. */
export function fatalError(address: string, method: WorkloadApiMethod, end: StreamEnd): SidecarlessError {
  return new SidecarlessError(
    'ERR_WORKLOAD_API_FAILED',
    `the Workload API at ${address} refused ${method} with ${end.description}; not retried (SPIFFE Workload Endpoint §6)`,
    { field: 'address', value: address },
  );
}
