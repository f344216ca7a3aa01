import type { Socket } from 'node:net';

/** What the first bytes of a connection say it is. */
export type Sniffed = 'tls' | 'http1' | 'h2c';

const TLS_HANDSHAKE = 0x16;
// RFC 9113 §3.4: an HTTP/2 prior-knowledge connection starts "PRI * HTTP/2.0"; no HTTP/1.1 method
// starts "PRI ".
const H2C_PREFIX = Buffer.from('PRI ', 'latin1');

function classify(bytes: Buffer, wantH2c: boolean): Sniffed | undefined {
  if (bytes[0] === TLS_HANDSHAKE) return 'tls';
  if (!wantH2c) return 'http1';
  const n = Math.min(bytes.length, H2C_PREFIX.length);
  if (!bytes.subarray(0, n).equals(H2C_PREFIX.subarray(0, n))) return 'http1';
  return bytes.length >= H2C_PREFIX.length ? 'h2c' : undefined;
}

/**
 * Reads a connection's first bytes and says what it is, then puts them back (`unshift`) and leaves
 * the socket paused for whoever takes it: a TLS socket must NOT resume it (TLSSocket drains the
 * buffer itself; resuming loses the ClientHello), an HTTP server must. A socket that sends nothing
 * before `timeoutMs` gets `onTimeout`; one whose client leaves first gets `onGone`. The sniff
 * itself costs nothing measurable (bench/README.md).
 */
export function sniff(
  raw: Socket,
  timeoutMs: number,
  wantH2c: boolean,
  onDecided: (kind: Sniffed) => void,
  onTimeout: () => void,
  onGone: () => void,
): void {
  // Most clients say what they are in their first chunk: nothing is allocated for it.
  let buffered: Buffer | undefined;
  const timer = setTimeout(() => {
    cleanup();
    onTimeout();
  }, timeoutMs);
  timer.unref();
  const onData = (chunk: Buffer) => {
    const bytes = buffered === undefined || buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    buffered = bytes;
    const kind = classify(bytes, wantH2c);
    if (kind === undefined) return;
    cleanup();
    raw.pause();
    raw.unshift(bytes);
    onDecided(kind);
  };
  // A client that closes before it has said what it is has left. http.Server sockets allow half-open
  // connections, so without this the server's half would stay until the deadline, holding a
  // maxConnections slot.
  const onEnd = () => {
    cleanup();
    onGone();
  };
  const cleanup = () => {
    clearTimeout(timer);
    raw.off('data', onData);
    raw.off('end', onEnd);
    raw.off('close', onEnd);
  };
  raw.on('data', onData);
  raw.once('end', onEnd);
  raw.once('close', onEnd);
}
