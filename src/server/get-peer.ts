import type { Peer } from '../authz/peer.js';
import { SidecarlessError } from '../errors.js';
import { peerOf } from '../tls/peer-registry.js';

/**
 * Anything getPeer() can read a peer from: a request, a response, an HTTP/2 stream or session, or
 * a socket.
 * @example
 * ```ts
 * import { getPeer, type PeerCarrier } from 'sidecarless';
 * const callerOf = (carrier: PeerCarrier) => getPeer(carrier).id?.toString() ?? 'anonymous';
 * ```
 */
export type PeerCarrier = object;

/**
 * Who is on the other end: for a server, the caller of a request; for a sidecarless client, the
 * verified server of a response. Computed once per connection (per session for HTTP/2), so this is
 * a lookup, not a check. Takes an HTTP/1.1 request (Express `req`, Fastify `request.raw`, Hono
 * `c.env.incoming`), an HTTP/2 request, stream or session, a client response, or the socket.
 *
 * @param target - the request, response, stream, session or socket
 * @returns `{ id, trustDomain, mtls, tls, certificate, chain, notAfter, remoteAddress, alpn, resumed }`
 * @throws SidecarlessError `ERR_NO_PEER` when no sidecarless server or client handled it
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards'), mode: 'PERMISSIVE' }, (req, res) => {
 *   const peer = getPeer(req);
 *   res.end(peer.mtls ? `hello ${peer.id}` : 'hello, plaintext caller');
 * });
 * ```
 */
export function getPeer(target: PeerCarrier): Peer {
  const found = typeof target === 'object' && target !== null ? lookup(target) : undefined;
  if (found === undefined) {
    throw new SidecarlessError(
      'ERR_NO_PEER',
      'getPeer(): no peer is known for this object; pass a request, response, stream or socket of a sidecarless server or client',
      {},
    );
  }
  return found;
}

function lookup(target: object): Peer | undefined {
  const direct = peerOf(target);
  if (direct !== undefined) return direct;
  const t = target as { stream?: { session?: object }; session?: object; socket?: object };
  // Http2ServerRequest/Response → stream → session; a stream → session; a request or response →
  // its socket.
  for (const next of [t.stream?.session, t.session, t.socket]) {
    if (next !== undefined && next !== null) {
      const peer = peerOf(next);
      if (peer !== undefined) return peer;
    }
  }
  return undefined;
}
