import type { TLSSocket } from 'node:tls';

/**
 * The `source` of every edge whose caller did not prove an identity: plaintext callers, TLS
 * callers without a certificate, and every refusal before a peer was verified. One edge for all of
 * them, never one per remote address: an edge table an attacker can fill is no report.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, UNAUTHENTICATED_SOURCE } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * const anonymous = server.describe().edges.find((edge) => edge.source === UNAUTHENTICATED_SOURCE);
 * console.log(anonymous?.refusals ?? 0);
 * ```
 */
export const UNAUTHENTICATED_SOURCE = 'unauthenticated';

/**
 * What edges report as their key-exchange group when Node does not say: `getEphemeralKeyInfo()`
 * returns `null` on server sockets (so every inbound edge), and `{}` on Node 22 client sockets that
 * negotiated the post-quantum hybrid (docs/observability.md).
 * @example
 * ```ts
 * import { KEY_EXCHANGE_NOT_EXPOSED, type EdgeReport } from 'sidecarless';
 * const known = (edge: EdgeReport) => edge.keyExchange !== null && edge.keyExchange !== KEY_EXCHANGE_NOT_EXPOSED;
 * ```
 */
export const KEY_EXCHANGE_NOT_EXPOSED = 'not exposed by Node';

/**
 * The key-exchange group of a client socket: `null` without TLS; {@link KEY_EXCHANGE_NOT_EXPOSED}
 * when Node returns an object without a name (Node 22 with OpenSSL 3.5 negotiates the post-quantum
 * hybrid but `getEphemeralKeyInfo()` only describes classic groups, so it returns `{}`).
 * @internal
 */
export function clientKeyExchange(socket: Partial<TLSSocket>): string | null {
  const info = socket.getEphemeralKeyInfo?.() as { name?: unknown } | null | undefined;
  if (info === null || info === undefined) return null;
  return typeof info.name === 'string' ? info.name : KEY_EXCHANGE_NOT_EXPOSED;
}

/** How many edges a server, dispatcher or agent keeps by default (`maxEdges`). */
export const DEFAULT_MAX_EDGES = 1000;

/**
 * The last refusal on an edge.
 * @example
 * ```ts
 * import type { EdgeRefusal } from 'sidecarless';
 * const line = (r: EdgeRefusal) => `${r.at.toISOString()} ${r.reason}: ${r.message}`;
 * ```
 */
export interface EdgeRefusal {
  /** The stable error code (`ERR_NOT_AUTHORIZED`, `ERR_SVID_UNTRUSTED`, `ERR_REFUSED_BY_SERVER`, …). */
  readonly reason: string;
  /** The message naming the rule that was broken (redacted; may quote a normalised path). */
  readonly message: string;
  /** When it happened. */
  readonly at: Date;
}

/**
 * One edge of the service graph, `source → destination`, as `describe()` reports it: how many
 * requests, how many of them over mTLS, when it was last used, the last refusal, and the TLS
 * version and key-exchange group of its last connection.
 *
 * Inbound (servers): `source` is the caller's verified SPIFFE ID or `unauthenticated`;
 * `destination` is the server's own SPIFFE ID (its local `address:port` without one). Outbound
 * (dispatchers, agents): `source` is this workload's SPIFFE ID; `destination` is the server's
 * `host:port` and `peer` the SPIFFE ID it proved.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type EdgeReport } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * const lock = (edge: EdgeReport) => (edge.mtlsShare === 1 ? 'mTLS' : 'open');
 * for (const edge of server.describe().edges) console.log(edge.source, '→', edge.destination, lock(edge));
 * ```
 */
export interface EdgeReport {
  /** `inbound` (a server's callers) or `outbound` (a client's servers). */
  readonly direction: 'inbound' | 'outbound';
  /** The caller: a SPIFFE ID, or `unauthenticated`. */
  readonly source: string;
  /** The callee: a SPIFFE ID (inbound) or `host:port` (outbound). */
  readonly destination: string;
  /** The SPIFFE ID the callee proved (outbound, mTLS), else null. */
  readonly peer: string | null;
  /** Requests (a raw TLS server: connections) since the edge was first seen. */
  readonly requests: number;
  /** How many of them went over mTLS. */
  readonly mtlsRequests: number;
  /** `mtlsRequests / requests`, or null before the first request. */
  readonly mtlsShare: number | null;
  /** Refusals on this edge (handshake, request, or a connection closed by policy). */
  readonly refusals: number;
  /** The last request or connection, or null. */
  readonly lastSeen: Date | null;
  /** The last refusal, or null. */
  readonly lastRefusal: EdgeRefusal | null;
  /** The TLS version of the last connection (`TLSv1.3`), or null for plaintext. */
  readonly tlsVersion: string | null;
  /**
   * The key-exchange group of the last connection (`X25519MLKEM768`, `X25519`), null for
   * plaintext; inbound edges say {@link KEY_EXCHANGE_NOT_EXPOSED}.
   */
  readonly keyExchange: string | null;
}

/** One edge's counters. Mutated in place: a request costs a few field writes, no allocation. */
export class Edge {
  readonly source: string;
  readonly destination: string;
  readonly key: string;
  peer: string | null = null;
  requests = 0;
  mtlsRequests = 0;
  refusals = 0;
  lastSeen = 0;
  lastRefusal: EdgeRefusal | null = null;
  tlsVersion: string | null = null;
  keyExchange: string | null = null;
  /** Set when the table dropped it: the next use puts it back. */
  evicted = false;

  constructor(source: string, destination: string, key: string) {
    this.source = source;
    this.destination = destination;
    this.key = key;
  }
}

/**
 * A bounded table of edges. An edge is found or made once per connection (a string key), then
 * each request bumps its counters. When full, the least recently seen edge is dropped; an edge a
 * live connection still holds comes back on its next request.
 */
export class EdgeTable {
  readonly direction: 'inbound' | 'outbound';
  readonly #limit: number;
  readonly #edges = new Map<string, Edge>();

  constructor(direction: 'inbound' | 'outbound', limit: number) {
    this.direction = direction;
    this.#limit = limit;
  }

  /** The edge `source → destination`, made if new. */
  edge(source: string, destination: string): Edge {
    const key = `${source}\n${destination}`;
    let edge = this.#edges.get(key);
    if (edge === undefined) {
      edge = new Edge(source, destination, key);
      this.#insert(edge);
    }
    return edge;
  }

  #insert(edge: Edge): void {
    edge.evicted = false;
    if (this.#edges.size >= this.#limit) this.#evictOldest();
    this.#edges.set(edge.key, edge);
  }

  // O(N), but only when a new edge arrives in a full table: new edges come from verified
  // identities (or chosen destinations), never from each remote address.
  #evictOldest(): void {
    let oldest: Edge | undefined;
    for (const edge of this.#edges.values()) {
      if (oldest === undefined || edge.lastSeen < oldest.lastSeen) oldest = edge;
    }
    if (oldest === undefined) return;
    oldest.evicted = true;
    this.#edges.delete(oldest.key);
  }

  /** A request (or a raw TLS connection) on `edge`. */
  request(held: Edge, mtls: boolean): void {
    const edge = held.evicted ? this.#revive(held) : held;
    edge.requests++;
    if (mtls) edge.mtlsRequests++;
    edge.lastSeen = Date.now();
  }

  /** A connection on `edge`: its TLS version and key-exchange group. */
  connected(held: Edge, socket: object, peer: string | null): void {
    const edge = held.evicted ? this.#revive(held) : held;
    edge.lastSeen = Date.now();
    edge.peer = peer;
    const tlsSocket = socket as Partial<TLSSocket>;
    if (typeof tlsSocket.getProtocol !== 'function') {
      edge.tlsVersion = null;
      edge.keyExchange = null;
      return;
    }
    edge.tlsVersion = tlsSocket.getProtocol() ?? null;
    if (this.direction === 'inbound') {
      edge.keyExchange = KEY_EXCHANGE_NOT_EXPOSED;
      return;
    }
    edge.keyExchange = clientKeyExchange(tlsSocket);
  }

  /** A refusal on `edge`. */
  refused(held: Edge, reason: string, message: string): void {
    const edge = held.evicted ? this.#revive(held) : held;
    const now = Date.now();
    edge.refusals++;
    edge.lastSeen = now;
    edge.lastRefusal = Object.freeze({ reason, message, at: new Date(now) });
  }

  /** The live edge for one the table dropped: itself, put back, or the one made since under its key. */
  #revive(edge: Edge): Edge {
    const current = this.#edges.get(edge.key);
    if (current === undefined) {
      this.#insert(edge);
      return edge;
    }
    // A new edge of the same key was made meanwhile: the old counters go into it.
    current.requests += edge.requests;
    current.mtlsRequests += edge.mtlsRequests;
    current.refusals += edge.refusals;
    edge.requests = 0;
    edge.mtlsRequests = 0;
    edge.refusals = 0;
    return current;
  }

  /** The report, most recently seen first. */
  report(): readonly EdgeReport[] {
    const edges = [...this.#edges.values()].sort((a, b) => b.lastSeen - a.lastSeen);
    return Object.freeze(edges.map((edge) => this.#reportOf(edge)));
  }

  #reportOf(edge: Edge): EdgeReport {
    return Object.freeze({
      direction: this.direction,
      source: edge.source,
      destination: edge.destination,
      peer: edge.peer,
      requests: edge.requests,
      mtlsRequests: edge.mtlsRequests,
      mtlsShare: edge.requests === 0 ? null : edge.mtlsRequests / edge.requests,
      refusals: edge.refusals,
      lastSeen: edge.lastSeen === 0 ? null : new Date(edge.lastSeen),
      lastRefusal: edge.lastRefusal,
      tlsVersion: edge.tlsVersion,
      keyExchange: edge.keyExchange,
    });
  }

  get size(): number {
    return this.#edges.size;
  }
}
