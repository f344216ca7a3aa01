// The door table, tested door by door: for each mode and each kind of caller, a server with ONLY
// that door's application listener (otherwise Node falls back to `request` and the row passes
// untested), counters on that listener, and the status the caller saw. A refused caller must
// reach no application listener. A recording wrapper on every emitter the listener module wraps
// fails the file on any event name the table lacks, on whichever Node line runs it.
import { type EventEmitter, once } from 'node:events';
import type http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalCa, createMtlsServer, type MtlsServerOptions } from '../../src/index.js';
import { DOORS, type DoorEmitter, type DoorProtocol, doorsFor } from '../../src/server/doors.js';
import { emitterProbe } from '../../src/server/listener.js';
import { type ClientCredentials, credentialsOf, listen, onCleanup } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const forgedCa = createLocalCa({ trustDomain: 'cluster.local' }); // same name, other key
const identity = ca.identity('/ns/demo/sa/boards');
const ALLOWED = 'spiffe://cluster.local/ns/demo/sa/app-ui';

const CALLERS = {
  allowed: credentialsOf(ca.issue(ALLOWED)),
  forbidden: credentialsOf(ca.issue('/ns/demo/sa/other')),
  forged: credentialsOf(forgedCa.issue(ALLOWED)),
  tlsNoCert: 'tls',
  plaintext: 'plaintext',
} as const satisfies Record<string, ClientCredentials | 'tls' | 'plaintext'>;
type Caller = keyof typeof CALLERS;
const CALLER_NAMES = Object.keys(CALLERS) as Caller[];

interface Mode {
  readonly name: string;
  readonly options: Partial<MtlsServerOptions>;
  readonly paths: readonly string[];
}
const MODES: readonly Mode[] = [
  { name: 'STRICT', options: { mode: 'STRICT' }, paths: ['/protected'] },
  {
    name: 'STRICT with plaintextPaths',
    options: { mode: 'STRICT', plaintextPaths: ['/healthz'] },
    paths: ['/protected', '/healthz'],
  },
  { name: 'PERMISSIVE', options: { mode: 'PERMISSIVE' }, paths: ['/protected'] },
  { name: 'DISABLE', options: { mode: 'DISABLE' }, paths: ['/protected'] },
  { name: 'audit', options: { mode: 'STRICT', authorizationMode: 'audit' }, paths: ['/protected'] },
];
const AUTHORIZE = { '/healthz': ['*', 'unauthenticated'], '*': ALLOWED } as const;

/** What the connection door makes of a caller: an mTLS or TLS peer, plaintext (limited), or refused. */
function transport(mode: Mode, caller: Caller): 'mtls' | 'tls' | 'plain' | 'limited' | 'refused' {
  const m = mode.options.mode;
  if (m === 'DISABLE') return caller === 'plaintext' ? 'plain' : 'refused';
  if (caller === 'forged') return 'refused';
  if (caller === 'allowed' || caller === 'forbidden') return 'mtls';
  if (caller === 'tlsNoCert') return m === 'PERMISSIVE' ? 'tls' : 'refused';
  if (m === 'PERMISSIVE') return 'plain';
  return mode.options.plaintextPaths === undefined ? 'refused' : 'limited';
}

/** Whether a request for `path` reaches the application. */
function delivered(mode: Mode, caller: Caller, path: string): boolean {
  const t = transport(mode, caller);
  if (t === 'refused' || (t === 'limited' && path !== '/healthz')) return false;
  return path === '/healthz' || caller === 'allowed' || mode.options.authorizationMode === 'audit';
}

/** The status the caller sees when its request does not reach the application. */
function refusedStatus(mode: Mode, caller: Caller, path: string): number {
  const t = transport(mode, caller);
  return t === 'refused' || (t === 'limited' && path !== '/healthz') ? 0 : 403;
}

// ---- the recording wrapper -------------------------------------------------------------------
const seen = new Set<string>();
beforeAll(() => {
  emitterProbe.onWrap = (emitter: EventEmitter, kind: DoorEmitter, protocol: DoorProtocol) => {
    const inner = emitter.emit;
    emitter.emit = function (this: EventEmitter, event: string | symbol, ...args: unknown[]) {
      seen.add(`${kind} ${protocol} ${String(event)}`);
      return inner.call(this, event, ...args);
    } as typeof emitter.emit;
  };
});
afterAll(() => {
  emitterProbe.onWrap = undefined;
  // The test's own made-up event (below) is not Node's.
  const missing = [...seen]
    .filter((key) => !key.endsWith(' futureDoor'))
    .filter((key) => {
      const [kind, protocol, event] = key.split(' ') as [DoorEmitter, DoorProtocol, string];
      return !doorsFor(kind, protocol).has(event);
    });
  expect(missing, 'events Node emitted that the door table lacks').toEqual([]);
});

// ---- clients ---------------------------------------------------------------------------------
interface Exchange {
  readonly status: number;
  readonly text: string;
}

function parseStatus(text: string): number {
  // The last status line: a 100 Continue comes before the final answer.
  const all = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)];
  const last = all.filter((m) => m[1] !== '100').at(-1);
  return last === undefined ? 0 : Number(last[1]);
}

/** Sends raw HTTP/1.1 bytes as `caller` (TLS with ALPN http/1.1, or plaintext); reads until close. */
function h1(port: number, caller: Caller, bytes: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const creds = CALLERS[caller];
    const socket =
      creds === 'plaintext'
        ? net.connect(port, '127.0.0.1')
        : tls.connect({
            host: '127.0.0.1',
            port,
            ca: ca.bundle().toPem(),
            ...(creds === 'tls' ? {} : creds),
            ALPNProtocols: ['http/1.1'],
            checkServerIdentity: () => undefined,
          });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${JSON.stringify(text)}`));
    }, 5_000);
    socket.once(creds === 'plaintext' ? 'connect' : 'secureConnect', () => socket.write(bytes));
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ status: parseStatus(text), text });
    });
  });
}

/** One HTTP/2 request as `caller` (h2 over TLS, or h2c with prior knowledge); status 0 when refused. */
function h2(
  port: number,
  caller: Caller,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const creds = CALLERS[caller];
    const session =
      creds === 'plaintext'
        ? http2.connect(`http://127.0.0.1:${port}`)
        : http2.connect(`https://127.0.0.1:${port}`, {
            ca: ca.bundle().toPem(),
            ...(creds === 'tls' ? {} : creds),
            checkServerIdentity: () => undefined,
          });
    const done = (status: number, text: string) => {
      clearTimeout(timer);
      session.destroy();
      resolve({ status, text });
    };
    const timer = setTimeout(() => done(0, 'timeout'), 5_000);
    session.on('error', () => done(0, 'session error'));
    session.on('close', () => done(0, 'session closed'));
    const req = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let text = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      text += d;
    });
    req.on('end', () => done(status, text));
    req.on('error', () => done(0, 'stream error'));
    if (body !== undefined) req.end(body);
  });
}

// ---- the doors -------------------------------------------------------------------------------
interface Counter {
  calls: number;
}

interface DoorCase {
  /** The door-table row exercised. */
  readonly emitter: DoorEmitter;
  readonly event: string;
  readonly protocol: DoorProtocol;
  /** Which callers to try (h2c is only offered where plaintext is served). */
  readonly plaintext: boolean;
  /** Registers only this door's listener; returns its counter. */
  setup(server: http.Server | http2.Http2SecureServer | tls.Server): Counter;
  /** Makes a request that comes through this door. */
  trigger(port: number, caller: Caller, path: string): Promise<Exchange>;
  /** Whether the caller reaches this door's listener, and the status it then sees. */
  expect(mode: Mode, caller: Caller, path: string): { reached: boolean; status: number };
}

const request = (method: string, path: string, headers = '', body = '') =>
  `${method} ${path} HTTP/1.1\r\nhost: boards\r\nconnection: close\r\n${headers}\r\n${body}`;

function requestDoor(
  protocol: 'http1' | 'http2',
  event: 'request' | 'checkContinue' | 'checkExpectation',
  bytes: (path: string) => string,
): DoorCase {
  return {
    emitter: 'server',
    event,
    protocol,
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      server.on(event, (req: http.IncomingMessage, res: http.ServerResponse) => {
        counter.calls++;
        if (event === 'checkContinue') res.writeContinue();
        req.resume();
        req.on('end', () => res.end('ok'));
      });
      return counter;
    },
    trigger: (port, caller, path) => h1(port, caller, bytes(path)),
    expect: (mode, caller, path) =>
      delivered(mode, caller, path)
        ? { reached: true, status: 200 }
        : { reached: false, status: refusedStatus(mode, caller, path) },
  };
}

function socketDoor(protocol: 'http1' | 'http2', event: 'upgrade' | 'connect'): DoorCase {
  return {
    emitter: 'server',
    event,
    protocol,
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      server.on(event, (_req: http.IncomingMessage, socket: net.Socket) => {
        counter.calls++;
        socket.end(
          event === 'upgrade'
            ? 'HTTP/1.1 101 Switching Protocols\r\nupgrade: x-test\r\nconnection: upgrade\r\n\r\n'
            : 'HTTP/1.1 200 Connection Established\r\n\r\n',
        );
      });
      return counter;
    },
    trigger: (port, caller, path) =>
      h1(
        port,
        caller,
        event === 'upgrade'
          ? `GET ${path} HTTP/1.1\r\nhost: boards\r\nconnection: upgrade\r\nupgrade: x-test\r\n\r\n`
          : `CONNECT ${path} HTTP/1.1\r\nhost: boards\r\n\r\n`,
      ),
    expect: (mode, caller, path) =>
      delivered(mode, caller, path)
        ? { reached: true, status: event === 'upgrade' ? 101 : 200 }
        : { reached: false, status: refusedStatus(mode, caller, path) },
  };
}

const h2Headers = (path: string, extra: http2.OutgoingHttpHeaders = {}) => ({
  ':method': 'POST',
  ':path': path,
  ':authority': 'boards',
  ...extra,
});

function h2Door(
  emitter: DoorEmitter,
  event: string,
  register: (server: http2.Http2SecureServer, counter: Counter) => void,
  headers: (path: string) => http2.OutgoingHttpHeaders = (path) => h2Headers(path),
): DoorCase {
  return {
    emitter,
    event,
    protocol: 'http2',
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      register(server as http2.Http2SecureServer, counter);
      return counter;
    },
    trigger: (port, caller, path) => h2(port, caller, headers(path), 'hi'),
    expect: (mode, caller, path) =>
      delivered(mode, caller, path)
        ? { reached: true, status: 200 }
        : { reached: false, status: refusedStatus(mode, caller, path) },
  };
}

const answerStream = (stream: http2.ServerHttp2Stream) => {
  stream.respond({ ':status': 200 });
  stream.end('ok');
};
const answerCompat = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
  req.resume();
  req.on('end', () => res.end('ok'));
};

const DOOR_CASES: readonly DoorCase[] = [
  // http1
  requestDoor('http1', 'request', (p) => request('GET', p)),
  requestDoor('http1', 'checkContinue', (p) =>
    request('POST', p, 'expect: 100-continue\r\ncontent-length: 2\r\n', 'hi'),
  ),
  requestDoor('http1', 'checkExpectation', (p) =>
    request('POST', p, 'expect: x-test\r\ncontent-length: 2\r\n', 'hi'),
  ),
  socketDoor('http1', 'upgrade'),
  socketDoor('http1', 'connect'),
  {
    emitter: 'server',
    event: 'dropRequest',
    protocol: 'http1',
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      (server as http.Server).maxRequestsPerSocket = 1;
      // The first request needs an answer for the second to be reached.
      server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('first'));
      server.on('dropRequest', () => counter.calls++);
      return counter;
    },
    trigger: (port, caller, path) =>
      h1(
        port,
        caller,
        `GET ${path} HTTP/1.1\r\nhost: boards\r\n\r\nGET ${path} HTTP/1.1\r\nhost: boards\r\nconnection: close\r\n\r\n`,
      ),
    // Node answers a dropped request 503 itself, whether the gate let the listener see it or not.
    expect: (mode, caller, path) =>
      delivered(mode, caller, path)
        ? { reached: true, status: 503 }
        : { reached: false, status: refusedStatus(mode, caller, path) === 403 ? 503 : 0 },
  },
  {
    emitter: 'server',
    event: 'connection',
    protocol: 'http1',
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      // A connection listener that reads the bytes: it must never see a refused caller's.
      server.on('connection', (socket: net.Socket) => {
        counter.calls++;
        socket.on('data', () => counter.calls++);
      });
      server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('ok'));
      return counter;
    },
    trigger: (port, caller, path) => h1(port, caller, request('GET', path)),
    expect: (mode, caller, path) => {
      const t = transport(mode, caller);
      const reached = t === 'mtls' || t === 'tls' || t === 'plain';
      return { reached, status: delivered(mode, caller, path) ? 200 : refusedStatus(mode, caller, path) };
    },
  },
  // http2: streams, sessions and the compatibility API
  h2Door('session', 'stream', (server, counter) =>
    server.on('session', (session) =>
      session.on('stream', (stream) => {
        counter.calls++;
        answerStream(stream);
      }),
    ),
  ),
  h2Door('server', 'stream', (server, counter) =>
    server.on('stream', (stream) => {
      counter.calls++;
      answerStream(stream);
    }),
  ),
  h2Door('server', 'request', (server, counter) =>
    server.on('request', (req, res) => {
      counter.calls++;
      answerCompat(req, res);
    }),
  ),
  h2Door(
    'server',
    'checkContinue',
    (server, counter) => {
      // A request listener sets up the compatibility API; the expectation must not fall to it.
      server.on('request', (_req, res) => res.end('fell through'));
      server.on('checkContinue', (req, res) => {
        counter.calls++;
        res.writeContinue();
        answerCompat(req, res);
      });
    },
    (path) => h2Headers(path, { expect: '100-continue' }),
  ),
  h2Door(
    'server',
    'checkExpectation',
    (server, counter) => {
      server.on('request', (_req, res) => res.end('fell through'));
      server.on('checkExpectation', (req, res) => {
        counter.calls++;
        answerCompat(req, res);
      });
    },
    (path) => h2Headers(path, { expect: 'x-test' }),
  ),
  {
    emitter: 'server',
    event: 'session',
    protocol: 'http2',
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      server.on('session', () => counter.calls++);
      server.on('stream', answerStream);
      return counter;
    },
    trigger: (port, caller, path) => h2(port, caller, h2Headers(path), 'hi'),
    expect: (mode, caller, path) => {
      const t = transport(mode, caller);
      return {
        reached: t === 'mtls' || t === 'tls' || t === 'plain' || t === 'limited',
        status: delivered(mode, caller, path) ? 200 : refusedStatus(mode, caller, path),
      };
    },
  },
  {
    emitter: 'server',
    event: 'secureConnection',
    protocol: 'http2',
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      server.on('secureConnection', () => counter.calls++);
      server.on('stream', answerStream);
      return counter;
    },
    trigger: (port, caller, path) => h2(port, caller, h2Headers(path), 'hi'),
    expect: (mode, caller, path) => {
      const t = transport(mode, caller);
      return {
        reached: t === 'mtls' || t === 'tls',
        status: delivered(mode, caller, path) ? 200 : refusedStatus(mode, caller, path),
      };
    },
  },
  // http2's HTTP/1.1 side (ALPN http/1.1, or plaintext HTTP/1.1)
  requestDoor('http2', 'request', (p) => request('GET', p)),
  requestDoor('http2', 'checkContinue', (p) =>
    request('POST', p, 'expect: 100-continue\r\ncontent-length: 2\r\n', 'hi'),
  ),
  requestDoor('http2', 'checkExpectation', (p) =>
    request('POST', p, 'expect: x-test\r\ncontent-length: 2\r\n', 'hi'),
  ),
  socketDoor('http2', 'upgrade'),
  socketDoor('http2', 'connect'),
  // raw TLS: the connection is the request
  {
    emitter: 'server',
    event: 'secureConnection',
    protocol: 'tls',
    plaintext: true,
    setup(server) {
      const counter = { calls: 0 };
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        counter.calls++;
        socket.resume(); // an unread byte would hold the half-closed socket open
        socket.end('HTTP/1.1 200 OK\r\n\r\n');
      });
      return counter;
    },
    trigger: (port, caller) => h1(port, caller, 'hello'),
    expect: (mode, caller) => {
      const reached = transport(mode, caller) === 'mtls' && (caller === 'allowed' || mode.name === 'audit');
      return { reached, status: reached ? 200 : 0 };
    },
  },
];

describe.each(DOOR_CASES.map((d) => [`${d.protocol} ${d.emitter} ${d.event}`, d] as const))(
  'door %s',
  (_name, door) => {
    const modes =
      door.protocol === 'tls' ? MODES.filter((m) => m.name === 'STRICT' || m.name === 'audit') : MODES;
    it.each(modes.map((m) => [m.name, m] as const))('%s', async (_mode, mode) => {
      expect(DOORS.some((d) => d.emitter === door.emitter && d.event === door.event)).toBe(true);
      const server = createMtlsServer({
        identity,
        ...mode.options,
        protocol: door.protocol,
        ...(door.protocol === 'tls' ? { authorize: ALLOWED } : { authorize: AUTHORIZE }),
      } as never) as http.Server | http2.Http2SecureServer | tls.Server;
      const counter = door.setup(server);
      const { port } = await listen(server);
      const results: string[] = [];
      const expected: string[] = [];
      for (const path of mode.paths) {
        for (const caller of CALLER_NAMES) {
          // No h2c in STRICT without plaintextPaths: the reset is what the caller sees.
          const before = counter.calls;
          const exchange = await door.trigger(port, caller, path);
          const want = door.expect(mode, caller, path);
          results.push(
            `${caller} ${path}: ${counter.calls > before ? 'reached' : 'not reached'} ${exchange.status}`,
          );
          expected.push(`${caller} ${path}: ${want.reached ? 'reached' : 'not reached'} ${want.status}`);
        }
      }
      expect(results).toEqual(expected);
    });
  },
);

describe('an event the table lacks', () => {
  it.each(['http1', 'http2', 'tls'] as const)(
    '%s: one that carries a socket is never delivered; the socket is closed and the refusal reported',
    async (protocol) => {
      const server = createMtlsServer({ identity, protocol } as never) as http.Server;
      const { port } = await listen(server);
      const rejects: { reason: string }[] = [];
      server.on('reject', (e: { reason: string }) => rejects.push(e));
      let delivered = 0;
      server.on('futureDoor', () => delivered++);
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      // A socket of the server's own: what a future Node release might hand out through a new event.
      const [accepted] = await new Promise<net.Socket[]>((resolve) => {
        const probe = net.createServer((s) => resolve([s]));
        probe.listen(0, '127.0.0.1', () =>
          net.connect((probe.address() as net.AddressInfo).port, '127.0.0.1'),
        );
        onCleanupServer(probe);
      });
      expect(server.emit('futureDoor', accepted)).toBe(false);
      expect(delivered).toBe(0);
      expect(accepted?.destroyed).toBe(true);
      expect(rejects.map((r) => r.reason)).toEqual(['ERR_DOOR_UNKNOWN']);
      // Control: an unknown event that carries no such object passes, as any EventEmitter's would.
      expect(server.emit('futureDoor', { plain: 'data' })).toBe(true);
      expect(delivered).toBe(1);
      socket.destroy();
    },
  );
});

function onCleanupServer(server: net.Server): void {
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
}
