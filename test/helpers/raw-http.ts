// HTTP requests written byte for byte over TLS: http clients normalise or refuse odd targets
// (`//admin`, `/admin\x`, `OPTIONS *`), and authorization tests must send exactly those bytes.
import tls from 'node:tls';
import type { X509Bundle } from '../../src/index.js';
import type { ClientCredentials } from './server.js';

export interface RawResponse {
  /** The status code, or 0 when the server closed without answering. */
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}

/** A complete HTTP/1.1 request for `target`, verbatim, asking the server to close afterwards. */
export function requestText(method: string, target: string): string {
  return `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`;
}

/**
 * Connects over TLS presenting `client`, writes `request` as it is, and reads until the server
 * closes (bounded by `timeout`). A reset after a complete answer still resolves with the answer.
 */
export function rawTlsRequest(
  port: number,
  client: ClientCredentials | undefined,
  bundle: X509Bundle,
  request: string,
  timeout = 5_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: bundle.toPem(),
      ...(client ?? {}),
      ALPNProtocols: ['http/1.1'],
      // The server's SVID names a SPIFFE ID, not a host: these tests are about the server.
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of response within ${timeout} ms`));
    }, timeout);
    socket.once('secureConnect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      if (chunks.length === 0) {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')));
    });
  });
}

/** Splits a raw HTTP/1.1 response (the first one, if several) into status, head and body. */
export function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  let body = end === -1 ? '' : text.slice(end + 4);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length !== null) body = body.slice(0, Number(length[1]));
  else if (/\r\ntransfer-encoding: *chunked/i.test(head)) body = unchunk(body);
  return { status: status === null ? 0 : Number(status[1]), headers: head, body };
}

function unchunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    if (eol === -1) return out;
    const size = Number.parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}
