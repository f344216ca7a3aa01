import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Peer } from '../authz/peer.js';
import type { IdentitySource } from '../identity/source.js';
import type { FallbackEvent } from '../observe/client-events.js';
import type { PeerVerifier } from '../tls/peer-verifier.js';
import { connectAuto } from './auto.js';
import type { SessionCache } from './session-cache.js';
import { connectMtlsSocket, connectPlain, connectPlainTls } from './sockets.js';
import type { Target } from './target.js';

export type { FallbackEvent } from '../observe/client-events.js';

/** What the connectors need from the client that owns them. */
export interface ConnectHooks {
  readonly identity: IdentitySource;
  readonly verifier: PeerVerifier;
  /** TCP connect plus TLS handshake, in ms. */
  readonly connectTimeout: number;
  /** A server was authenticated; the socket is about to be handed over. */
  established(socket: TLSSocket, peer: Peer, target: Target): void;
  fallback(event: FallbackEvent): void;
  /** Ordinary TLS (system roots, hostname check, no SVID), for https:// to a plaintext destination. */
  plainTls(target: Target): TLSSocket;
  /**
   * Whether a clean close of a new connection, after the client wrote and before the server
   * answered, counts as a refusal (HTTP clients: a server answers every request) or stays a
   * close (connectMtls: a raw protocol's server may close without a word).
   */
  readonly closeIsRefusal: boolean;
  /** The ALPN protocols offered on mTLS connections (none when undefined). */
  readonly alpn?: string[] | undefined;
  /** The session cache, when resumption was asked for. */
  readonly sessions?: SessionCache | undefined;
}

export type ConnectCallback = (err: Error | null, socket?: Socket) => void;

/**
 * Makes the connection a destination calls for, and calls back with a socket only once it is
 * ready for requests (for mTLS: after the server was authenticated).
 */
export function connectTarget(hooks: ConnectHooks, target: Target, cb: ConnectCallback): void {
  try {
    const { mode } = target.destination;
    if (mode === 'plaintext') {
      if (target.protocol === 'https:') connectPlainTls(hooks, target, cb);
      else connectPlain(hooks, target, cb);
    } else if (mode === 'auto' && target.protocol === 'http:') {
      connectAuto(hooks, target, cb);
    } else {
      // https:// is never sent in plaintext, so an `auto` destination reached by https:// is `mtls`.
      connectMtlsSocket(hooks, target, cb);
    }
  } catch (err) {
    cb(err as Error);
  }
}
