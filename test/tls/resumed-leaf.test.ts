// The leaf a resumed server session is keyed by (src/server/server-core.ts) is read without the
// legacy certificate object: from the X509 API on Node 24, from the session's own encoding on
// Node 20. Whichever way, it must be exactly what getPeerCertificate() says, on TLS 1.2 and 1.3,
// and a session that is not OpenSSL's shape must not be read as one.

import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalCa } from '../../src/index.js';
import { fingerprintOf, sessionPeerLeafKey, sessionPeerLeafOf } from '../../src/tls/peer-chain.js';
import { leafOfSessionDer } from '../../src/tls/session-der.js';
import { credentialsOf, listen, tlsExchange } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const server = credentialsOf(ca.issue('/ns/demo/sa/boards'));
const client = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
const caPem = ca.bundle().toPem();
afterAll(() => ca.close());

interface Seen {
  readonly reused: boolean;
  readonly legacy: Buffer | undefined;
  readonly read: Buffer | undefined;
  readonly fromSession: Buffer | null | undefined;
  readonly key: string | undefined;
}

async function serve(requestCert: boolean) {
  const seen: Seen[] = [];
  const srv = tls.createServer(
    { ...server, ca: caPem, requestCert, rejectUnauthorized: false, sessionIdContext: 'resumed-leaf' },
    (socket) => {
      const raw = (socket.getPeerCertificate() as { raw?: Buffer } | null)?.raw;
      const session = socket.getSession();
      seen.push({
        reused: socket.isSessionReused(),
        legacy: Buffer.isBuffer(raw) ? raw : undefined,
        read: sessionPeerLeafOf(socket),
        fromSession: session === undefined ? undefined : leafOfSessionDer(session),
        key: sessionPeerLeafKey(socket),
      });
      socket.end('ok');
    },
  );
  const { port } = await listen(srv);
  return { seen, port };
}

describe.each(['TLSv1.2', 'TLSv1.3'] as const)('%s', (version) => {
  it("a resumed session's leaf is the full handshake's, read as getPeerCertificate() reads it", async () => {
    const { seen, port } = await serve(true);
    const options = { ...client, ca: caPem, maxVersion: version, minVersion: version };
    const first = await tlsExchange(port, options);
    const session = first.sessions.at(-1) ?? first.session;
    expect(session).toBeInstanceOf(Buffer);
    const second = await tlsExchange(port, { ...options, session });
    expect(second.reused).toBe(true);
    const [full, resumed] = seen;
    const leafDer = full?.legacy;
    expect(full?.reused).toBe(false);
    // A full handshake's session holds the same leaf as well.
    expect(full?.read?.equals(leafDer as Buffer)).toBe(true);
    expect(full?.fromSession?.equals(leafDer as Buffer)).toBe(true);
    expect(resumed?.reused).toBe(true);
    expect(leafDer).toBeInstanceOf(Buffer);
    expect(resumed?.legacy?.equals(leafDer as Buffer)).toBe(true);
    expect(resumed?.read?.equals(leafDer as Buffer)).toBe(true);
    // OpenSSL's session encoding holds the same leaf, on both Node lines.
    expect(resumed?.fromSession?.equals(leafDer as Buffer)).toBe(true);
    // The admission records' key: the same fingerprint however it is read (X509 API or DER).
    const fingerprint = new X509Certificate(leafDer as Buffer).fingerprint256;
    expect(fingerprintOf(leafDer as Buffer)).toBe(fingerprint);
    expect([full?.key, resumed?.key]).toEqual([fingerprint, fingerprint]);
  });

  it('a session whose client presented no certificate has no leaf', async () => {
    const { seen, port } = await serve(false);
    const options = { ca: caPem, maxVersion: version, minVersion: version };
    const first = await tlsExchange(port, options);
    const second = await tlsExchange(port, { ...options, session: first.sessions.at(-1) ?? first.session });
    expect(second.reused).toBe(true);
    expect(seen.map((s) => [s.reused, s.legacy, s.read, s.fromSession, s.key])).toEqual([
      [false, undefined, undefined, null, undefined],
      [true, undefined, undefined, null, undefined],
    ]);
  });
});

describe('leafOfSessionDer', () => {
  it('reads only a SEQUENCE of well-formed fields, and a [3] holding exactly one SEQUENCE', () => {
    expect(leafOfSessionDer(Buffer.alloc(0))).toBeUndefined();
    expect(leafOfSessionDer(Buffer.from('garbage'))).toBeUndefined();
    // A SEQUENCE whose length runs past the buffer.
    expect(leafOfSessionDer(Buffer.from([0x30, 0x05, 0x02, 0x01, 0x01]))).toBeUndefined();
    // Trailing bytes after the SEQUENCE.
    expect(leafOfSessionDer(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01, 0x00]))).toBeUndefined();
    // No [3]: no peer.
    expect(leafOfSessionDer(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]))).toBeNull();
    // [3] holding an INTEGER, not a certificate.
    expect(leafOfSessionDer(Buffer.from([0x30, 0x05, 0xa3, 0x03, 0x02, 0x01, 0x01]))).toBeUndefined();
    // [3] holding a SEQUENCE and something more.
    expect(
      leafOfSessionDer(Buffer.from([0x30, 0x07, 0xa3, 0x05, 0x30, 0x01, 0x00, 0x05, 0x00])),
    ).toBeUndefined();
    // [3] holding exactly one SEQUENCE (long-form length too).
    const inner = Buffer.concat([Buffer.from([0x30, 0x81, 0x80]), Buffer.alloc(0x80, 7)]);
    const field = Buffer.concat([Buffer.from([0xa3, 0x81, inner.length]), inner]);
    const der = Buffer.concat([Buffer.from([0x30, 0x81, field.length + 3, 0x02, 0x01, 0x01]), field]);
    expect(leafOfSessionDer(der)?.equals(inner)).toBe(true);
  });
});
