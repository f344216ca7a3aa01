import { rmSync } from 'node:fs';
import { inspect } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { SidecarlessError } from '../errors.js';
import { createLocalCa, type LocalCa as LocalCaImpl, localCaInternals } from '../identity/local-ca.js';
import { type ResponseOf, SECURITY_HEADER, type WorkloadApiMethod } from '../identity/workload-api-proto.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import { quote } from '../internal/show.js';
import { TrustDomain } from '../spiffe/trust-domain.js';
import { X509Bundle } from '../x509/bundle.js';
import type { X509Svid } from '../x509/svid.js';
import { buildBadSvid } from './bad-svid.js';
import type { BadSvidKind } from './bad-svid-kinds.js';
import type {
  FakeSvidSpec,
  FakeWorkloadApi,
  FakeWorkloadApiCalls,
  FakeWorkloadApiOptions,
  FakeWorkloadApiStatus,
} from './fake-workload-api-contract.js';
import { listen, STATUS_CODES } from './fake-workload-api-grpc.js';
import {
  derOf,
  type FakeState,
  goodResponse,
  type MalformedResponseKind,
  malformedBundlesResponse,
  malformedResponseKinds,
  malformedSvidResponse,
} from './fake-workload-api-messages.js';
import type * as pub from './fake-workload-api-types.js';

export type {
  FakeSvidSpec,
  FakeWorkloadApi,
  FakeWorkloadApiCalls,
  FakeWorkloadApiOptions,
  FakeWorkloadApiStatus,
} from './fake-workload-api-contract.js';

interface OpenStream {
  readonly method: WorkloadApiMethod;
  readonly call: grpc.ServerWritableStream<object, unknown>;
  started: boolean;
  timer?: NodeJS.Timeout;
}

interface Served {
  readonly path: string;
  readonly hint: string | undefined;
  svid: X509Svid;
}

function specOf(spec: unknown, index: number): { path: string; hint: string | undefined } {
  if (typeof spec === 'string') return { path: spec, hint: undefined };
  if (typeof spec === 'object' && spec !== null && typeof (spec as { path?: unknown }).path === 'string') {
    const { path, hint } = spec as { path: string; hint?: unknown };
    if (hint !== undefined && typeof hint !== 'string')
      throw invalidOption(`svids[${index}].hint`, 'a string', hint);
    return { path, hint };
  }
  throw invalidOption(`svids[${index}]`, 'a workload path or { path, hint }', spec);
}

class Fake implements FakeWorkloadApi {
  readonly address: string;
  readonly ca: pub.LocalCa;
  readonly #server: grpc.Server;
  readonly #ownsCa: boolean;
  readonly #dir: string | undefined;
  readonly #ttl: number;
  readonly #streams = new Set<OpenStream>();
  readonly #federated = new Map<string, X509Bundle>();
  readonly #calls = { FetchX509SVID: 0, FetchX509Bundles: 0, missingHeader: 0 };
  #served: Served[] = [];
  #failure: FakeWorkloadApiStatus | undefined;
  #delay = 0;
  #closed = false;

  constructor(
    server: grpc.Server,
    address: string,
    dir: string | undefined,
    ca: pub.LocalCa,
    ownsCa: boolean,
    ttl: number,
  ) {
    this.#server = server;
    this.address = address;
    this.#dir = dir;
    this.ca = ca;
    this.#ownsCa = ownsCa;
    this.#ttl = ttl;
  }

  #issue(path: string, hint?: string): X509Svid {
    return (this.ca as LocalCaImpl).issue(path, { ttl: this.#ttl, ...(hint === undefined ? {} : { hint }) });
  }

  serveSpecs(specs: readonly FakeSvidSpec[]): void {
    if (!Array.isArray(specs) || specs.length === 0) {
      throw invalidOption('svids', 'a non-empty list of workload paths', specs);
    }
    this.#served = specs.map((spec, i) => {
      const { path, hint } = specOf(spec, i);
      return { path, hint, svid: this.#issue(path, hint) };
    });
  }

  #state(): FakeState {
    const ca = this.ca as LocalCaImpl;
    return {
      svids: this.#served.map((s) => s.svid),
      bundle: ca.bundle(),
      federated: Object.fromEntries([...this.#federated].map(([td, b]) => [`spiffe://${td}`, derOf(b)])),
      issue: (path) => this.#issue(path),
      bad: (kind: BadSvidKind, path: string) => {
        const maybeTest = ca as LocalCaImpl & {
          issueBad?: (k: BadSvidKind, p: string) => ReturnType<typeof buildBadSvid>;
        };
        return maybeTest.issueBad !== undefined
          ? maybeTest.issueBad(kind, path)
          : buildBadSvid(ca, kind, path);
      },
    };
  }

  #response(method: WorkloadApiMethod): ResponseOf[WorkloadApiMethod] {
    return goodResponse(method, this.#state());
  }

  /** Handles one call of a method. */
  handle(method: WorkloadApiMethod, call: grpc.ServerWritableStream<object, unknown>): void {
    this.#calls[method]++;
    const header = call.metadata.get(SECURITY_HEADER);
    if (header.length !== 1 || header[0] !== 'true') {
      // SPIFFE Workload Endpoint §6: a request without the security header is InvalidArgument.
      this.#calls.missingHeader++;
      call.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: `security header missing from request: "${SECURITY_HEADER}: true"`,
      });
      return;
    }
    if (this.#failure !== undefined || this.#closed) {
      const failure = this.#failure ?? 'UNAVAILABLE';
      call.emit('error', { code: STATUS_CODES[failure], details: `fake Workload API: ${failure}` });
      return;
    }
    const stream: OpenStream = { method, call, started: false };
    this.#streams.add(stream);
    call.on('cancelled', () => this.#forget(stream));
    const start = () => {
      stream.started = true;
      this.#write(stream, this.#response(method));
    };
    if (this.#delay > 0) {
      stream.timer = setTimeout(start, this.#delay);
    } else {
      start();
    }
  }

  #forget(stream: OpenStream): void {
    clearTimeout(stream.timer);
    this.#streams.delete(stream);
  }

  #write(stream: OpenStream, value: unknown): void {
    if (!stream.call.cancelled) stream.call.write(value);
  }

  #push(): void {
    for (const stream of this.#streams) {
      if (stream.started) this.#write(stream, this.#response(stream.method));
    }
  }

  #end(status: grpc.status | 'OK'): number {
    const streams = [...this.#streams];
    for (const stream of streams) {
      this.#forget(stream);
      if (status === 'OK') stream.call.end();
      else stream.call.emit('error', { code: status, details: `fake Workload API: ${grpc.status[status]}` });
    }
    return streams.length;
  }

  svids(): readonly pub.X509Svid[] {
    return Object.freeze(this.#served.map((s) => s.svid));
  }

  calls(): FakeWorkloadApiCalls {
    return Object.freeze({ ...this.#calls });
  }

  openStreams(): number {
    return this.#streams.size;
  }

  rotate(): readonly pub.X509Svid[] {
    for (const served of this.#served) served.svid = this.#issue(served.path, served.hint);
    this.#push();
    return this.svids();
  }

  setSvids(specs: readonly FakeSvidSpec[]): readonly pub.X509Svid[] {
    this.serveSpecs(specs);
    this.#push();
    return this.svids();
  }

  setFederated(trustDomain: string, bundle: pub.X509Bundle | null): void {
    const td = TrustDomain.parse(trustDomain);
    if (bundle === null) {
      this.#federated.delete(td.name);
    } else {
      if (!(bundle instanceof X509Bundle)) throw invalidOption('bundle', 'an X509Bundle or null', bundle);
      this.#federated.set(td.name, bundle);
    }
    this.#push();
  }

  deny(): void {
    this.fail('PERMISSION_DENIED');
  }

  unavailable(): void {
    this.fail('UNAVAILABLE');
  }

  fail(status: FakeWorkloadApiStatus): void {
    if (!Object.hasOwn(STATUS_CODES, status)) {
      throw invalidOption('status', `one of ${Object.keys(STATUS_CODES).join(', ')}`, status);
    }
    this.#failure = status;
    this.#end(STATUS_CODES[status]);
  }

  serve(): void {
    this.#failure = undefined;
  }

  sendMalformed(kind: MalformedResponseKind): number {
    const entry = malformedResponseKinds[kind];
    if (entry === undefined) {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `unknown malformed response kind ${quote(String(kind))} (see malformedResponseKinds)`,
        { field: 'kind' },
      );
    }
    const state = this.#state();
    let sent = 0;
    for (const stream of this.#streams) {
      // Streams whose first message is delayed get it too: a client may see a bad message first.
      if (entry.stream !== 'both' && entry.stream !== stream.method) continue;
      this.#write(
        stream,
        stream.method === 'FetchX509SVID'
          ? malformedSvidResponse(kind, state)
          : malformedBundlesResponse(kind, state),
      );
      sent++;
    }
    return sent;
  }

  endStream(): number {
    return this.#end('OK');
  }

  delayFirstResponse(ms: number): void {
    if (ms !== 0) durationOption('ms', ms, 0);
    this.#delay = ms;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#end(grpc.status.UNAVAILABLE);
    this.#server.forceShutdown();
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
    if (this.#ownsCa) await this.ca.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [inspect.custom](): string {
    return `FakeWorkloadApi(${this.address}, ${this.#served.length} SVID(s), ${this.#streams.size} open stream(s))`;
  }
}

/**
 * Starts a fake SPIFFE Workload API (see {@link FakeWorkloadApi}), backed by a local CA.
 *
 * @param options - trust domain or CA, SVIDs to serve, lifetime, transport
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option; the promise rejects when the
 *   server cannot listen
 * @example
 * ```ts
 * import { workloadApiIdentity } from 'sidecarless';
 * import { createFakeWorkloadApi } from 'sidecarless/testing';
 * const fake = await createFakeWorkloadApi({ trustDomain: 'cluster.local', svids: ['/ns/demo/sa/boards'] });
 * const identity = workloadApiIdentity({ address: fake.address });
 * console.log((await identity.ready()).svid.id.toString()); // spiffe://cluster.local/ns/demo/sa/boards
 * await identity.close();
 * await fake.close();
 * ```
 */
export async function createFakeWorkloadApi(options: FakeWorkloadApiOptions = {}): Promise<FakeWorkloadApi> {
  const opts = checkOptions<FakeWorkloadApiOptions>(
    options,
    ['trustDomain', 'ca', 'svids', 'ttl', 'transport'],
    'createFakeWorkloadApi',
  );
  const transport = opts.transport ?? 'unix';
  if (transport !== 'unix' && transport !== 'tcp')
    throw invalidOption('transport', '"unix" or "tcp"', transport);
  const ttl = durationOption('ttl', opts.ttl, 3_600_000);
  if (opts.ca !== undefined) {
    // Refused now rather than at the first malformed message: the bad-certificate factory needs a
    // CA of this copy of sidecarless.
    const ca = opts.ca as LocalCaImpl & { issueBad?: unknown };
    if (typeof ca.issueBad !== 'function') localCaInternals(ca);
  }
  const ownsCa = opts.ca === undefined;
  const ca = opts.ca ?? createLocalCa({ trustDomain: opts.trustDomain ?? 'cluster.local' });
  let fake: Fake | undefined;
  let listening: Awaited<ReturnType<typeof listen>>;
  try {
    // Calls are routed to the fake once it exists; none can come before listen() resolves.
    listening = await listen(transport, (method, call) => fake?.handle(method, call));
  } catch (err) {
    if (ownsCa) await ca.close();
    throw err;
  }
  const { server, address, dir } = listening;
  const created = new Fake(server, address, dir, ca, ownsCa, ttl);
  try {
    created.serveSpecs(opts.svids ?? ['/ns/default/sa/default']);
  } catch (err) {
    await created.close();
    throw err;
  }
  fake = created;
  return created;
}
