import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * A JS stream over a sniffed plaintext socket, for HTTP/2 with prior knowledge. Node's http2
 * reads a socket's native handle directly, so the bytes the sniffer read and put back would be
 * lost; given a stream without a handle, http2 reads through JS and sees them (measured on Node 20
 * and 24). HTTP/1.1 does not need this: its parser also takes buffered data.
 */
export function h2cStream(raw: Socket): Duplex {
  const stream = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk, encoding, callback) {
      // The gate may have reset the connection (a refused plaintext request) while http2 still
      // had frames to send: they have nowhere to go.
      if (raw.destroyed) callback();
      else raw.write(chunk, encoding, callback);
    },
    final(callback) {
      raw.end(callback);
    },
    destroy(err, callback) {
      raw.destroy(err ?? undefined);
      callback(err);
    },
  });
  raw.on('data', (data: Buffer) => {
    if (!stream.push(data)) raw.pause();
  });
  raw.on('end', () => stream.push(null));
  raw.on('close', () => stream.destroy());
  // Socket errors are the raw socket's (it has its own listener); http2 sees the close.
  stream.on('error', () => {});
  for (const key of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(stream, key, { get: () => raw[key], enumerable: true });
  }
  // What http2 calls on its socket.
  Object.assign(stream, {
    setNoDelay: () => stream,
    setKeepAlive: () => stream,
    setTimeout: (ms: number, callback?: () => void) => {
      raw.setTimeout(ms, callback);
      return stream;
    },
  });
  return stream;
}
