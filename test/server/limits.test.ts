import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  createLocalCa,
  createMtlsServer,
  type MtlsMode,
  type MtlsServerOptions,
  type RejectEvent,
  type ServerProtocol,
} from '../../src/index.js';
import { expectCode } from '../helpers/expect-code.js';
import {
  agentRequest,
  closed,
  credentialsOf,
  keepAliveAgent,
  listen,
  mtlsRequest,
  onCleanup,
  plainRequest,
  record,
  tlsExchange,
} from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ca.close());
const identity = ca.identity('/ns/demo/sa/boards');
const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));

/** A sidecarless server of any protocol, listening, answering `ok`. */
async function serve(options: MtlsServerOptions) {
  const server =
    options.protocol === 'tls'
      ? createMtlsServer({ ...options, protocol: 'tls' }, (socket) => socket.end('ok'))
      : createMtlsServer(options as MtlsServerOptions & { protocol?: 'http1' }, (_req, res) => res.end('ok'));
  const rejects = record<RejectEvent>(server, 'reject');
  const { port } = await listen(server);
  return { server, port, rejects };
}

/** A client that does everything right for the server's mode and protocol: its answer. */
async function wellBehaved(port: number, mode: MtlsMode, protocol: ServerProtocol): Promise<string> {
  if (mode === 'DISABLE') return (await plainRequest(port, '/')).body;
  if (protocol !== 'tls') return (await mtlsRequest(port, '/', ui, ca.bundle())).body;
  return (await tlsExchange(port, { ...ui, ca: ca.bundle().toPem() })).data;
}

/** A TCP client that sends `bytes` (or nothing) and then waits; destroyed after the test. */
async function stall(port: number, bytes?: Buffer | string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  onCleanup(() => socket.destroy());
  socket.on('error', () => {}); // a reset is an expected answer
  await new Promise((resolve) => socket.once('connect', resolve));
  if (bytes !== undefined) socket.write(bytes);
  return socket;
}

describe('the sniff deadline', () => {
  it.each([
    ['http1', 'STRICT'],
    ['http1', 'PERMISSIVE'],
    ['http1', 'DISABLE'],
    ['http2', 'STRICT'],
    ['http2', 'PERMISSIVE'],
    ['tls', 'STRICT'],
  ] as const)('%s %s: a silent connection is closed after sniffTimeout', async (protocol, mode) => {
    const { port, rejects } = await serve({
      protocol,
      mode,
      sniffTimeout: 200,
      ...(mode === 'DISABLE' ? {} : { identity }),
    });
    const silent = await stall(port);
    const remotePort = silent.localPort;
    await closed(silent);
    expect(rejects).toMatchObject([
      { reason: 'ERR_SNIFF_TIMEOUT', phase: 'sniff', remoteAddress: '127.0.0.1', remotePort },
    ]);
    // Control: a client that speaks at once is served.
    expect(await wellBehaved(port, mode, protocol)).toBe('ok');
    expect(rejects).toHaveLength(1);
  });

  it('PERMISSIVE http2: a connection that stops inside the h2c preface is closed too', async () => {
    const { port, rejects } = await serve({
      protocol: 'http2',
      mode: 'PERMISSIVE',
      identity,
      sniffTimeout: 200,
    });
    await closed(await stall(port, 'PR'));
    expect(rejects).toMatchObject([{ reason: 'ERR_SNIFF_TIMEOUT', phase: 'sniff' }]);
  });
});

describe('handshakeTimeout', () => {
  it.each(['http1', 'http2', 'tls'] as const)(
    '%s: a client that sends the first byte of a ClientHello and stalls is closed',
    async (protocol) => {
      const { port, rejects } = await serve({ protocol, identity, handshakeTimeout: 300 });
      await closed(await stall(port, Buffer.from([0x16])));
      expect(rejects).toMatchObject([{ reason: 'ERR_HANDSHAKE_TIMEOUT', phase: 'handshake' }]);
      expect(rejects[0]?.message).toMatch(/within 300 ms/);
      expect(await wellBehaved(port, 'STRICT', protocol)).toBe('ok');
    },
  );
});

describe('maxConnections', () => {
  it.each(['http1', 'tls'] as const)('%s: the connection over the cap is dropped', async (protocol) => {
    const { server, port, rejects } = await serve({
      protocol,
      identity,
      maxConnections: 2,
      sniffTimeout: 5_000,
    });
    const first = await stall(port);
    const second = await stall(port);
    await vi.waitFor(
      () =>
        new Promise<void>((resolve, reject) =>
          server.getConnections((_, n) => (n === 2 ? resolve() : reject(new Error(`${n} connections`)))),
        ),
    );
    const third = await stall(port);
    await closed(third);
    expect(rejects).toMatchObject([
      { reason: 'ERR_CONNECTION_LIMIT', phase: 'sniff', remoteAddress: '127.0.0.1' },
    ]);
    expect(first.destroyed || second.destroyed).toBe(false);
    // Control: once one closes, a new connection is served.
    first.destroy();
    await vi.waitFor(
      () =>
        new Promise<void>((resolve, reject) =>
          server.getConnections((_, n) => (n === 1 ? resolve() : reject(new Error(`${n} connections`)))),
        ),
    );
    expect(await wellBehaved(port, 'STRICT', protocol)).toBe('ok');
    // The client that hung up before sending anything is reported as such.
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_CONNECTION_LIMIT', 'ERR_CLIENT_ABORTED']);
  });
});

describe('headersTimeout', () => {
  const partial = 'GET / HTTP/1.1\r\nhost: localhost\r\nx-slow: ';

  it('PERMISSIVE plaintext: slow headers get 408 and the connection is closed', async () => {
    const { port } = await serve({ mode: 'PERMISSIVE', identity, headersTimeout: 300, requestTimeout: 1000 });
    const slow = await stall(port, partial);
    let answer = '';
    slow.setEncoding('utf8').on('data', (d: string) => {
      answer += d;
    });
    await closed(slow);
    expect(answer).toMatch(/^HTTP\/1.1 408 /);
  });

  it('STRICT mTLS: slow headers get 408 and the connection is closed', async () => {
    const { port } = await serve({ identity, headersTimeout: 300, requestTimeout: 1000 });
    const slow = await tlsExchange(port, { ...ui, ca: ca.bundle().toPem(), send: partial });
    expect(slow.data).toMatch(/^HTTP\/1.1 408 /);
  });

  it('http2, HTTP/1.1 by ALPN: slow headers get 408 and the connection is closed', async () => {
    const { port } = await serve({ protocol: 'http2', identity, headersTimeout: 300, requestTimeout: 1000 });
    const client = { ...ui, ca: ca.bundle().toPem(), ALPNProtocols: ['http/1.1'] };
    const slow = await tlsExchange(port, { ...client, send: partial });
    expect(slow.data).toMatch(/^HTTP\/1.1 408 /);
    const fast = await tlsExchange(port, {
      ...client,
      send: 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    });
    expect(fast.data).toMatch(/^HTTP\/1.1 200 [\s\S]*ok$/);
  });

  it('a request within the limits is served (control)', async () => {
    const { port } = await serve({ mode: 'PERMISSIVE', identity, headersTimeout: 300, requestTimeout: 1000 });
    expect((await plainRequest(port, '/')).body).toBe('ok');
    expect((await mtlsRequest(port, '/', ui, ca.bundle())).body).toBe('ok');
  });
});

describe('header and stream limits', () => {
  it('HTTP/1.1: a header block over maxHeaderSize gets 431', async () => {
    const { port } = await serve({ mode: 'PERMISSIVE', identity, maxHeaderSize: 1024 });
    const big = await stall(port, `GET / HTTP/1.1\r\nhost: localhost\r\nx-big: ${'a'.repeat(2048)}\r\n\r\n`);
    let answer = '';
    big.setEncoding('utf8').on('data', (d: string) => {
      answer += d;
    });
    await closed(big);
    expect(answer).toMatch(/^HTTP\/1.1 431 /);
    expect((await plainRequest(port, '/')).body).toBe('ok');
  });

  it.each([
    [{}, { maxConcurrentStreams: 100, maxHeaderListSize: 16_384 }],
    [
      { maxConcurrentStreams: 7, maxHeaderSize: 8192 },
      { maxConcurrentStreams: 7, maxHeaderListSize: 8192 },
    ],
  ])('HTTP/2: %o is in the SETTINGS the client receives', async (limits, expected) => {
    const { port } = await serve({ protocol: 'http2', identity, ...limits });
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ...ui,
      ca: ca.bundle().toPem(),
      checkServerIdentity: () => undefined,
    });
    onCleanup(() => session.destroy());
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    expect(settings).toMatchObject(expected);
  });
});

describe('option validation', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown option', { identity, sniffTimout: 100 }, 'sniffTimout'],
    ['a bad mode', { identity, mode: 'LOOSE' }, 'mode'],
    ['STRICT without identity', {}, 'identity'],
    ['PERMISSIVE without identity', { mode: 'PERMISSIVE' }, 'identity'],
    ['an identity that is not a source', { identity: ca.issue('/x') }, 'identity'],
    ['a bad protocol', { identity, protocol: 'http3' }, 'protocol'],
    [
      'plaintextPaths in PERMISSIVE',
      { identity, mode: 'PERMISSIVE', plaintextPaths: ['/healthz'] },
      'plaintextPaths',
    ],
    ['plaintextPaths with a query', { identity, plaintextPaths: ['/healthz?x'] }, 'plaintextPaths'],
    ['protocol tls with PERMISSIVE', { identity, protocol: 'tls', mode: 'PERMISSIVE' }, 'mode'],
    ['a zero sniffTimeout', { identity, sniffTimeout: 0 }, 'sniffTimeout'],
    ['a string handshakeTimeout', { identity, handshakeTimeout: '10s' }, 'handshakeTimeout'],
    ['a negative headersTimeout', { identity, headersTimeout: -1 }, 'headersTimeout'],
    ['a fractional maxConnections', { identity, maxConnections: 1.5 }, 'maxConnections'],
    ['a zero maxConcurrentStreams', { identity, maxConcurrentStreams: 0 }, 'maxConcurrentStreams'],
    [
      'an infinite maxConnectionAge',
      { identity, maxConnectionAge: Number.POSITIVE_INFINITY },
      'maxConnectionAge',
    ],
    ['a bad minVersion', { identity, minVersion: 'TLSv1.1' }, 'minVersion'],
  ])('refuses %s, naming the field', (_, options, field) => {
    const err = expectCode(
      () => createMtlsServer(options as MtlsServerOptions & { protocol?: 'http1' }),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe(field);
    expect(err.message).toContain(field);
  });

  it('accepts DISABLE without an identity (control)', async () => {
    const { port } = await serve({ mode: 'DISABLE' });
    expect((await plainRequest(port, '/')).body).toBe('ok');
  });

  it('checks options before anything listens', () => {
    expectCode(
      () => createMtlsServer({ identity, protocol: 'http2', maxHeaderSize: -5 }),
      'ERR_OPTION_INVALID',
    );
    expectCode(() => createMtlsServer({ identity, protocol: 'tls', mode: 'DISABLE' }), 'ERR_OPTION_INVALID');
  });
});

describe('keep-alive within the limits', () => {
  it('a keep-alive mTLS connection serves several requests under short timeouts (control)', async () => {
    const { port } = await serve({ identity, sniffTimeout: 200, handshakeTimeout: 300, headersTimeout: 300 });
    const agent = keepAliveAgent(ui, ca.bundle());
    const a = await agentRequest(agent, port, '/');
    const b = await agentRequest(agent, port, '/');
    expect([a.body, b.body]).toEqual(['ok', 'ok']);
    expect(b.socket).toBe(a.socket);
  });
});
