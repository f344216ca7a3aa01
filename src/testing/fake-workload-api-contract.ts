import type { MalformedResponseKind } from './fake-workload-api-messages.js';
import type * as pub from './fake-workload-api-types.js';

// The public shape of the fake Workload API: its options, its handle, and what it counts.

/**
 * An SVID the fake serves: a workload path (`/ns/demo/sa/web`), or a path with a hint.
 * @example
 * ```ts
 * import type { FakeSvidSpec } from 'sidecarless/testing';
 * const specs: FakeSvidSpec[] = ['/ns/demo/sa/web', { path: '/ns/demo/sa/web-admin', hint: 'admin' }];
 * ```
 */
export type FakeSvidSpec = string | { readonly path: string; readonly hint?: string };

/**
 * The gRPC statuses {@link FakeWorkloadApi.fail} can answer with.
 * @example
 * ```ts
 * import type { FakeWorkloadApiStatus } from 'sidecarless/testing';
 * const status: FakeWorkloadApiStatus = 'UNIMPLEMENTED';
 * ```
 */
export type FakeWorkloadApiStatus =
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE'
  | 'INVALID_ARGUMENT'
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

/**
 * Options of {@link createFakeWorkloadApi}.
 * @example
 * ```ts
 * import { createFakeWorkloadApi } from 'sidecarless/testing';
 * const fake = await createFakeWorkloadApi({
 *   trustDomain: 'example.org',
 *   svids: ['/web', { path: '/web-admin', hint: 'admin' }],
 *   ttl: 60_000,
 *   transport: 'tcp',
 * });
 * await fake.close();
 * ```
 */
export interface FakeWorkloadApiOptions {
  /** The trust domain of the CA the fake creates (default `cluster.local`); ignored with `ca`. */
  readonly trustDomain?: string;
  /** Serve SVIDs of this CA instead (a `createLocalCa` or `createTestCa` CA); not closed by `close()`. */
  readonly ca?: pub.LocalCa;
  /** The SVIDs to serve, the default first (default: one, `/ns/default/sa/default`). */
  readonly svids?: readonly FakeSvidSpec[];
  /** Lifetime of the SVIDs it issues, in ms (default 1 hour). */
  readonly ttl?: number;
  /** `unix` (default: a socket in a new temporary directory) or `tcp` (127.0.0.1, a free port). */
  readonly transport?: 'unix' | 'tcp';
}

/**
 * Counts of what the fake received, for assertions on retries.
 * @example
 * ```ts
 * import { createFakeWorkloadApi } from 'sidecarless/testing';
 * const fake = await createFakeWorkloadApi();
 * const { FetchX509SVID, missingHeader } = fake.calls();
 * await fake.close();
 * ```
 */
export interface FakeWorkloadApiCalls {
  /** `FetchX509SVID` calls received (refused ones included). */
  readonly FetchX509SVID: number;
  /** `FetchX509Bundles` calls received (refused ones included). */
  readonly FetchX509Bundles: number;
  /** Calls refused with INVALID_ARGUMENT for lack of the `workload.spiffe.io: true` header. */
  readonly missingHeader: number;
}

/**
 * A SPIFFE Workload API server for tests: real gRPC on a unix socket (or loopback TCP), serving
 * SVIDs of a local CA on `FetchX509SVID` and bundles on `FetchX509Bundles`, as a SPIRE agent does.
 * Calls without the `workload.spiffe.io: true` header are refused with INVALID_ARGUMENT. Every
 * change is pushed at once to every open stream, as the full state.
 *
 * @example
 * ```ts
 * import { workloadApiIdentity } from 'sidecarless';
 * import { createFakeWorkloadApi } from 'sidecarless/testing';
 * await using fake = await createFakeWorkloadApi({ svids: ['/ns/demo/sa/web'] });
 * await using identity = workloadApiIdentity({ address: fake.address });
 * const before = (await identity.ready()).svid;
 * fake.rotate();                 // pushes a new SVID
 * fake.deny();                   // PERMISSION_DENIED: the identity is withdrawn
 * fake.serve();                  // back to normal: the source reconnects
 * ```
 */
export interface FakeWorkloadApi extends AsyncDisposable {
  /** The address to give `workloadApiIdentity({ address })`: `unix:///…/agent.sock` or `tcp://127.0.0.1:<port>`. */
  readonly address: string;
  /** The CA whose SVIDs are served. */
  readonly ca: pub.LocalCa;
  /** The SVIDs served now, the default first. */
  svids(): readonly pub.X509Svid[];
  /** What the fake received so far. */
  calls(): FakeWorkloadApiCalls;
  /** Streams open now. */
  openStreams(): number;
  /** Issues new SVIDs for the same paths and hints, and pushes them (and the CA's bundle). */
  rotate(): readonly pub.X509Svid[];
  /** Serves other SVIDs from now on (a removed one is a redaction) and pushes them. */
  setSvids(specs: readonly FakeSvidSpec[]): readonly pub.X509Svid[];
  /** Adds, replaces (a bundle) or removes (`null`) the federated bundle of a trust domain, and pushes. */
  setFederated(trustDomain: string, bundle: pub.X509Bundle | null): void;
  /** Ends open streams and refuses new calls with PERMISSION_DENIED, until `serve()`. */
  deny(): void;
  /** Ends open streams and refuses new calls with UNAVAILABLE, until `serve()`. */
  unavailable(): void;
  /** Ends open streams and refuses new calls with `status`, until `serve()`. */
  fail(status: FakeWorkloadApiStatus): void;
  /** Serves calls again after `deny()`, `unavailable()` or `fail()`. */
  serve(): void;
  /**
   * Sends one malformed message (see `malformedResponseKinds`) on the open streams it applies to,
   * including those whose first message is delayed; returns how many.
   */
  sendMalformed(kind: MalformedResponseKind): number;
  /** Ends every open stream normally (status OK), as an agent does on restart; returns how many. */
  endStream(): number;
  /** Delays the first message of every new stream by `ms` (0 to stop). */
  delayFirstResponse(ms: number): void;
  /** Stops the server, ends the streams, removes the socket; closes the CA it created. Idempotent. */
  close(): Promise<void>;
}
