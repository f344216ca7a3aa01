import type http from 'node:http';
import type http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import type { AuthorizationPolicy } from '../authz/policy.js';
import type { AuthorizationEvent, IdentityUpdateEvent, PeerEvent, RejectEvent } from '../observe/channels.js';
import type { EdgeReport } from '../observe/edges.js';
import type { ConnectionCounts } from './connections.js';
import type { MtlsMode, ServerProtocol } from './options.js';
import type { ServerCore, ServerTotals } from './server-core.js';

/**
 * The listener report of {@link MtlsServerExtras.describe}: what the mesh's dashboards showed of a
 * workload (which connections are mTLS), from inside the process.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type ServerReport } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * const report: ServerReport = server.describe();
 * console.log(report.mode, report.id, report.connections.mtls);
 * ```
 */
export interface ServerReport {
  /** What `server.address()` says (null before listen). */
  readonly address: AddressInfo | string | null;
  /** The mTLS mode. */
  readonly mode: MtlsMode;
  /** The protocol served. */
  readonly protocol: ServerProtocol;
  /** The server's own SPIFFE ID, or null when it has no identity. */
  readonly id: string | null;
  /** When the server's SVID expires. */
  readonly notAfter: Date | null;
  /** The trust domains whose peers it accepts. */
  readonly trustDomains: readonly string[];
  /** Open connections now, by kind. */
  readonly connections: ConnectionCounts;
  /** Since the server was created: accepted connections by kind, refusals, denied requests. */
  readonly totals: Readonly<ServerTotals>;
  /**
   * Inbound edges, most recently seen first: per caller (its SPIFFE ID, or `unauthenticated`),
   * requests, share over mTLS, last seen, last refusal and TLS version (at most `maxEdges`).
   */
  readonly edges: readonly EdgeReport[];
}

/**
 * What a sidecarless server adds to the Node server it is: typed events, the report, and the
 * compiled authorization policy.
 * @example
 * ```ts
 * import { authorize, createLocalCa, createMtlsServer } from 'sidecarless';
 * import { fakePeer } from 'sidecarless/testing';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/x'), authorize: { '/admin/*': 'spiffe://cluster.local/ns/ops/*' } });
 * server.on('reject', (event) => console.warn(event.reason));
 * if (server.policy) console.log(authorize(server.policy, fakePeer('spiffe://cluster.local/ns/ops/sa/a'), { method: 'GET', path: '/admin/x' }).allowed);
 * ```
 */
export interface MtlsServerExtras {
  /** The listener report: address, mode, own identity, trust domains, connection counts, edges. */
  describe(): ServerReport;
  /** The compiled authorization policy the server enforces (HTTP servers), for `authorize()`. */
  readonly policy: AuthorizationPolicy | undefined;
  /** A connection's peer was accepted. */
  on(event: 'peer', listener: (event: PeerEvent) => void): this;
  /** A connection or request was refused, or a connection closed by policy. */
  on(event: 'reject', listener: (event: RejectEvent) => void): this;
  /** An authorization decision was made. */
  on(event: 'authorization', listener: (event: AuthorizationEvent) => void): this;
  /** A new identity was applied. */
  on(event: 'identityUpdate', listener: (event: IdentityUpdateEvent) => void): this;
  /** See `on('peer')`. */
  once(event: 'peer', listener: (event: PeerEvent) => void): this;
  /** See `on('reject')`. */
  once(event: 'reject', listener: (event: RejectEvent) => void): this;
  /** See `on('authorization')`. */
  once(event: 'authorization', listener: (event: AuthorizationEvent) => void): this;
  /** See `on('identityUpdate')`. */
  once(event: 'identityUpdate', listener: (event: IdentityUpdateEvent) => void): this;
}

/**
 * The `http.Server` that `createMtlsServer` returns for `protocol: 'http1'`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type MtlsHttpServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'td' });
 * const server: MtlsHttpServer = createMtlsServer({ identity: ca.identity('/web') }, (_req, res) => res.end());
 * ```
 */
export type MtlsHttpServer = MtlsServerExtras & http.Server;

/**
 * The `Http2SecureServer` that `createMtlsServer` returns for `protocol: 'http2'`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type MtlsHttp2Server } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'td' });
 * const server: MtlsHttp2Server = createMtlsServer({ identity: ca.identity('/web'), protocol: 'http2' }, (_req, res) => res.end());
 * ```
 */
export type MtlsHttp2Server = MtlsServerExtras & http2.Http2SecureServer;

/**
 * The `tls.Server` that `createMtlsServer` returns for `protocol: 'tls'`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type MtlsTlsServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'td' });
 * const server: MtlsTlsServer = createMtlsServer({ identity: ca.identity('/web'), protocol: 'tls' }, (socket, peer) => socket.end(`${peer.id}\n`));
 * ```
 */
export type MtlsTlsServer = MtlsServerExtras & tls.Server;

/** Adds describe() and policy to the Node server. */
export function serverExtras<S extends http.Server | tls.Server>(
  server: S,
  core: ServerCore,
  policy: AuthorizationPolicy | undefined,
): S & MtlsServerExtras {
  const describe = (): ServerReport => {
    const identity = core.peekIdentity();
    return Object.freeze({
      address: server.address(),
      mode: core.settings.mode,
      protocol: core.settings.protocol,
      id: identity?.svid.id.toString() ?? null,
      notAfter: identity?.svid.notAfter ?? null,
      trustDomains: Object.freeze(identity?.bundles.trustDomains().map((td) => td.name) ?? []),
      connections: core.tracker.counts(),
      totals: Object.freeze({ ...core.totals }),
      edges: core.edges.report(),
    });
  };
  Object.defineProperties(server, {
    describe: { value: describe },
    policy: { value: policy, enumerable: true },
  });
  return server as S & MtlsServerExtras;
}
