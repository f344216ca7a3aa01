import type http from 'node:http';
import type http2 from 'node:http2';
import type tls from 'node:tls';
import type { Peer } from '../authz/peer.js';
import { invalidOption } from '../internal/options.js';
import { createHttp1 } from './http1.js';
import { createHttp2 } from './http2.js';
import { checkServerOptions, type MtlsServerOptions } from './options.js';
import type { MtlsHttp2Server, MtlsHttpServer, MtlsTlsServer } from './server-types.js';
import { createTlsServer } from './tls-server.js';

/**
 * Creates a server that does, in-process, what a mesh sidecar's inbound listener did: mTLS with
 * SPIFFE identities (STRICT, PERMISSIVE or DISABLE), the peer's identity on every request, an
 * authorization map, and rotation without dropped connections.
 *
 * It returns a real Node server — an `http.Server` (`protocol: 'http1'`, the default), an
 * `http2.Http2SecureServer` (`'http2'`, with HTTP/1.1 by ALPN) or a `tls.Server` (`'tls'`) — so
 * `listen()`, `address()`, `close()` (draining), its events and frameworks (Express, Fastify's
 * `serverFactory`, Hono's node server) work unchanged. The listener itself looks at each new
 * connection's first byte: TLS goes through the handshake gate, plaintext is reset (STRICT),
 * served (PERMISSIVE, DISABLE) or refused (a TLS ClientHello under DISABLE). Only connections
 * whose peer passed every check reach the HTTP layer, and every request is authorized before any
 * listener or middleware runs.
 *
 * Events: `peer`, `reject`, `authorization`, `identityUpdate` (and the diagnostics_channel
 * {@link channels}). `describe()` reports the listener.
 *
 * @param options - identity, mode, protocol, authorization, limits
 * @param handler - the request listener (`(req, res)`), or for `'tls'` `(socket, peer)`
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option, `ERR_POLICY_INVALID` for a bad
 *   authorization map
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({
 *   identity: ca.identity('/ns/demo/sa/boards'),
 *   authorize: { 'GET /shareditems': 'spiffe://cluster.local/ns/demo/sa/app-ui', '*': 'spiffe://cluster.local/*' },
 * }, (req, res) => res.end(`hello ${getPeer(req).id}`));
 * server.listen(8080);
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions & { readonly protocol?: 'http1' },
  handler?: http.RequestListener,
): MtlsHttpServer;
/**
 * Creates an HTTP/2 server (with HTTP/1.1 by ALPN) with the mTLS of a mesh sidecar: see the
 * HTTP/1.1 overload for the whole contract.
 *
 * @param options - identity, mode, protocol `'http2'`, authorization, limits
 * @param handler - the request listener of the compatibility API
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards'), protocol: 'http2' }, (req, res) => res.end(`${getPeer(req).id}`));
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions & { readonly protocol: 'http2' },
  handler?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): MtlsHttp2Server;
/**
 * Creates a raw TLS server: the handler gets each socket whose peer passed every check, and that
 * peer. `authorize` is a peer matcher checked right after the handshake.
 *
 * @param options - identity, protocol `'tls'`, the peer matcher, limits
 * @param handler - called with the verified socket and its peer
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * createMtlsServer({ identity: ca.identity('/ns/db/sa/postgres'), protocol: 'tls', authorize: 'spiffe://cluster.local/ns/demo/*' },
 *   (socket, peer) => socket.end(`hello ${peer.id}\n`));
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions & { readonly protocol: 'tls' },
  handler?: (socket: tls.TLSSocket, peer: Peer) => void,
): MtlsTlsServer;
/**
 * A server whose protocol is not known statically (options typed `MtlsServerOptions`): see the
 * HTTP/1.1 overload. The handler is called as the protocol calls it.
 *
 * @param options - identity, mode, protocol, authorization, limits
 * @param handler - `(req, res)`, or for `'tls'` `(socket, peer)`
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type MtlsServerOptions } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const options: MtlsServerOptions = { identity: ca.identity('/ns/demo/sa/boards'), protocol: process.env.H2 ? 'http2' : 'http1' };
 * const server = createMtlsServer(options, (_req: unknown, res: { end(body: string): void }) => res.end('ok'));
 * ```
 */
export function createMtlsServer(
  options: MtlsServerOptions,
  handler?: (...args: never[]) => void,
): MtlsHttpServer | MtlsHttp2Server | MtlsTlsServer;
export function createMtlsServer(
  options: MtlsServerOptions,
  handler?: (...args: never[]) => void,
): MtlsHttpServer | MtlsHttp2Server | MtlsTlsServer {
  if (handler !== undefined && typeof handler !== 'function')
    throw invalidOption('handler', 'a function', handler);
  const settings = checkServerOptions(options);
  if (settings.protocol === 'http2') return createHttp2(settings, handler as never);
  if (settings.protocol === 'tls') return createTlsServer(settings, handler as never);
  return createHttp1(settings, handler as never);
}
