import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { AuthorizationDecisionEvent } from '../authz/decision-event.js';
import type { Peer } from '../authz/peer.js';
import { type ErrorCode, isSidecarlessError } from '../errors.js';
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
import { tlsMaterialOf } from '../tls/material.js';
import { peerChainOf } from '../tls/peer-chain.js';
import { setPeer } from '../tls/peer-registry.js';
import { PeerVerifier } from '../tls/peer-verifier.js';
import { type Connection, ConnectionTracker } from './connections.js';
import { serverContextOptions } from './context.js';
import type { ServerSettings } from './options.js';
import { mtlsPeer, peerEvent, plaintextPeer, tlsOnlyPeer } from './peers.js';

/** Counters for describe(): how many connections of each kind were accepted, and refusals. */
export interface ServerTotals {
  mtls: number;
  tlsWithoutIdentity: number;
  plaintext: number;
  rejected: number;
  denied: number;
}

/**
 * A server's state and decisions: the identity in force, the handshake gate, connection tracking
 * and the events. Protocol wiring (http1, http2, tls) lives in create-server.ts; this holds what is
 * common to all three.
 */
export class ServerCore {
  readonly settings: ServerSettings;
  readonly tracker: ConnectionTracker;
  readonly totals: ServerTotals = { mtls: 0, tlsWithoutIdentity: 0, plaintext: 0, rejected: 0, denied: 0 };
  /** HTTP/2 sessions and their connection (a session's socket is a proxy, or a JS stream wrapper). */
  readonly sessions = new WeakMap<object, Connection>();
  /** The connection being handed to http2 right now: its 'session' event fires synchronously. */
  admitting: Connection | undefined;
  readonly #emitter: EventEmitter;
  readonly #verifier = new PeerVerifier('client');
  #identity: WorkloadIdentity | undefined;
  #unsubscribe: (() => void) | undefined;
  #applyContext: ((options: SecureContextOptions) => void) | undefined;

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

  /** The identity in force, or undefined when the source has none (new handshakes fail closed). */
  identity(): WorkloadIdentity | undefined {
    const source = this.settings.identity;
    if (source === undefined) return undefined;
    try {
      const identity = source.current();
      if (identity !== this.#identity) this.#apply(identity);
      return identity;
    } catch {
      if (this.#identity !== undefined) {
        // The source withdrew the identity (revoked, expired): connections made with it end.
        this.#identity = undefined;
        this.tracker.closeEncrypted('ERR_NO_IDENTITY', 'the server identity was withdrawn');
      }
      return undefined;
    }
  }

  /**
   * Follows the identity source: every accepted update installs a complete new secure context
   * (new handshakes use it at once; live connections keep theirs) and re-verifies open
   * connections when the bundles changed.
   */
  start(applyContext: (options: SecureContextOptions) => void): SecureContextOptions | undefined {
    this.#applyContext = applyContext;
    const source = this.settings.identity;
    if (source === undefined) return undefined;
    const unsubscribe = source.subscribe((identity) => this.#apply(identity));
    // Sources that report withdrawal (Workload API redaction, expiry): act at once, so open
    // connections made with a withdrawn SVID end now rather than on their next request.
    const observable = source as {
      on?: (event: 'withdrawn', listener: () => void) => (() => void) | unknown;
    };
    const off =
      typeof observable.on === 'function' ? observable.on('withdrawn', () => this.identity()) : undefined;
    this.#unsubscribe = () => {
      unsubscribe();
      if (typeof off === 'function') off();
    };
    try {
      const identity = source.current();
      this.#identity = identity;
      return serverContextOptions(tlsMaterialOf(identity), this.settings.minVersion);
    } catch {
      return undefined;
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #apply(identity: WorkloadIdentity): void {
    const previous = this.#identity;
    this.#identity = identity;
    this.#applyContext?.(serverContextOptions(tlsMaterialOf(identity), this.settings.minVersion));
    const bundlesChanged = previous !== undefined && !previous.bundles.equals(identity.bundles);
    const closedConnections = bundlesChanged ? this.tracker.reverify(identity.bundles) : 0;
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

  /** Reports a refusal of a connection the server never saw as a socket (a dropped one). */
  rejectInfo(
    from: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined },
    phase: RejectPhase,
    reason: ErrorCode,
    message: string,
  ): void {
    this.totals.rejected++;
    const event: RejectEvent = Object.freeze({
      reason,
      phase,
      message,
      remoteAddress: from.remoteAddress ?? null,
      remotePort: from.remotePort ?? null,
      peer: null,
      certificate: null,
    });
    this.#emitter.emit('reject', event);
    publishReject(event);
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
    this.totals.rejected++;
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
    this.#emitter.emit('reject', event);
    publishReject(event);
  }

  /** Admits a plaintext connection: records its peer. */
  admitPlaintext(raw: Socket, socket: object): Connection {
    const peer = plaintextPeer(raw);
    return this.#admit(raw, socket, peer, undefined);
  }

  /**
   * The handshake gate. Runs synchronously in 'secureConnection', before the protocol layer sees
   * the socket: the peer's whole chain is verified against the bundle of its own trust domain.
   * Returns the admitted connection, or undefined after refusing it (the socket is closed).
   */
  admitTls(socket: TLSSocket, raw: Socket): Connection | undefined {
    const identity = this.identity();
    if (identity === undefined) {
      this.reject(
        raw,
        'handshake',
        'ERR_NO_IDENTITY',
        'the server has no identity: mTLS is refused',
        null,
        null,
        'destroy',
      );
      return undefined;
    }
    const chain = peerChainOf(socket);
    if (chain.length === 0) {
      if (this.settings.mode === 'PERMISSIVE')
        return this.#admit(raw, socket, tlsOnlyPeer(socket, raw), undefined);
      this.reject(
        raw,
        'handshake',
        'ERR_NO_CLIENT_CERTIFICATE',
        'mTLS is required: the client presented no certificate',
        null,
        null,
        'reset',
      );
      return undefined;
    }
    try {
      const verified = this.#verifier.verify(chain, identity.bundles);
      return this.#admit(raw, socket, mtlsPeer(socket, raw, verified), chain);
    } catch (err) {
      // An invalid certificate is refused in every mode: never downgraded to "unauthenticated".
      const code: ErrorCode = isSidecarlessError(err) ? err.code : 'ERR_HANDSHAKE_FAILED';
      const detail = isSidecarlessError(err) ? err.detail : {};
      this.reject(
        raw,
        'handshake',
        code,
        (err as Error).message,
        detail.peer ?? null,
        detail.certificate ?? null,
        'reset',
      );
      return undefined;
    }
  }

  #admit(raw: Socket, socket: object, peer: Peer, chain: readonly Buffer[] | undefined): Connection {
    setPeer(socket, peer);
    const connection = this.tracker.add(raw, socket, peer, chain);
    if (peer.mtls) this.totals.mtls++;
    else if (peer.tls) this.totals.tlsWithoutIdentity++;
    else this.totals.plaintext++;
    const event = peerEvent(peer, raw);
    this.#emitter.emit('peer', event);
    publishPeer(event);
    return connection;
  }
}
