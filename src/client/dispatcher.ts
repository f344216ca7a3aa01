import type { Agent } from 'undici';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import type { FallbackEvent } from './connect.js';
import { CLIENT_OPTIONS, type ClientReport, type MtlsClientOptions } from './core.js';
import { mtlsAgentClass } from './mtls-agent.js';
import type { OnPeer } from './peer-handler.js';

/**
 * Options of {@link createMtlsDispatcher}: the client options, undici pool settings, and `onPeer`.
 * @example
 * ```ts
 * import { createLocalCa, type MtlsDispatcherOptions } from 'sidecarless';
 * const options: MtlsDispatcherOptions = {
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { '*.demo.svc.cluster.local': { expect: 'spiffe://cluster.local/ns/demo/*' } },
 *   connections: 16,
 *   onPeer: (peer, request) => console.log(request.path, 'answered by', peer.id?.toString()),
 * };
 * ```
 */
export interface MtlsDispatcherOptions extends MtlsClientOptions {
  /**
   * Called with the verified server of every response over mTLS, before the caller gets the
   * response (the `x-sidecarless-peer-id` header carries the same ID). A throw fails the request.
   */
  readonly onPeer?: OnPeer;
  /** Connections per origin (default: unlimited, as undici). */
  readonly connections?: number;
  /** Idle keep-alive time of a pooled connection, in ms (default 4 000, as undici). */
  readonly keepAliveTimeout?: number;
  /** Longest keep-alive time a server may ask for, in ms (default 600 000). */
  readonly keepAliveMaxTimeout?: number;
  /** How long to wait for response headers, in ms (default 300 000). */
  readonly headersTimeout?: number;
  /** How long a response body may stall, in ms (default 300 000). */
  readonly bodyTimeout?: number;
  /**
   * Speak HTTP/2 with servers that choose it (default false). TLS connections then offer ALPN
   * `['h2', 'http/1.1']` instead of `['http/1.1']`, and a connection whose server picks `h2`
   * carries up to 100 requests at once (HTTP/2 streams; the first request to an origin opens it). Secure naming is the same for both: the server is
   * authenticated by its SPIFFE ID before any request byte is written, responses carry
   * {@link PEER_ID_HEADER} and reach `onPeer`, and rotation retires HTTP/2 connections as it
   * does HTTP/1.1 ones (closed once no request is in flight on them). Plaintext destinations
   * stay HTTP/1.1 (no h2c).
   */
  readonly allowH2?: boolean;
}

/**
 * An undici `Dispatcher` that makes mTLS connections with the workload's SVID and authenticates
 * each server by its SPIFFE ID. Besides undici's events, it emits `fallback` ({@link FallbackEvent})
 * whenever an `auto` destination is reached in plaintext.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsDispatcher, type MtlsDispatcher } from 'sidecarless';
 * const dispatcher: MtlsDispatcher = createMtlsDispatcher({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { '*': { mode: 'auto', expect: '*' } },
 * });
 * dispatcher.on('fallback', (event) => console.warn(`plaintext to ${event.address}`));
 * await dispatcher.close();
 * ```
 */
export interface MtlsDispatcher extends Agent, AsyncDisposable {
  /**
   * This workload's identity and its outbound edges: per destination `host:port`, requests,
   * share over mTLS, last seen, last refusal, TLS version and key-exchange group.
   */
  describe(): ClientReport;
  /** An `auto` destination fell back to plaintext: the server does not speak TLS. */
  on(eventName: 'fallback', listener: (event: FallbackEvent) => void): this;
  /** undici's own events (`connect`, `disconnect`, `connectionError`, `drain`). */
  on(eventName: string | symbol, listener: (...args: never[]) => void): this;
  /** See `on('fallback')`. */
  once(eventName: 'fallback', listener: (event: FallbackEvent) => void): this;
  /** undici's own events, once. */
  once(eventName: string | symbol, listener: (...args: never[]) => void): this;
  /** Removes a `fallback` listener. */
  off(eventName: 'fallback', listener: (event: FallbackEvent) => void): this;
  /** Removes a listener of undici's own events. */
  off(eventName: string | symbol, listener: (...args: never[]) => void): this;
}

const OWN_OPTIONS = [
  'onPeer',
  'connections',
  'keepAliveTimeout',
  'keepAliveMaxTimeout',
  'headersTimeout',
  'bodyTimeout',
  'allowH2',
] as const;

/** The dispatcher's options, checked before undici is loaded: unknown keys and bad values throw. */
function checkDispatcherOptions(options: MtlsDispatcherOptions): MtlsDispatcherOptions {
  const opts = checkOptions<MtlsDispatcherOptions>(
    options,
    [...CLIENT_OPTIONS, ...OWN_OPTIONS],
    'createMtlsDispatcher',
  );
  if (opts.onPeer !== undefined && typeof opts.onPeer !== 'function') {
    throw invalidOption('onPeer', 'a function', opts.onPeer);
  }
  if (opts.connections !== undefined && !(Number.isInteger(opts.connections) && opts.connections > 0)) {
    throw invalidOption('connections', 'a positive integer', opts.connections);
  }
  for (const field of ['keepAliveTimeout', 'keepAliveMaxTimeout', 'headersTimeout', 'bodyTimeout'] as const) {
    durationOption(field, opts[field], 1);
  }
  if (opts.allowH2 !== undefined && typeof opts.allowH2 !== 'boolean') {
    throw invalidOption('allowH2', 'a boolean', opts.allowH2);
  }
  return opts;
}

/**
 * Creates an undici `Dispatcher` that does what a sidecar did for outbound calls: it presents the
 * workload's SVID and authenticates each server by its SPIFFE ID (secure naming), per destination.
 * Works with undici's `fetch`/`request` and, through `setGlobalDispatcher`, with Node's global
 * `fetch` (Node 20 and 24).
 *
 * - `http://` URLs to an `mtls` destination go over mTLS (the app code does not change); `https://`
 *   URLs too. An `https://` URL is never sent in plaintext: to a `plaintext` destination it gets
 *   ordinary TLS (system roots, hostname verification, no SVID).
 * - The server's chain is verified against the bundle of its own trust domain and its ID matched
 *   against `expect`, before any request byte is written; this replaces hostname verification.
 *   SNI is the URL's host name (none for IP literals).
 * - The destination of a connection is the strictest among every host it may reach (see
 *   {@link Destinations}): its canonical spelling (an IPv4-mapped IPv6 address is the IPv4
 *   address), its search-domain names, and, when some key is an IP literal, every address the
 *   name resolves to: the dispatcher resolves it once per new connection and connects only to
 *   those addresses. An IPv6 zone id is refused (`ERR_HOST_INVALID`).
 * - Before connecting it checks its own SVID (`ERR_OWN_SVID_EXPIRED`,
 *   `ERR_OWN_SVID_NOT_YET_VALID`). A new connection the server resets or closes after the first
 *   request was written and before any answer, or answers with a certificate alert, fails with
 *   `ERR_REFUSED_BY_SERVER`: under TLS 1.3 that is how a server that does not trust this
 *   workload refuses it. Resets on connections that have answered keep undici's errors.
 * - New connections use the identity's current SVID and bundles (one TLS context per identity
 *   generation); pooled connections stay until they close, the server certificate expires, or new
 *   bundles no longer verify the server. No TLS session is resumed unless `resumption: true`: then
 *   the server identity verified by the full handshake is kept with the session and checked again,
 *   against a server that binds its tickets to its identity (a sidecarless server with
 *   `resumption: true` does).
 * - Each response from an authenticated server carries its SPIFFE ID in the
 *   {@link PEER_ID_HEADER} header, informational (1xx) and 101 responses too; any such header a
 *   server sends is removed, from trailers as well. `onPeer` gets the whole `Peer`.
 *
 * @param options - identity, destinations, timeouts, pool settings, `onPeer`
 * @returns the dispatcher; `close()` it when done
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option or destination (a missing `expect`
 *   names the key), `ERR_POLICY_INVALID` for a bad `expect` matcher. Requests fail (through
 *   fetch's `cause`) with `ERR_HOST_INVALID`, `ERR_NO_DESTINATION`, `ERR_NO_IDENTITY`,
 *   `ERR_OWN_SVID_EXPIRED`, `ERR_OWN_SVID_NOT_YET_VALID`, `ERR_PEER_ID_MISMATCH`, `ERR_SVID_*`,
 *   `ERR_PEER_NOT_TLS`, `ERR_HANDSHAKE_FAILED`, `ERR_REFUSED_BY_SERVER` or `ERR_TIMEOUT`, naming
 *   the destination.
 * @example
 * ```ts
 * import { setGlobalDispatcher } from 'undici';
 * import { createLocalCa, createMtlsDispatcher, PEER_ID_HEADER } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui');
 * const dispatcher = createMtlsDispatcher({
 *   identity,
 *   destinations: {
 *     'boards.demo.svc.cluster.local:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' },
 *     'legacy:9000': { mode: 'auto', expect: 'spiffe://cluster.local/ns/old/sa/legacy' },
 *     '*': { mode: 'plaintext' },
 *   },
 * });
 * setGlobalDispatcher(dispatcher);
 * const res = await fetch('http://boards.demo.svc.cluster.local:8080/shareditems'); // mTLS on the wire
 * console.log(res.headers.get(PEER_ID_HEADER)); // spiffe://cluster.local/ns/demo/sa/boards
 * ```
 */
export function createMtlsDispatcher(options: MtlsDispatcherOptions): MtlsDispatcher {
  const opts = checkDispatcherOptions(options);
  const MtlsAgent = mtlsAgentClass();
  return new MtlsAgent(opts);
}
