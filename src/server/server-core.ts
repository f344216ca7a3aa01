import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { AuthorizationDecisionEvent } from '../authz/decision-event.js';
import type { ErrorCode } from '../errors.js';
import type { WorkloadIdentity } from '../identity/source.js';
import {
  authorizationObserved,
  type IdentityUpdateEvent,
  publishAuthorization,
  publishIdentityUpdate,
  publishPeer,
  publishReject,
  type RejectEvent,
  type RejectPhase,
} from '../observe/channels.js';
import { admitPeer, type PresentedCertificate } from '../policy/admission.js';
import { tlsMaterialOf } from '../tls/material.js';
import { buildPeer } from '../tls/peer.js';
import { peerChainOf } from '../tls/peer-chain.js';
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

/**
 * A server's state and decisions: the identity and TLS context in force, the handshake gate,
 * connection tracking and the events. Protocol wiring lives in http1.ts, http2.ts and
 * tls-server.ts; the doors in listener.ts.
 */
export class ServerCore {
  readonly settings: ServerSettings;
  readonly tracker: ConnectionTracker;
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

  constructor(settings: ServerSettings, emitter: EventEmitter) {
    this.settings = settings;
    this.#emitter = emitter;
    this.tracker = new ConnectionTracker(settings.maxConnectionAge, (connection, reason, message) =>
      this.reject(
        connection.raw,
        'connection',
        reason,
        message,
        connection.peer.id?.toString() ?? null,
        null,
      ),
    );
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
  }

  #apply(identity: WorkloadIdentity, report = true): void {
    const previous = this.#identity;
    this.#identity = identity;
    // Built once per identity: a context per handshake costs milliseconds (docs/server.md).
    this.#context = tls.createSecureContext(
      serverContextOptions(tlsMaterialOf(identity), this.settings.minVersion),
    );
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

  #report(event: RejectEvent): void {
    this.totals.rejected++;
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
    this.#report(event);
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
  admitTls(socket: TLSSocket, raw: Socket): Connection | undefined {
    const identity = this.identity();
    const chain = identity === undefined ? [] : peerChainOf(socket);
    let verified: VerifiedPeerChain | undefined;
    let certificate: PresentedCertificate = { presented: false };
    if (identity !== undefined && chain.length > 0) {
      try {
        verified = this.#verifier.verify(chain, identity.bundles);
        certificate = { presented: true };
      } catch (err) {
        certificate = { presented: true, error: err };
      }
    }
    const verdict = admitPeer(this.settings.mode, identity !== undefined, certificate);
    if (verdict.admit === false) {
      this.reject(
        raw,
        'handshake',
        verdict.code,
        verdict.message,
        verdict.peer,
        verdict.certificate,
        verdict.end,
      );
      return undefined;
    }
    const peer = buildPeer({ socket, verified, remoteAddress: raw.remoteAddress });
    return this.#admit(raw, socket, peer, false);
  }

  #admit(raw: Socket, socket: object, peer: ReturnType<typeof buildPeer>, limited: boolean): Connection {
    setPeer(socket, peer);
    const connection = this.tracker.add(raw, socket, peer, limited);
    if (peer.mtls) this.totals.mtls++;
    else if (peer.tls) this.totals.tlsWithoutIdentity++;
    else this.totals.plaintext++;
    const event = peerEvent(peer, raw);
    this.#emitter.emit('peer', event);
    publishPeer(event);
    return connection;
  }
}
