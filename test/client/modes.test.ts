import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import type { FallbackEvent } from '../../src/client/connect.js';
import type { Destinations } from '../../src/client/destinations.js';
import { createMtlsDispatcher, type MtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { isSidecarlessError } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { httpsServer, pemOf, plainServer, type TestServer, tcpServer } from '../helpers/client-servers.js';
import { useOpensslDir } from '../helpers/openssl.js';
import { onCleanup, record } from '../helpers/server.js';

const ca = createTestCa();
const client = ca.identity('/ns/demo/sa/app-ui');
const LEGACY = 'spiffe://cluster.local/ns/old/sa/legacy';
afterAll(() => ca.close());

function dispatcherWith(destinations: Destinations, connectTimeout?: number): MtlsDispatcher {
  const dispatcher = createMtlsDispatcher({
    identity: client,
    destinations,
    ...(connectTimeout === undefined ? {} : { connectTimeout }),
  });
  onCleanup(() => dispatcher.destroy());
  return dispatcher;
}

async function causeOf(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const err = await promise.then(
    () => expect.fail('the request succeeded'),
    (e: unknown) => e,
  );
  return (err as { cause: { code?: string; message: string } }).cause;
}

/** No HTTP request (line or body) reached the server in plaintext. */
function expectNoPlaintext(srv: TestServer<unknown>, body = 'secret'): void {
  const bytes = srv.bytes();
  expect(srv.seen).toEqual([]);
  expect(bytes.includes('HTTP/1.1')).toBe(false);
  expect(bytes.includes(body)).toBe(false);
}

describe('mtls mode', () => {
  it('refuses a plain HTTP server: ERR_PEER_NOT_TLS, no request byte sent in plaintext', async () => {
    const srv = await plainServer();
    const dispatcher = dispatcherWith({ '*': { expect: LEGACY } });
    const cause = await causeOf(
      undiciFetch(`http://127.0.0.1:${srv.port}/x`, { dispatcher, method: 'POST', body: 'secret' }),
    );
    expect(cause.code).toBe('ERR_PEER_NOT_TLS');
    expect(cause.message).toContain(`127.0.0.1:${srv.port}`);
    expectNoPlaintext(srv);
    // What the server got was a TLS ClientHello.
    expect(srv.bytes()[0]).toBe(0x16);
  });
});

describe('plaintext mode', () => {
  it('sends http:// in plaintext, and never lets a server claim an identity', async () => {
    const srv = await plainServer();
    const dispatcher = dispatcherWith({ '*': { mode: 'plaintext' } });
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/x`, {
      dispatcher,
      method: 'POST',
      body: 'hi',
    });
    expect(await res.json()).toMatchObject({ method: 'POST', body: 'hi', clientId: null });
    expect(res.headers.get(PEER_ID_HEADER)).toBeNull();
  });

  describe('https:// is never sent in plaintext', () => {
    const openssl = useOpensslDir();
    openssl.run(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
    );

    it('gets ordinary TLS: system roots and SNI (a self-signed server is refused)', async () => {
      const names: string[] = [];
      const srv = await httpsServer(
        { cert: openssl.readText('cert.pem'), key: openssl.readText('key.pem') },
        {
          SNICallback: (name, cb) => {
            names.push(name);
            cb(null, undefined);
          },
        },
      );
      const dispatcher = dispatcherWith({ '*': { mode: 'plaintext' } });
      const cause = await causeOf(
        undiciFetch(`https://localhost:${srv.port}/x`, { dispatcher, method: 'POST', body: 'secret' }),
      );
      expect(cause.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(names).toEqual(['localhost']);
      expect(srv.seen).toEqual([]);
      expect(srv.tcpConnections()).toBe(1);
    });
  });
});

describe('auto mode', () => {
  const destinations = (port: number): Destinations => ({
    [`127.0.0.1:${port}`]: { mode: 'auto', expect: LEGACY },
  });

  it('falls back when the server answers in plaintext: event emitted, POST body sent exactly once', async () => {
    const srv = await plainServer();
    const dispatcher = dispatcherWith(destinations(srv.port));
    const events = record<FallbackEvent>(dispatcher, 'fallback');
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/submit`, {
      dispatcher,
      method: 'POST',
      body: 'once-only',
    });
    expect(await res.json()).toMatchObject({ method: 'POST', url: '/submit', body: 'once-only' });
    expect(res.headers.get(PEER_ID_HEADER)).toBeNull();
    expect(events).toEqual([
      {
        destination: `127.0.0.1:${srv.port}`,
        address: `127.0.0.1:${srv.port}`,
        firstByte: 'H'.charCodeAt(0),
        reason: expect.stringContaining('0x48'),
      },
    ]);
    expect(srv.seen).toHaveLength(1);
    expect(srv.bytes().toString('latin1').split('once-only')).toHaveLength(2);
  });

  it('goes over mTLS to a server that speaks it, without a fallback', async () => {
    const srv = await httpsServer(pemOf(ca.issue('/ns/old/sa/legacy')));
    const dispatcher = dispatcherWith(destinations(srv.port));
    const events = record(dispatcher, 'fallback');
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/x`, {
      dispatcher,
      method: 'POST',
      body: 'abc',
    });
    expect(res.headers.get(PEER_ID_HEADER)).toBe(LEGACY);
    expect(await res.json()).toMatchObject({ body: 'abc' });
    expect(events).toEqual([]);
  });

  // An attacker on the path can forge any of these: none of them may lead to plaintext.
  const failures: [string, () => Promise<TestServer<unknown>>, string, number?][] = [
    [
      'a certificate failure',
      async () => httpsServer(pemOf(ca.issueBad('leaf-is-ca', '/ns/old/sa/legacy'))),
      'ERR_SVID_LEAF_IS_CA',
    ],
    [
      'an identity failure',
      async () => httpsServer(pemOf(ca.issue('/ns/old/sa/impostor'))),
      'ERR_PEER_ID_MISMATCH',
    ],
    [
      'a TLS alert',
      () =>
        tcpServer((s) =>
          s.once('data', () => s.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))),
        ),
      'ERR_HANDSHAKE_FAILED',
    ],
    ['an immediate close', () => tcpServer((s) => s.end()), 'ERR_HANDSHAKE_FAILED'],
    [
      'a close after the ClientHello',
      () => tcpServer((s) => s.once('data', () => s.end())),
      'ERR_HANDSHAKE_FAILED',
    ],
    ['a reset', () => tcpServer((s) => s.once('data', () => s.resetAndDestroy())), 'ERR_HANDSHAKE_FAILED'],
    ['a timeout', () => tcpServer(() => {}), 'ERR_TIMEOUT', 300],
  ];

  it.each(failures)('never falls back after %s: the request fails', async (_name, start, code, timeout) => {
    const srv = await start();
    const dispatcher = dispatcherWith(destinations(srv.port), timeout);
    const events = record(dispatcher, 'fallback');
    const cause = await causeOf(
      undiciFetch(`http://127.0.0.1:${srv.port}/x`, { dispatcher, method: 'POST', body: 'secret' }),
    );
    expect(isSidecarlessError(cause), String(cause)).toBe(true);
    expect(cause.code).toBe(code);
    expect(cause.message).toContain(`127.0.0.1:${srv.port}`);
    expect(events).toEqual([]);
    expectNoPlaintext(srv);
    expect(srv.tcpConnections()).toBe(1); // no second, plaintext attempt
  });

  it('never sends an https:// URL in plaintext, even to an auto destination', async () => {
    const srv = await plainServer();
    const dispatcher = dispatcherWith(destinations(srv.port));
    const events = record(dispatcher, 'fallback');
    const cause = await causeOf(
      undiciFetch(`https://127.0.0.1:${srv.port}/x`, { dispatcher, method: 'POST', body: 'secret' }),
    );
    expect(cause.code).toBe('ERR_PEER_NOT_TLS');
    expect(events).toEqual([]);
    expectNoPlaintext(srv);
  });
});
