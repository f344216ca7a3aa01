// The payloads of clients' events and of the sidecarless:client:* channels.
import type { ErrorCode } from '../errors.js';

/**
 * What an `auto` destination reports when it falls back to plaintext.
 * @example
 * ```ts
 * import { createMtlsDispatcher, createLocalCa, type FallbackEvent } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui');
 * const dispatcher = createMtlsDispatcher({
 *   identity,
 *   destinations: { 'legacy:9000': { mode: 'auto', expect: 'spiffe://cluster.local/ns/old/sa/legacy' } },
 * });
 * dispatcher.on('fallback', (event: FallbackEvent) => console.warn('plaintext to', event.address, event.reason));
 * ```
 */
export interface FallbackEvent {
  /** The destination key that matched. */
  readonly destination: string;
  /** `host:port` of the server. */
  readonly address: string;
  /** The first byte the server sent, which is not the start of a TLS record. */
  readonly firstByte: number;
  /** Why, in words. */
  readonly reason: string;
}

/**
 * A client connection ready for requests, as `sidecarless:client:peer` publishes it: once per new
 * connection (not per response: `onPeer` and `getPeer()` are per response), mTLS or not.
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type ClientPeerEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.clientPeer, (message) => {
 *   const event = message as ClientPeerEvent;
 *   console.log(`${event.address}: ${event.mtls ? event.id : 'plaintext'} over ${event.keyExchange}`);
 * });
 * ```
 */
export interface ClientPeerEvent {
  /** The destination key that matched. */
  readonly destination: string;
  /** `host:port` of the server. */
  readonly address: string;
  /** The SPIFFE ID the server proved, or null without mTLS. */
  readonly id: string | null;
  /** True when the server was authenticated by its SVID. */
  readonly mtls: boolean;
  /** True when the connection is TLS (mTLS, or ordinary TLS to a plaintext destination). */
  readonly tls: boolean;
  /** The serial number of the server's leaf certificate, or null. */
  readonly serial: string | null;
  /** When the server's identity stops being valid, or null. */
  readonly notAfter: Date | null;
  /** The server's address as connected. */
  readonly remoteAddress: string | null;
  /** The ALPN protocol negotiated, or null. */
  readonly alpn: string | null;
  /** Whether the TLS session was resumed. */
  readonly resumed: boolean;
  /** The TLS version (`TLSv1.3`), or null for plaintext. */
  readonly tlsVersion: string | null;
  /** The key-exchange group (`X25519MLKEM768` on Node 24, `X25519` on Node 20), or null. */
  readonly keyExchange: string | null;
}

/**
 * A response a dispatcher or agent received, as `sidecarless:client:response` publishes it: once
 * per final response (or 101), with the identities on both ends. `sidecarless/metrics` counts these
 * as `istio_requests_total{reporter="source"}`.
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type ClientResponseEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.clientResponse, (message) => {
 *   const event = message as ClientResponseEvent;
 *   console.log(`${event.source} -> ${event.peer ?? event.address}: ${event.statusCode}`);
 * });
 * ```
 */
export interface ClientResponseEvent {
  /** The destination key that matched. */
  readonly destination: string;
  /** `host:port` of the server. */
  readonly address: string;
  /** This workload's SPIFFE ID (the client's SVID when it connected), or `unauthenticated` without one. */
  readonly source: string;
  /** The SPIFFE ID the server proved, or null without mTLS. */
  readonly peer: string | null;
  /** True when the server was authenticated by its SVID and our SVID was presented. */
  readonly mtls: boolean;
  /** The HTTP status of the response. */
  readonly statusCode: number;
}

/**
 * A client request or connection that failed a check, as `sidecarless:client:reject` publishes
 * it: the server was not who `expect` says, its chain did not verify, it refused us, our own SVID
 * was expired, or no destination matched.
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type ClientRejectEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.clientReject, (message) => {
 *   const event = message as ClientRejectEvent;
 *   console.warn(`${event.address ?? '?'}: ${event.reason} ${event.message}`);
 * });
 * ```
 */
export interface ClientRejectEvent {
  /** The stable error code (`ERR_PEER_ID_MISMATCH`, `ERR_SVID_UNTRUSTED`, `ERR_REFUSED_BY_SERVER`, …). */
  readonly reason: ErrorCode;
  /** `connect` (before the socket was handed over) or `request` (the server refused us after it). */
  readonly phase: 'connect' | 'request';
  /** The error's message (names the destination and the rule; never key material). */
  readonly message: string;
  /** The destination key that matched, or null when none did. */
  readonly destination: string | null;
  /** `host:port` of the server, or null when the host was invalid. */
  readonly address: string | null;
  /** The SPIFFE ID the server presented, when a certificate was refused for its ID. */
  readonly peer: string | null;
}
