import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { nodeHttp } from '../internal/builtins.js';
import { acceptConnection, type Delivery, refuseUnknownDoor } from './accept.js';
import { compileServerPolicy } from './authorization.js';
import { applyHttpTimeouts, watchDrops } from './http-settings.js';
import { takeListeners, wrapEmit } from './listener.js';
import type { ServerSettings } from './options.js';
import { RequestGate } from './requests.js';
import { ServerCore } from './server-core.js';
import { type MtlsHttpServer, serverExtras } from './server-types.js';

/**
 * HTTP/1.1: the public server is an `http.Server`; the library terminates TLS itself and hands
 * admitted sockets (TLS or plaintext) to http's own connection listener.
 */
export function createHttp1(
  settings: ServerSettings,
  handler: http.RequestListener | undefined,
): MtlsHttpServer {
  const server = nodeHttp.createServer({ maxHeaderSize: settings.maxHeaderSize }, handler);
  const core = new ServerCore(settings, server);
  applyHttpTimeouts(core, server);
  const policy = compileServerPolicy(settings);
  const gate = new RequestGate(core, policy);
  // http's own connection listener: only the gate calls it, with admitted sockets.
  const httpConnection = takeListeners(server, 'connection');
  const serve = (socket: object) => {
    for (const listener of httpConnection) listener(socket);
  };
  const delivery: Delivery = {
    alpn: ['http/1.1'],
    h2c: false,
    tls(_connection, socket) {
      serve(socket);
      emit('connection', socket);
    },
    plaintext(raw, _kind, limited) {
      core.admitPlaintext(raw, raw, limited);
      serve(raw);
      // A plaintext socket limited to plaintextPaths may carry requests the gate refuses:
      // connection listeners (which see its bytes) get only sockets admitted as a whole.
      if (!limited) emit('connection', raw);
      raw.resume();
    },
  };
  const emit = wrapEmit(server, 'server', 'http1', {
    accept: (_e, _event, [socket]) => {
      acceptConnection(core, socket as Socket, 'http1', delivery);
      return true;
    },
    request: (e, event, args) =>
      gate.request(args[0] as http.IncomingMessage, args[1] as http.ServerResponse) && e(event, ...args),
    upgrade: (e, event, args) =>
      gate.upgrade(args[0] as http.IncomingMessage, args[1] as Duplex) && e(event, ...args),
    unknown: (event, carried) => refuseUnknownDoor(core, event, carried),
  });
  core.start();
  core.checkPolicyTrustDomains(policy);
  watchDrops(core, server);
  server.once('close', () => core.stop());
  return serverExtras(server, core, policy) as MtlsHttpServer;
}
