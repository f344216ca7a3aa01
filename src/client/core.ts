import type { TLSSocket } from 'node:tls';
import type { IdentitySource, WorkloadIdentity } from '../identity/source.js';
import { durationOption, invalidOption } from '../internal/options.js';
import { publishClientFallback } from '../observe/channels.js';
import { DEFAULT_MAX_EDGES, type EdgeReport, EdgeTable, UNAUTHENTICATED_SOURCE } from '../observe/edges.js';
import { PeerVerifier } from '../tls/peer-verifier.js';
import type { BundleSet } from '../x509/bundle-set.js';
import { connected, connectFailed } from './client-edges.js';
import { type ConnectCallback, type ConnectHooks, connectTarget, type FallbackEvent } from './connect.js';
import { ConnectionGuard } from './connection-guard.js';
import { compileDestinations, type Destinations, type DestinationTable } from './destinations.js';
import { SessionCache } from './session-cache.js';
import { type ConnectRequest, type Plan, planOf, resolvePlan, type Target, targetOf } from './target.js';

/**
 * Options every sidecarless client takes.
 * @example
 * ```ts
 * import { createLocalCa, type MtlsClientOptions } from 'sidecarless';
 * const options: MtlsClientOptions = {
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
 *   connectTimeout: 5_000,
 * };
 * ```
 */
export interface MtlsClientOptions {
  /** Where the workload's SVID and bundles come from; read at every new connection. */
  readonly identity: IdentitySource;
  /** What to do per destination (secure naming). */
  readonly destinations: Destinations;
  /** TCP connect plus TLS handshake, in ms (default 10 000, as undici). */
  readonly connectTimeout?: number;
  /**
   * Resume TLS sessions with mTLS servers (default false: every connection is a full handshake).
   * The server identity verified by the full handshake is kept with the session and checked again
   * (against the current bundles and `expect`) on each resumption; sessions are per destination,
   * address and SNI, dropped on every SVID or bundle change, and kept 10 minutes at most. Only safe with servers that rotate their ticket keys whenever their SVID or trust
   * changes (a resumed session cannot show a new certificate).
   */
  readonly resumption?: boolean;
  /**
   * The DNS search domains of this workload (`resolv.conf`'s `search`, e.g.
   * `['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local']` in Kubernetes): a host
   * without a dot (`boards`) is also matched as `boards.<domain>` for each, and the strictest
   * destination among them applies, so a short name cannot fall to a weaker key than the name it
   * resolves to. At most 16.
   */
  readonly searchDomains?: readonly string[];
  /**
   * How many outbound edges `describe()` keeps (default 1 000), one per destination `host:port`;
   * when full, the least recently seen edge is dropped.
   */
  readonly maxEdges?: number;
}

/**
 * What `describe()` on a dispatcher or an agent reports: this workload's identity and its
 * outbound edges, most recently seen first.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsDispatcher, type ClientReport } from 'sidecarless';
 * const dispatcher = createMtlsDispatcher({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { '*': { expect: '*' } },
 * });
 * const report: ClientReport = dispatcher.describe();
 * for (const edge of report.edges) console.log(edge.destination, edge.peer, edge.tlsVersion, edge.keyExchange);
 * ```
 */
export interface ClientReport {
  /** This workload's SPIFFE ID, or null when its source has none. */
  readonly id: string | null;
  /** When its SVID expires, or null. */
  readonly notAfter: Date | null;
  /** Outbound edges: per destination, requests, share over mTLS, refusals, TLS version and group. */
  readonly edges: readonly EdgeReport[];
}

/** The client option names, for checkOptions. */
export const CLIENT_OPTIONS: readonly (keyof MtlsClientOptions)[] = [
  'identity',
  'destinations',
  'connectTimeout',
  'resumption',
  'searchDomains',
  'maxEdges',
];

/** How many origins' targets a client keeps (each a few hundred bytes). */
const TARGET_CACHE_LIMIT = 256;

/** What the owner of a core (a dispatcher, an agent) does for it. */
export interface CoreOwner {
  emitFallback(event: FallbackEvent): void;
  /** Closes a pooled connection as soon as it is idle. */
  retire(socket: TLSSocket): void;
}

function isIdentitySource(value: unknown): value is IdentitySource {
  const v = value as Partial<IdentitySource> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.current === 'function' &&
    typeof v.subscribe === 'function'
  );
}

/**
 * What a dispatcher and an agent share: compiled destinations, the server verifier (one verdict
 * cache per client), the connectors, and the guard that follows identity updates.
 */
export class ClientCore {
  readonly table: DestinationTable;
  readonly guard: ConnectionGuard;
  readonly edges: EdgeTable;
  readonly #identity: IdentitySource;
  readonly #hooks: Omit<ConnectHooks, 'plainTls'>;
  #withPlainTls: ConnectHooks | undefined;
  readonly #sessions: SessionCache | undefined;
  readonly #unsubscribe: () => void;
  /** The targets of requests whose destination needs no DNS answer, by request. */
  readonly #targets = new Map<string, Target>();
  #bundles: BundleSet | undefined;

  /**
   * @param alpn - the ALPN protocols its TLS connections offer (none when undefined: node:http's
   *   agents speak HTTP/1.1 only and have always offered none)
   */
  constructor(options: MtlsClientOptions, owner: CoreOwner, alpn?: string[]) {
    if (!isIdentitySource(options.identity)) {
      throw invalidOption('identity', 'an IdentitySource (current() and subscribe())', options.identity);
    }
    const identity = options.identity;
    this.#identity = identity;
    const maxEdges = options.maxEdges ?? DEFAULT_MAX_EDGES;
    if (!(Number.isSafeInteger(maxEdges) && maxEdges > 0)) {
      throw invalidOption('maxEdges', 'a positive integer', options.maxEdges);
    }
    this.edges = new EdgeTable('outbound', maxEdges);
    this.table = compileDestinations(options.destinations, options.searchDomains);
    const verifier = new PeerVerifier('server');
    if (options.resumption !== undefined && typeof options.resumption !== 'boolean') {
      throw invalidOption('resumption', 'a boolean', options.resumption);
    }
    this.#sessions = options.resumption === true ? new SessionCache() : undefined;
    this.guard = new ConnectionGuard(verifier, (socket) => owner.retire(socket));
    this.#hooks = Object.freeze({
      identity,
      verifier,
      connectTimeout: durationOption('connectTimeout', options.connectTimeout, 10_000),
      established: (socket: TLSSocket, peer: Parameters<ConnectHooks['established']>[1]) =>
        this.guard.track(socket, peer),
      fallback: (event: FallbackEvent) => {
        owner.emitFallback(event);
        publishClientFallback(event);
      },
      sessions: this.#sessions,
      alpn,
      closeIsRefusal: true,
    });
    try {
      this.#bundles = identity.current().bundles;
    } catch {
      // No identity yet: connections fail with ERR_NO_IDENTITY until one arrives.
    }
    this.#unsubscribe = identity.subscribe((next: WorkloadIdentity) => this.#updated(next));
  }

  /**
   * Chooses the destination of a new connection and makes it: when the destination depends on
   * the name's addresses, the name is resolved here, once, and the connection goes to those
   * addresses only. `plainTls` makes the ordinary TLS socket of https:// to a plaintext
   * destination. Errors (ERR_HOST_INVALID, ERR_NO_DESTINATION, DNS, the connectors') go to `cb`.
   */
  connect(request: ConnectRequest, plainTls: (target: Target) => TLSSocket, cb: ConnectCallback): void {
    let plan: Plan | undefined;
    const failed = (err: Error) => {
      connectFailed(undefined, '', { destination: null, address: plan?.address ?? null }, err);
      cb(err);
    };
    try {
      // Most connections go to a few origins: a destination that does not depend on DNS is
      // chosen once per origin (the table never changes), not per connection.
      const key = `${request.protocol}\0${request.host}\0${request.port ?? ''}\0${request.localAddress ?? ''}`;
      const known = this.#targets.get(key);
      if (known !== undefined) {
        connectTarget(this.#hooksWith(plainTls), known, this.#observed(known, cb));
        return;
      }
      plan = planOf(this.table, request);
      if (!plan.resolve) {
        const target = targetOf(this.table, plan);
        if (this.#targets.size >= TARGET_CACHE_LIMIT) {
          this.#targets.delete(this.#targets.keys().next().value as string);
        }
        this.#targets.set(key, target);
        connectTarget(this.#hooksWith(plainTls), target, this.#observed(target, cb));
        return;
      }
    } catch (err) {
      failed(err as Error);
      return;
    }
    const resolving = plan;
    resolvePlan(resolving, (err, addresses) => {
      if (err !== null) {
        cb(err);
        return;
      }
      let target: Target;
      try {
        target = targetOf(this.table, resolving, addresses);
      } catch (e) {
        failed(e as Error);
        return;
      }
      connectTarget(this.#hooksWith(plainTls), target, this.#observed(target, cb));
    });
  }

  /**
   * The connectors' hooks with this caller's `plainTls`: an agent passes the same function for
   * every connection, so they are built once, not copied per connection.
   */
  #hooksWith(plainTls: ConnectHooks['plainTls']): ConnectHooks {
    if (this.#withPlainTls?.plainTls !== plainTls) {
      this.#withPlainTls = Object.freeze({ ...this.#hooks, plainTls });
    }
    return this.#withPlainTls;
  }

  /** The callback of a connection to `target`, which reports it (edges, client channels) first. */
  #observed(target: Target, cb: ConnectCallback): ConnectCallback {
    return (err, socket) => {
      const source = this.#source();
      if (err !== null) {
        connectFailed(
          this.edges,
          source,
          { destination: target.destination.key, address: target.address },
          err,
        );
      } else if (socket !== undefined) {
        connected(this.edges, source, target, socket);
      }
      cb(err, socket);
    };
  }

  /** This workload's SPIFFE ID, the source of its outbound edges. */
  #source(): string {
    try {
      return this.#identity.current().svid.id.toString();
    } catch {
      return UNAUTHENTICATED_SOURCE;
    }
  }

  /** The report of `describe()`. */
  describe(): ClientReport {
    let identity: WorkloadIdentity | undefined;
    try {
      identity = this.#identity.current();
    } catch {
      identity = undefined;
    }
    return Object.freeze({
      id: identity?.svid.id.toString() ?? null,
      notAfter: identity?.svid.notAfter ?? null,
      edges: this.edges.report(),
    });
  }

  close(): void {
    this.#sessions?.clear();
    this.#unsubscribe();
    this.guard.close();
  }

  #updated(identity: WorkloadIdentity): void {
    // New SVIDs need nothing here: the next connection reads current(). Sessions belong to the
    // snapshot they were made under (a new one never resumes them). New bundles may revoke the
    // servers of pooled connections.
    this.#sessions?.clear();
    const previous = this.#bundles;
    this.#bundles = identity.bundles;
    if (previous !== undefined && !previous.equals(identity.bundles)) {
      this.guard.bundlesChanged(identity.bundles);
    }
  }
}
