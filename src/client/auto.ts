import net from 'node:net';
import { Duplex } from 'node:stream';
import { nodeTls as tls } from '../internal/builtins.js';
import type { ConnectCallback, ConnectHooks } from './connect.js';
import { checkOwnSvid } from './refusal.js';
import { clientContextOf } from './secure-context.js';
import { awaitServer, capture, connectPlain, currentIdentity } from './sockets.js';
import type { Target } from './target.js';

/** TLS record content types (RFC 8446 §5.1): change_cipher_spec, alert, handshake, application_data. */
function isTlsRecordStart(byte: number): boolean {
  return byte >= 0x14 && byte <= 0x17;
}

/**
 * `auto` over http://: TLS runs over a JS stream fed from the raw socket, so the first byte the
 * server sends can be read before OpenSSL does (a TLSSocket on a TCP handle reads it in C++).
 * Only a first byte that cannot start a TLS record (a plain HTTP server answering the ClientHello
 * with "HTTP/1.1 400") leads to plaintext, on a new connection, before any request byte was
 * written: an alert, a bad certificate, a close, a reset or a timeout fail the request.
 */
export function connectAuto(hooks: ConnectHooks, target: Target, cb: ConnectCallback): void {
  const identity = currentIdentity(hooks, target);
  checkOwnSvid(identity, target);
  const raw = net.connect({
    host: target.host,
    port: target.port,
    ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
    ...(target.lookup === undefined ? {} : { lookup: target.lookup }),
    noDelay: true,
  });
  let sniffed = false;
  const bridge = new Duplex({
    read: () => {
      raw.resume();
    },
    write: (chunk, _encoding, done) => {
      raw.write(chunk, done);
    },
    final: (done) => {
      raw.end(done);
    },
    destroy: (err, done) => {
      raw.destroy();
      done(err);
    },
  });
  const onData = (chunk: Buffer) => {
    if (!sniffed) {
      sniffed = true;
      const first = chunk[0] as number;
      if (!isTlsRecordStart(first) && pending.abandon()) {
        fallBack(first);
        return;
      }
    }
    if (!bridge.push(chunk)) raw.pause();
  };
  raw.on('data', onData);
  raw.on('end', () => bridge.push(null));
  raw.on('error', (err) => bridge.destroy(err));
  const captured = capture();
  const socket = tls.connect({
    socket: bridge,
    ...(target.servername === undefined ? {} : { servername: target.servername }),
    secureContext: clientContextOf(identity),
    ...(hooks.alpn === undefined ? {} : { ALPNProtocols: hooks.alpn }),
    rejectUnauthorized: false,
    checkServerIdentity: captured.check,
  });
  const pending = awaitServer(socket, raw, target, hooks, identity.svid, captured.presented, cb);
  const fallBack = (first: number) => {
    raw.off('data', onData);
    socket.on('error', () => {});
    socket.destroy();
    raw.destroy();
    hooks.fallback(
      Object.freeze({
        destination: target.destination.key,
        address: target.address,
        firstByte: first,
        reason: `the server answered the TLS ClientHello with byte 0x${first.toString(16).padStart(2, '0')}, which does not start a TLS record`,
      }),
    );
    connectPlain(hooks, target, cb);
  };
}
