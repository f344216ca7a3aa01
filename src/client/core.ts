import type { TLSSocket } from 'node:tls';
import type { IdentitySource, WorkloadIdentity } from '../identity/source.js';
import { durationOption, invalidOption } from '../internal/options.js';
import { PeerVerifier } from '../tls/peer-verifier.js';
import type { BundleSet } from '../x509/bundle-set.js';
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
}

/** The client option names, for checkOptions. */
export const CLIENT_OPTIONS: readonly (keyof MtlsClientOptions)[] = [
  'identity',
  'destinations',
  'connectTimeout',
  'resumption',
  'searchDomains',
];

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
  readonly #hooks: Omit<ConnectHooks, 'plainTls'>;
  readonly #sessions: SessionCache | undefined;
  readonly #unsubscribe: () => void;
  #bundles: BundleSet | undefined;

  constructor(options: MtlsClientOptions, owner: CoreOwner) {
    if (!isIdentitySource(options.identity)) {
      throw invalidOption('identity', 'an IdentitySource (current() and subscribe())', options.identity);
    }
    const identity = options.identity;
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
      fallback: (event: FallbackEvent) => owner.emitFallback(event),
      sessions: this.#sessions,
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
    let plan: Plan;
    try {
      plan = planOf(this.table, request);
      if (!plan.resolve) {
        connectTarget({ ...this.#hooks, plainTls }, targetOf(this.table, plan), cb);
        return;
      }
    } catch (err) {
      cb(err as Error);
      return;
    }
    resolvePlan(plan, (err, addresses) => {
      if (err !== null) {
        cb(err);
        return;
      }
      let target: Target;
      try {
        target = targetOf(this.table, plan, addresses);
      } catch (e) {
        cb(e as Error);
        return;
      }
      connectTarget({ ...this.#hooks, plainTls }, target, cb);
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
