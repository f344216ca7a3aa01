// OpenSSL's encoding of a TLS session (SSL_SESSION, ssl/ssl_asn1.c), read and trimmed without a
// general DER parser: a SEQUENCE of fields, each a low-numbered tag, whose `peer` is
// `[3] EXPLICIT Certificate OPTIONAL`. Whatever is not exactly that shape is left alone.

/** One DER element: its tag, and where its contents and the whole element end. */
interface DerElement {
  readonly tag: number;
  readonly start: number;
  readonly contents: number;
  readonly end: number;
}

function derElement(der: Buffer, start: number, limit: number): DerElement | undefined {
  if (start + 2 > limit) return undefined;
  const tag = der[start] as number;
  // Low tag numbers only: OpenSSL's session fields all are.
  if ((tag & 0x1f) === 0x1f) return undefined;
  let length = der[start + 1] as number;
  let contents = start + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || contents + bytes > limit) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[contents + i] as number);
    contents += bytes;
  }
  const end = contents + length;
  return end > limit ? undefined : { tag, start, contents, end };
}

const PEER_TAG = 0xa3; // [3] EXPLICIT, constructed
const SEQUENCE = 0x30;

/**
 * The SEQUENCE of an SSL_SESSION encoding that starts at `start` and ends the buffer, and its
 * `peer` field (undefined when it has none); undefined when the encoding is not that shape (a
 * malformed field, or more than one `peer`).
 */
function sessionFieldsOf(der: Buffer, start: number): { outer: DerElement; peer?: DerElement } | undefined {
  const outer = derElement(der, start, der.length);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.end !== der.length) return undefined;
  let peer: DerElement | undefined;
  for (let at = outer.contents; at < outer.end; ) {
    const field = derElement(der, at, outer.end);
    if (field === undefined || (field.tag === PEER_TAG && peer !== undefined)) return undefined;
    if (field.tag === PEER_TAG) peer = field;
    at = field.end;
  }
  return peer === undefined ? { outer } : { outer, peer };
}

/**
 * The peer certificate of an OpenSSL SSL_SESSION encoding (ssl_asn1.c: a SEQUENCE whose field
 * `peer` is `[3] EXPLICIT Certificate OPTIONAL`): its DER, null when the session has no peer, or
 * undefined when the encoding is not that shape (the caller then asks Node).
 */
export function leafOfSessionDer(der: Buffer): Buffer | null | undefined {
  const fields = sessionFieldsOf(der, 0);
  if (fields?.peer === undefined) return fields === undefined ? undefined : null;
  const { peer } = fields;
  const cert = derElement(der, peer.contents, peer.end);
  if (cert === undefined || cert.tag !== SEQUENCE || cert.end !== peer.end) return undefined;
  return der.subarray(cert.start, cert.end);
}

/** Node's wrapper of a client session (Node 22, 24): this prefix, a 16-bit length, the server name. */
const NODE_SESSION_PREFIX = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');

/**
 * Where the SSL_SESSION encoding of a client session starts: after Node's wrapper, which says
 * which server name the session was made for and must stay as it is (Node 24 offers a wrapped
 * session to that name only); 0 when there is none.
 */
function sessionDerStart(session: Buffer): number {
  const prefix = NODE_SESSION_PREFIX.length;
  if (session.length < prefix + 2 || !session.subarray(0, prefix).equals(NODE_SESSION_PREFIX)) return 0;
  return prefix + 2 + session.readUInt16BE(prefix);
}

/** The SSL_SESSION encoding of a client session, inside Node's wrapper when there is one. */
export function sessionDerOf(session: Buffer): Buffer {
  return session.subarray(sessionDerStart(session));
}

/** A DER length, in its shortest form. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/**
 * A client session without the server's certificate, to offer again: decoding that certificate
 * is most of what `setSession` costs (about 45 µs per connection on Node 24, 120 µs on Node 20,
 * against 3 µs without it; docs/node-tls.md §2), and a resuming client never reads it: OpenSSL
 * checks no certificate on a resumption, Node exposes none (docs/node-tls.md §2), and the library
 * checks the Peer its full handshake verified (client/session-cache.ts). Every other field, the
 * ticket and Node's wrapper included, is kept byte for byte. A session that is not exactly the
 * expected shape, or has no certificate, is returned as it is.
 */
export function withoutSessionPeer(session: Buffer): Buffer {
  const start = sessionDerStart(session);
  const fields = sessionFieldsOf(session, start);
  if (fields?.peer === undefined) return session;
  const { outer, peer } = fields;
  const contents = outer.end - outer.contents - (peer.end - peer.start);
  return Buffer.concat([
    session.subarray(0, start),
    Buffer.from([SEQUENCE]),
    derLength(contents),
    session.subarray(outer.contents, peer.start),
    session.subarray(peer.end, outer.end),
  ]);
}
