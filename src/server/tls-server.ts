import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Peer } from '../authz/peer.js';
import { nodeTls as tls } from '../internal/builtins.js';
import { acceptConnection, type Delivery, refuseUnknownDoor } from './accept.js';
import { authorizeConnection, compileServerPolicy } from './authorization.js';
import { watchDrops } from './http-settings.js';
import { takeListeners, wrapEmit } from './listener.js';
import type { ServerSettings } from './options.js';
import { ServerCore } from './server-core.js';
import { type MtlsTlsServer, serverExtras } from './server-types.js';

/**
 * Raw TLS: the public server is a `tls.Server`; the library runs each handshake, admits the peer,
 * authorizes the connection with the same policy and decision as HTTP, and only then emits
 * `secureConnection`.
 */
export function createTlsServer(
  settings: ServerSettings,
  handler: ((socket: TLSSocket, peer: Peer) => void) | undefined,
): MtlsTlsServer {
  const server = tls.createServer();
  const core = new ServerCore(settings, server);
  const policy = compileServerPolicy(settings);
  takeListeners(server, 'connection');
  const delivery: Delivery = {
    alpn: [],
    h2c: false,
    tls(connection, socket) {
      if (authorizeConnection(core, policy, connection)) emit('secureConnection', socket);
    },
    plaintext(raw) {
      // admitConnection never admits plaintext on a raw TLS listener.
      raw.destroy();
    },
  };
  const emit = wrapEmit(server, 'server', 'tls', {
    accept: (_e, _event, [socket]) => {
      acceptConnection(core, socket as Socket, 'tls', delivery);
      return true;
    },
    secure: (_e, event, [socket]) => {
      refuseUnknownDoor(core, event, [socket as TLSSocket]);
      return false;
    },
    unknown: (event, carried) => refuseUnknownDoor(core, event, carried),
  });
  if (handler !== undefined) {
    server.on('secureConnection', (socket: TLSSocket) => handler(socket, connectionPeer(core, socket)));
  }
  core.start();
  core.checkPolicyTrustDomains(policy);
  watchDrops(core, server);
  server.once('close', () => core.stop());
  return serverExtras(server, core, undefined) as MtlsTlsServer;
}

function connectionPeer(core: ServerCore, socket: TLSSocket): Peer {
  return (core.tracker.of(socket) as { peer: Peer }).peer;
}
