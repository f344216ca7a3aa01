import { createHash, randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { type AuthorizationPolicy, namedTrustDomains } from '../authz/policy.js';
import { type ErrorCode, isSidecarlessError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/source.js';
import { nodeTls as tls } from '../internal/builtins.js';
import {
  type AuthorizationDecisionEvent,
  authorizationObserved,
  type IdentityUpdateEvent,
  publishAuthorization,
  publishIdentityUpdate,
  publishPeer,
  publishReject,
  type RejectEvent,
  type RejectPhase,
} from '../observe/channels.js';
import { type Edge, EdgeTable, UNAUTHENTICATED_SOURCE } from '../observe/edges.js';
import { admitPeer, type PresentedCertificate } from '../policy/admission.js';
import { tlsMaterialOf } from '../tls/material.js';
import { buildPeer } from '../tls/peer.js';
import { fingerprintOf, peerChainOf, sessionPeerLeafKey } from '../tls/peer-chain.js';
import { setPeer } from '../tls/peer-registry.js';
import { PeerVerifier } from '../tls/peer-verifier.js';
import type { VerifiedPeerChain } from '../x509/verify.js';
import { type Connection, ConnectionTracker } from './connections.js';
import { serverContextOptions } from './context.js';
import type { ServerSettings } from './options.js';
import { peerEvent } from './peers.js';

/**
 * Counters of {@link ServerReport}: connections accepted by kind since the server was created,
 * refusals, denied requests and clients that hung up before they were admitted.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type ServerTotals } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * const totals: ServerTotals = server.describe().totals;
 * console.log(totals.mtls, totals.rejected, totals.aborted);
 * ```
 */
export interface ServerTotals {
  /** mTLS connections accepted. */
  mtls: number;
  /** TLS connections without a client certificate accepted (PERMISSIVE). */
  tlsWithoutIdentity: number;
  /** Plaintext connections accepted. */
  plaintext: number;
  /** Connections and requests refused (every `reject` event, client aborts included). */
  rejected: number;
  /** Requests denied by authorization (403). */
  denied: number;
  /** Clients that closed the connection before it was admitted. */
  aborted: number;
}

let warnedNoWithdrawal = false;

/** What a full handshake the server admitted leaves for its resumptions: the chain it proved. */
interface ResumptionRecord {
  /** The presented chain, DER, leaf first; empty for a TLS peer without a certificate. */
  readonly chain: readonly Buffer[];
}

const RECORD_LIMIT = 10_000;

/** Test-only: hold a handshake refusal back, as a slow refusal would, so the client gets its ticket. */
export const admissionTestHooks: { refusalDelay: number } = { refusalDelay: 0 };

/** The admission records' key of a leaf (its fingerprint), or 'none'. */
function leafKey(fingerprint: string | undefined): string {
  return fingerprint ?? 'none';
}

/**
 * A server's state and decisions: the identity and TLS context in force, the handshake gate,
 * connection tracking and the events. Protocol wiring lives in http1.ts, http2.ts and
 * tls-server.ts; the doors in listener.ts.
 */
export class ServerCore {
  readonly settings: ServerSettings;
  readonly tracker: ConnectionTracker;
  /** Inbound edges: one per verified caller, plus `unauthenticated` for everyone else. */
  readonly edges: EdgeTable;
  readonly totals: ServerTotals = {
    mtls: 0,
    tlsWithoutIdentity: 0,
    plaintext: 0,
    rejected: 0,
    denied: 0,
    aborted: 0,
  };
  /** HTTP/2 sessions and their connection (a session's socket is a proxy, or a JS stream wrapper). */
  readonly sessions = new WeakMap<object, Connection>();
  /** The connection being handed to http2 right now: its 'session' event fires synchronously. */
  admitting: Connection | undefined;
  /**
   * The private tls.Server the library's TLS sockets belong to: application listeners on the
   * public server (session stores, OCSP, keylog) never reach them.
   */
  readonly tlsOwner = tls.createServer();
  readonly #emitter: EventEmitter;
  readonly #verifier = new PeerVerifier('client');
  #identity: WorkloadIdentity | undefined;
  #context: SecureContext | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Resumption: a salt per server instance, and the records of admitted full handshakes per context. */
  readonly #salt = randomBytes(16);
  #epoch = 0;
  readonly #records = new WeakMap<SecureContext, Map<string, ResumptionRecord>>();
  #rotation: NodeJS.Timeout | undefined;

  constructor(settings: ServerSettings, emitter: EventEmitter) {
    this.settings = settings;
    this.#emitter = emitter;
    this.edges = new EdgeTable('inbound', settings.maxEdges);
    this.tracker = new ConnectionTracker(settings.maxConnectionAge, (connection, reason, message) =>
      this.rejectConnection(connection, 'connection', reason, message),
    );
  }

  /** The edge of a caller: its verified SPIFFE ID, or the one `unauthenticated` source. */
  #edgeOf(
    peer: { readonly mtls: boolean; readonly id: { toString(): string } | null } | null,
    raw: Socket,
  ): Edge {
    const source = peer?.mtls && peer.id !== null ? peer.id.toString() : UNAUTHENTICATED_SOURCE;
    const destination = this.#identity?.svid.id.toString() ?? `${raw.localAddress}:${raw.localPort}`;
    return this.edges.edge(source, destination);
  }

  /** The identity, read without acting on a withdrawal (for reports). */
  peekIdentity(): WorkloadIdentity | undefined {
    try {
      return this.settings.identity?.current();
    } catch {
      return undefined;
    }
  }

  /** The server's own SPIFFE ID now, or null. */
  ownId(): string | null {
    return this.#identity?.svid.id.toString() ?? null;
  }

  /** The identity in force, or undefined when the source has none (new handshakes fail closed). */
  identity(): WorkloadIdentity | undefined {
    const source = this.settings.identity;
    if (source === undefined) return undefined;
    try {
      const identity = source.current();
      if (identity !== this.#identity) this.#apply(identity);
      return identity;
    } catch {
      this.#withdrawn();
      return undefined;
    }
  }

  /** The TLS context of the identity in force, or undefined without one. */
  context(): SecureContext | undefined {
    return this.identity() === undefined ? undefined : this.#context;
  }

  #withdrawn(): void {
    if (this.#identity === undefined) return;
    // The source withdrew the identity (revoked, expired): connections made with it end.
    this.#identity = undefined;
    this.#context = undefined;
    this.tracker.closeEncrypted('ERR_NO_IDENTITY', 'the server identity was withdrawn');
  }

  /**
   * Follows the identity source: every accepted update builds a complete new TLS context (new
   * handshakes use it at once; live connections keep theirs) and re-verifies open connections
   * when the bundles changed; a withdrawal closes encrypted connections at once.
   */
  start(): void {
    const source = this.settings.identity;
    if (source === undefined) return;
    const unsubscribe = source.subscribe((identity) => this.#apply(identity));
    let stopWatching: (() => void) | undefined;
    if (typeof source.onWithdrawn === 'function') {
      stopWatching = source.onWithdrawn(() => this.identity());
    } else if (!warnedNoWithdrawal) {
      warnedNoWithdrawal = true;
      process.emitWarning(
        'the identity source has no onWithdrawn(): a withdrawn identity is noticed at the next handshake or request, not at once',
        { type: 'SidecarlessWarning', code: 'ERR_NO_IDENTITY' },
      );
    }
    this.#unsubscribe = () => {
      unsubscribe();
      stopWatching?.();
    };
    try {
      this.#apply(source.current(), false);
    } catch {
      // No identity yet: TLS is refused until one arrives.
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearTimeout(this.#rotation);
  }

  /** Builds the TLS context of an identity: with tickets bound to it when resumption is on. */
  #buildContext(identity: WorkloadIdentity): SecureContext {
    const material = tlsMaterialOf(identity);
    const { minVersion, resumption, sessionLifetime } = this.settings;
    if (!resumption) return tls.createSecureContext(serverContextOptions(material, minVersion));
    this.#epoch++;
    const sessionIdContext = createHash('sha256')
      .update(this.#salt)
      .update(identity.svid.leaf.raw)
      .update(`${identity.generation}:${this.#epoch}`)
      .digest('hex')
      .slice(0, 32);
    const context = tls.createSecureContext(
      serverContextOptions(material, minVersion, {
        sessionIdContext,
        lifetimeSeconds: Math.ceil(sessionLifetime / 1000),
      }),
    );
    this.#records.set(context, new Map());
    // Ticket keys live at most one session lifetime: a new context brings new random keys.
    clearTimeout(this.#rotation);
    this.#rotation = setTimeout(() => {
      if (this.#identity === identity) this.#context = this.#buildContext(identity);
    }, sessionLifetime).unref();
    return context;
  }

  /** The policy whose matchers are checked against the trusted bundles (a mistake, warned about). */
  #policy: AuthorizationPolicy | undefined;

  /** Warns, once per matcher and bundle change, about matchers naming an untrusted trust domain. */
  checkPolicyTrustDomains(policy: AuthorizationPolicy): void {
    this.#policy = policy;
    const identity = this.peekIdentity();
    if (identity !== undefined) this.#warnUntrusted(identity);
  }

  #warnUntrusted(identity: WorkloadIdentity): void {
    if (this.#policy === undefined) return;
    const trusted = new Set(identity.bundles.trustDomains().map((td) => td.name));
    for (const rule of namedTrustDomains(this.#policy)) {
      const untrusted = rule.trustDomains.filter((td) => !trusted.has(td));
      if (untrusted.length === 0) continue;
      process.emitWarning(
        `${rule.map} key ${JSON.stringify(rule.key)}: matcher ${rule.matcher} names trust domain ${untrusted.join(', ')}, which the server does not trust: it can never match (trusted: ${[...trusted].join(', ') || 'none'})`,
        { type: 'SidecarlessWarning', code: 'ERR_POLICY_INVALID' },
      );
    }
  }

  #apply(identity: WorkloadIdentity, report = true): void {
    const previous = this.#identity;
    this.#identity = identity;
    if (previous === undefined || !previous.bundles.equals(identity.bundles)) this.#warnUntrusted(identity);
    // Built once per identity: a context per handshake costs milliseconds (bench/README.md).
    this.#context = this.#buildContext(identity);
    if (!report) return;
    const bundlesChanged = previous !== undefined && !previous.bundles.equals(identity.bundles);
    const closedConnections = bundlesChanged ? this.tracker.reverify(identity.bundles, this.#verifier) : 0;
    const event: IdentityUpdateEvent = Object.freeze({
      id: identity.svid.id.toString(),
      serial: identity.svid.leaf.serialNumber,
      notAfter: identity.svid.notAfter,
      generation: identity.generation,
      trustDomains: Object.freeze(identity.bundles.trustDomains().map((td) => td.name)),
      closedConnections,
    });
    this.#emitter.emit('identityUpdate', event);
    publishIdentityUpdate(event);
  }

  /** Whether anyone listens to decisions: the event is only built then (it is per request). */
  observesAuthorization(): boolean {
    return this.#emitter.listenerCount('authorization') > 0 || authorizationObserved();
  }

  /** Reports an authorization decision (every decision is observable). */
  emitAuthorization(event: AuthorizationDecisionEvent): void {
    this.#emitter.emit('authorization', event);
    publishAuthorization(event);
  }

  #report(event: RejectEvent, edge: Edge | undefined, raw: Socket | undefined): void {
    this.totals.rejected++;
    // Only a verified peer's connection names an edge: a refused handshake's claimed ID is
    // attacker-chosen, so it counts for `unauthenticated`.
    const target = edge ?? (raw === undefined ? this.#unknownEdge() : this.#edgeOf(null, raw));
    this.edges.refused(target, event.reason, event.message);
    this.#emitter.emit('reject', event);
    publishReject(event);
  }

  /** Reports a refusal of a connection the server never saw as a socket (a dropped one). */
  rejectInfo(
    from: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined },
    phase: RejectPhase,
    reason: ErrorCode,
    message: string,
  ): void {
    this.#report(
      Object.freeze({
        reason,
        phase,
        message,
        remoteAddress: from.remoteAddress ?? null,
        remotePort: from.remotePort ?? null,
        peer: null,
        certificate: null,
      }),
      undefined,
      undefined,
    );
  }

  /** The `unauthenticated` edge of a refusal without a socket (a connection Node dropped). */
  #unknownEdge(): Edge {
    return this.edges.edge(UNAUTHENTICATED_SOURCE, this.#identity?.svid.id.toString() ?? 'this server');
  }

  /** Reports the refusal of an admitted connection or of one of its requests, on its peer's edge. */
  rejectConnection(
    connection: Connection,
    phase: RejectPhase,
    reason: ErrorCode,
    message: string,
    end?: 'reset' | 'destroy',
  ): void {
    this.#reject(
      connection.raw,
      phase,
      reason,
      message,
      connection.peer.id?.toString() ?? null,
      null,
      end,
      connection.edge,
    );
  }

  /** Reports a refusal and ends the connection: RST when `reset` (STRICT's plaintext answer). */
  reject(
    raw: Socket,
    phase: RejectPhase,
    reason: ErrorCode,
    message: string,
    peer: string | null,
    certificate: string | null,
    end?: 'reset' | 'destroy',
  ): void {
    this.#reject(raw, phase, reason, message, peer, certificate, end, undefined);
  }

  #reject(
    raw: Socket,
    phase: RejectPhase,
    reason: ErrorCode,
    message: string,
    peer: string | null,
    certificate: string | null,
    end: 'reset' | 'destroy' | undefined,
    edge: Edge | undefined,
  ): void {
    const event: RejectEvent = Object.freeze({
      reason,
      phase,
      message,
      remoteAddress: raw.remoteAddress ?? null,
      remotePort: raw.remotePort ?? null,
      peer,
      certificate,
    });
    if (end === 'reset' && !raw.destroyed) raw.resetAndDestroy();
    else if (end === 'destroy') raw.destroy();
    this.#report(event, edge, raw);
  }

  /** A client closed its connection before it was admitted: freed now, reported as an abort. */
  aborted(raw: Socket, phase: RejectPhase): void {
    this.totals.aborted++;
    const where = phase === 'sniff' ? 'before sending anything' : 'during the TLS handshake';
    this.reject(
      raw,
      phase,
      'ERR_CLIENT_ABORTED',
      `the client closed the connection ${where}`,
      null,
      null,
      'destroy',
    );
  }

  /** Admits a plaintext connection (`limited`: STRICT's plaintextPaths only): records its peer. */
  admitPlaintext(raw: Socket, socket: object, limited: boolean): Connection {
    return this.#admit(raw, socket, buildPeer({ remoteAddress: raw.remoteAddress }), limited);
  }

  /**
   * The handshake gate. Runs synchronously when the handshake finished, before the protocol layer
   * sees the socket: the peer's whole chain is verified against the bundle of its own trust
   * domain, then `admitPeer` decides. Returns the admitted connection, or undefined after refusing
   * it (the socket is closed).
   */
  admitTls(socket: TLSSocket, raw: Socket, context: SecureContext): Connection | undefined {
    const identity = this.identity();
    const resumed = socket.isSessionReused();
    let chain: readonly Buffer[] = [];
    if (identity !== undefined) {
      if (resumed) {
        // A resumed session proves the peer held a ticket, not that it was admitted: OpenSSL
        // issues tickets before the gate's verdict. Only the record of an admitted full handshake
        // under this context counts, and its chain is verified again now.
        const record = this.#records.get(context)?.get(leafKey(sessionPeerLeafKey(socket)));
        if (record === undefined) {
          this.#refuse(raw, {
            code: 'ERR_RESUMPTION_REFUSED',
            message: 'a resumed TLS session with no admitted full handshake behind it: refused',
            end: 'reset',
            peer: null,
            certificate: null,
          });
          return undefined;
        }
        chain = record.chain;
      }
    }
    let verified: VerifiedPeerChain | undefined;
    let certificate: PresentedCertificate = { presented: false };
    if (identity !== undefined && resumed && chain.length > 0) {
      try {
        verified = this.#verifier.verify(chain, identity.bundles);
        certificate = { presented: true };
      } catch (err) {
        certificate = { presented: true, error: err };
      }
    } else if (identity !== undefined && !resumed) {
      const presented = this.#verifier.verifyPresented(socket, identity.bundles);
      chain = presented.chain;
      verified = presented.result;
      if (chain.length > 0)
        certificate =
          verified !== undefined ? { presented: true } : { presented: true, error: presented.error };
    }
    const verdict = admitPeer(this.settings.mode, identity !== undefined, certificate);
    if (verdict.admit === false) {
      this.#refuse(raw, verdict);
      return undefined;
    }
    if (this.settings.resumption && !resumed) this.#remember(context, chain);
    const peer = buildPeer({ socket, verified, remoteAddress: raw.remoteAddress, resumed });
    return this.#admit(raw, socket, peer, false);
  }

  /**
   * Why a handshake OpenSSL aborted was bad, in the gate's own words: the chain the peer
   * presented, when OpenSSL kept it, verified as {@link admitTls} would. OpenSSL 3.0 (Node 20)
   * aborts on a tampered certificate signature where OpenSSL 3.5 (Node 24) completes the
   * handshake and lets the gate decide; this gives both the same reason. Undefined when no chain
   * was received, or it verifies (the handshake failed for another reason).
   */
  verdictOfFailedHandshake(
    socket: TLSSocket,
  ): { code: ErrorCode; message: string; peer: string | null; certificate: string | null } | undefined {
    const identity = this.identity();
    if (identity === undefined) return undefined;
    let chain: readonly Buffer[];
    try {
      chain = peerChainOf(socket);
    } catch {
      return undefined;
    }
    if (chain.length === 0) return undefined;
    try {
      this.#verifier.verify(chain, identity.bundles);
      return undefined;
    } catch (err) {
      const verdict = admitPeer(this.settings.mode, true, { presented: true, error: err });
      if (verdict.admit !== false || !isSidecarlessError(err)) return undefined;
      return {
        code: verdict.code,
        message: verdict.message,
        peer: verdict.peer,
        certificate: verdict.certificate,
      };
    }
  }

  #refuse(
    raw: Socket,
    verdict: {
      code: ErrorCode;
      message: string;
      end: 'reset' | 'destroy';
      peer: string | null;
      certificate: string | null;
    },
  ): void {
    const act = () =>
      this.reject(
        raw,
        'handshake',
        verdict.code,
        verdict.message,
        verdict.peer,
        verdict.certificate,
        verdict.end,
      );
    if (admissionTestHooks.refusalDelay > 0) setTimeout(act, admissionTestHooks.refusalDelay);
    else act();
  }

  /** Records an admitted full handshake, for the resumptions of its sessions under `context`. */
  #remember(context: SecureContext, chain: readonly Buffer[]): void {
    const records = this.#records.get(context);
    if (records === undefined) return;
    const leaf = chain[0];
    const key = leafKey(leaf === undefined ? undefined : fingerprintOf(leaf));
    records.delete(key);
    // Frozen: each resumption verifies this very array again, and its verdict key is kept with it.
    records.set(key, Object.freeze({ chain: Object.freeze([...chain]) }));
    if (records.size > RECORD_LIMIT) records.delete(records.keys().next().value as string);
  }

  #admit(raw: Socket, socket: object, peer: ReturnType<typeof buildPeer>, limited: boolean): Connection {
    setPeer(socket, peer);
    const edge = this.#edgeOf(peer, raw);
    this.edges.connected(edge, socket, null);
    const connection = this.tracker.add(raw, socket, peer, limited, edge);
    if (peer.mtls) this.totals.mtls++;
    else if (peer.tls) this.totals.tlsWithoutIdentity++;
    else this.totals.plaintext++;
    const event = peerEvent(peer, raw);
    this.#emitter.emit('peer', event);
    publishPeer(event);
    return connection;
  }
}
