// The outside review's findings against the gate (issue 9), each reproduced as it was reported.
// Every test here failed before the door table; it uses the public API only.
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it, vi } from 'vitest';
import { createLocalCa, createMtlsServer, type RejectEvent } from '../../src/index.js';
import { credentialsOf, listen, onCleanup, record } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const identity = ca.identity('/ns/demo/sa/boards');
const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
const other = credentialsOf(ca.issue('/ns/demo/sa/other'));
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';

/** Writes `bytes` on a plaintext connection and reads until it closes (reset or not). */
function plaintext(port: number, bytes: string): Promise<{ text: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    let error: string | undefined;
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code;
    });
    socket.on('close', () => resolve({ text, error }));
  });
}

/** Writes `bytes` over TLS (ALPN http/1.1) presenting `client`; reads until close. */
function overTls(
  port: number,
  client: { cert: string; key: string } | undefined,
  bytes: string,
): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: ca.bundle().toPem(),
      ...(client ?? {}),
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    let text = '';
    socket.once('secureConnect', () => socket.write(bytes));
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(text));
  });
}

describe('finding 1: http2 also serves HTTP/1.1, through every HTTP/1.1 door', () => {
  it('a plaintext POST with Expect: 100-continue to a protected path never reaches checkContinue (STRICT, plaintextPaths)', async () => {
    const server = createMtlsServer({
      identity,
      protocol: 'http2',
      plaintextPaths: ['/healthz'],
      authorize: { '/healthz': 'unauthenticated', '*': UI },
    });
    const reached: string[] = [];
    server.on('checkContinue', (req, res) => {
      reached.push(req.url);
      res.writeContinue();
      res.end('leaked');
    });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const refused = await plaintext(
      port,
      'POST /admin HTTP/1.1\r\nhost: boards\r\nexpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi',
    );
    expect(refused.text).toBe('');
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_PLAINTEXT_REFUSED']);
    // Control: the probe path goes through the same door.
    const probe = await plaintext(
      port,
      'POST /healthz HTTP/1.1\r\nhost: boards\r\nexpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi',
    );
    expect(probe.text).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(reached).toEqual(['/healthz']);
  });

  it.each(['checkContinue', 'checkExpectation'] as const)(
    'over TLS with ALPN http/1.1, %s requests are authorized, reported and normalised',
    async (event) => {
      const server = createMtlsServer({
        identity,
        protocol: 'http2',
        authorize: { '/admin/*': UI, '*': '*' },
      });
      const urls: string[] = [];
      server.on(event, (req, res) => {
        urls.push(req.url);
        if (event === 'checkContinue') res.writeContinue();
        res.end('ok');
      });
      const decisions = record<{ allowed: boolean; path: string | null }>(server, 'authorization');
      const { port } = await listen(server);
      const expectation = event === 'checkContinue' ? '100-continue' : 'x-test';
      const send = (client: typeof ui) =>
        overTls(
          port,
          client,
          `POST //admin/./x HTTP/1.1\r\nhost: boards\r\nexpect: ${expectation}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
        );
      expect(await send(other)).toMatch(/^HTTP\/1\.1 403/);
      expect(await send(ui)).toMatch(/ok$/);
      expect(urls).toEqual(['/admin/x']);
      expect(decisions.map((d) => [d.allowed, d.path])).toEqual([
        [false, '/admin/x'],
        [true, '/admin/x'],
      ]);
    },
  );

  it('an HTTP/1.1 CONNECT on the http2 server is authorized like any request', async () => {
    const server = createMtlsServer({ identity, protocol: 'http2', authorize: { '/tunnel': UI } });
    let reached = 0;
    server.on('connect', (_req: unknown, socket: net.Socket) => {
      reached++;
      socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
    const { port } = await listen(server);
    expect(await overTls(port, other, 'CONNECT /tunnel HTTP/1.1\r\nhost: boards\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 403/,
    );
    expect(await overTls(port, ui, 'CONNECT /tunnel HTTP/1.1\r\nhost: boards\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 200/,
    );
    expect(reached).toBe(1);
  });
});

describe('finding 2: a refused HTTP/2 stream reaches no session listener', () => {
  it('a 403 stream and a reset h2c stream are seen by no session.on("stream") listener', async () => {
    const server = createMtlsServer({
      identity,
      protocol: 'http2',
      plaintextPaths: ['/healthz'],
      authorize: { '/healthz': 'unauthenticated', '/admin/*': UI, '*': '*' },
    });
    const seen: string[] = [];
    server.on('session', (session) =>
      session.on('stream', (stream, headers) => {
        seen.push(String(headers[':path']));
        stream.on('data', (d: Buffer) => seen.push(`body ${d}`));
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }),
    );
    const { port } = await listen(server);
    const call = (url: string, path: string, client?: typeof ui) =>
      new Promise<number>((resolve) => {
        const session = http2.connect(url, {
          ca: ca.bundle().toPem(),
          ...(client ?? {}),
          checkServerIdentity: () => undefined,
        });
        onCleanup(() => session.destroy());
        session.on('error', () => resolve(0));
        const req = session.request({ ':method': 'POST', ':path': path }, { endStream: false });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', () => resolve(0));
        req.on('close', () => resolve(0));
        req.end('secret body');
      });
    expect(await call(`https://127.0.0.1:${port}`, '/admin/x', other)).toBe(403);
    expect(await call(`http://127.0.0.1:${port}`, '/admin/x')).toBe(0); // plaintext outside plaintextPaths: reset
    expect(seen).toEqual([]);
    // Controls on the same server: the allowed peer and the probe path are seen, with their bodies.
    expect(await call(`https://127.0.0.1:${port}`, '/admin/x', ui)).toBe(200);
    expect(await call(`http://127.0.0.1:${port}`, '/healthz')).toBe(200);
    expect(seen.filter((s) => !s.startsWith('body'))).toEqual(['/admin/x', '/healthz']);
  });
});

describe('finding 4: a client that hangs up during or right after the handshake is freed at once', () => {
  const hangUps = {
    'a partial ClientHello, then close': (port: number) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00, 0x01]));
          setImmediate(() => socket.destroy());
        });
        socket.on('close', () => resolve());
      }),
    'its own checkServerIdentity refuses': (port: number) =>
      new Promise<void>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port,
          ca: ca.bundle().toPem(),
          ...ui,
          checkServerIdentity: () => new Error('not the server I expected'),
        });
        socket.on('error', () => {});
        socket.on('close', () => resolve());
      }),
    'it closes at secureConnect': (port: number) =>
      new Promise<void>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port,
          ca: ca.bundle().toPem(),
          ...ui,
          checkServerIdentity: () => undefined,
        });
        socket.on('secureConnect', () => socket.destroy());
        socket.on('error', () => {});
        socket.on('close', () => resolve());
      }),
  };

  describe.each(['http1', 'http2', 'tls'] as const)('%s', (protocol) => {
    it.each(Object.keys(hangUps) as (keyof typeof hangUps)[])(
      '%s: ERR_CLIENT_ABORTED, no socket held',
      async (name) => {
        // A handshake timeout far longer than the test: only noticing the close can pass.
        const server = createMtlsServer({ identity, protocol, handshakeTimeout: 120_000 });
        const rejects = record<RejectEvent>(server, 'reject');
        const { port } = await listen(server);
        await hangUps[name](port);
        await vi.waitFor(() =>
          expect(rejects.map((r) => [r.reason, r.phase])).toEqual([['ERR_CLIENT_ABORTED', 'handshake']]),
        );
        await vi.waitFor(
          () =>
            new Promise<void>((resolve, reject) =>
              server.getConnections((_, n) => (n === 0 ? resolve() : reject(new Error(`${n} open`)))),
            ),
        );
        expect(server.describe().totals.aborted).toBe(1);
      },
    );
  });

  it('server.close() after such a client completes instead of waiting for the handshake timeout', async () => {
    // Before, a script whose only work left was this close exited with code 13 and no message:
    // the held socket kept close() pending while nothing else kept the process alive.
    const server = createMtlsServer({ identity, handshakeTimeout: 120_000 });
    const { port } = await listen(server);
    await hangUps['a partial ClientHello, then close'](port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(server.listening).toBe(false);
  });
});

describe('STRICT tells a TLS client without a certificate with a TLS alert', () => {
  it('certificate_required (TLS 1.3), where a plaintext client is still reset', async () => {
    const server = createMtlsServer({ identity });
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const error = await new Promise<string | undefined>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: ca.bundle().toPem(),
        checkServerIdentity: () => undefined,
      });
      socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      socket.on('close', () => resolve(undefined));
    });
    expect(error).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    expect((await plaintext(port, 'GET / HTTP/1.1\r\n\r\n')).error).toBe('ECONNRESET');
    await vi.waitFor(() =>
      expect(rejects.map((r) => r.reason)).toEqual(['ERR_NO_CLIENT_CERTIFICATE', 'ERR_PLAINTEXT_REFUSED']),
    );
  });
});
