// A client keeps its sessions without the server's certificate (src/tls/session-der.ts): the
// trimmed session must still resume, on TLS 1.2 and 1.3 and on every Node line (Node 22 and 24
// wrap the encoding with the server name it is for), must differ from Node's in that field only,
// and whatever is not exactly OpenSSL's shape must be offered as Node gave it.

import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalCa } from '../../src/index.js';
import { leafOfSessionDer, sessionDerOf, withoutSessionPeer } from '../../src/tls/session-der.js';
import { credentialsOf, listen, tlsExchange } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const server = credentialsOf(ca.issue('/ns/demo/sa/boards'));
const client = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
const caPem = ca.bundle().toPem();
afterAll(() => ca.close());

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const WRAPPER = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');

/** The top-level fields of a SEQUENCE (short or long lengths of up to 2 bytes), as buffers. */
function fieldsOf(der: Buffer): Buffer[] {
  const element = (at: number) => {
    const first = der[at + 1] as number;
    const bytes = first & 0x80 ? first & 0x7f : 0;
    let length = bytes === 0 ? first : 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[at + 2 + i] as number);
    return { contents: at + 2 + bytes, end: at + 2 + bytes + length };
  };
  const outer = element(0);
  expect(outer.end).toBe(der.length);
  const fields: Buffer[] = [];
  for (let at = outer.contents; at < outer.end; at = element(at).end) {
    fields.push(der.subarray(at, element(at).end));
  }
  return fields;
}

async function resumingServer() {
  const reused: boolean[] = [];
  const srv = tls.createServer(
    { ...server, ca: caPem, requestCert: true, sessionIdContext: 'session-der' },
    (socket) => {
      reused.push(socket.isSessionReused());
      socket.end('ok');
    },
  );
  const { port } = await listen(srv);
  return { port, reused };
}

describe.each(['TLSv1.2', 'TLSv1.3'] as const)('%s', (version) => {
  it("a session without the server's certificate resumes, and differs in that field only", async () => {
    const { port, reused } = await resumingServer();
    const options = { ...client, rejectUnauthorized: false, maxVersion: version, minVersion: version };
    const first = await tlsExchange(port, options);
    const session = first.sessions.at(-1) ?? first.session;
    expect(session).toBeInstanceOf(Buffer);
    const trimmed = withoutSessionPeer(session as Buffer);
    expect(trimmed.length).toBeLessThan((session as Buffer).length);
    // Node's wrapper (Node 22, 24: none on Node 20) kept byte for byte.
    const prefix = (session as Buffer).length - sessionDerOf(session as Buffer).length;
    expect(prefix > 0).toBe(NODE_MAJOR >= 22);
    expect(trimmed.subarray(0, prefix).equals((session as Buffer).subarray(0, prefix))).toBe(true);
    const before = sessionDerOf(session as Buffer);
    const after = sessionDerOf(trimmed);
    expect(leafOfSessionDer(before)).toBeInstanceOf(Buffer);
    expect(leafOfSessionDer(after)).toBeNull();
    const kept = fieldsOf(before).filter((field) => field[0] !== 0xa3);
    expect(fieldsOf(after)).toEqual(kept);
    // Trimming a trimmed session changes nothing.
    expect(withoutSessionPeer(trimmed)).toBe(trimmed);

    const second = await tlsExchange(port, { ...options, session: trimmed });
    expect(second.error).toBeUndefined();
    expect(second.data).toBe('ok');
    expect(second.reused).toBe(true);
    expect(reused).toEqual([false, true]);
  });
});

describe('withoutSessionPeer', () => {
  const seq = (...fields: Buffer[]) => {
    const body = Buffer.concat(fields);
    const length =
      body.length < 0x80
        ? [body.length]
        : body.length < 0x100
          ? [0x81, body.length]
          : [0x82, body.length >> 8, body.length & 0xff];
    return Buffer.concat([Buffer.from([0x30, ...length]), body]);
  };
  const int = Buffer.from([0x02, 0x01, 0x01]);
  const peer = (size: number) => {
    const cert = seq(Buffer.alloc(size, 7));
    return Buffer.concat([
      Buffer.from([
        0xa3,
        ...(cert.length < 0x80 ? [cert.length] : [0x82, cert.length >> 8, cert.length & 0xff]),
      ]),
      cert,
    ]);
  };

  it('returns whatever is not exactly a SEQUENCE of well-formed fields with one [3] as it is', () => {
    const unchanged = [
      Buffer.alloc(0),
      Buffer.from('garbage'),
      // A length past the buffer, trailing bytes, a field running past its SEQUENCE.
      Buffer.from([0x30, 0x05, 0x02, 0x01, 0x01]),
      Buffer.concat([seq(int, peer(4)), Buffer.from([0])]),
      Buffer.from([0x30, 0x03, 0x02, 0x05, 0x01]),
      // No [3]; two [3]s.
      seq(int, int),
      seq(int, peer(4), peer(4)),
      // Node's wrapper whose name runs past the buffer, or followed by something else.
      Buffer.concat([WRAPPER, Buffer.from([0x00, 0x40]), Buffer.from('127.0.0.1')]),
      Buffer.concat([WRAPPER, Buffer.from([0x00, 0x01]), Buffer.from('x'), Buffer.from('garbage')]),
      // Another version of the wrapper.
      Buffer.concat([
        Buffer.from('\0nodejs:tls:session:2\0', 'latin1'),
        Buffer.from([0, 1]),
        Buffer.from('x'),
        seq(int, peer(4)),
      ]),
    ];
    for (const session of unchanged) expect(withoutSessionPeer(session)).toBe(session);
  });

  it('drops the [3] field alone, re-encoding the outer length in its shortest form', () => {
    // 3 + 300 + 3 bytes of contents (long form, 2 bytes) down to 6 (short form).
    const big = seq(int, peer(290), int);
    expect(big[1]).toBe(0x82);
    expect(withoutSessionPeer(big)).toEqual(seq(int, int));
    // 200 bytes left: long form, 1 byte.
    const filler = Buffer.concat([Buffer.from([0x04, 0x81, 197]), Buffer.alloc(197, 1)]);
    expect(withoutSessionPeer(seq(filler, peer(10)))).toEqual(seq(filler));
    // Inside Node's wrapper, which is kept.
    const head = Buffer.concat([WRAPPER, Buffer.from([0x00, 0x09]), Buffer.from('127.0.0.1')]);
    const wrapped = Buffer.concat([head, seq(int, peer(4), int)]);
    expect(withoutSessionPeer(wrapped)).toEqual(Buffer.concat([head, seq(int, int)]));
  });
});
