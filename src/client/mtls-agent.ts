// The undici classes of the dispatcher, built on the first createMtlsDispatcher call: a class
// that extends undici's Agent needs undici loaded to be declared, and an app that only serves
// must not load it (see undici.ts).
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Agent, Client, Dispatcher, Pool } from 'undici';
import { nodeTls as tls } from '../internal/builtins.js';
import type { ConnectCallback } from './connect.js';
import { ClientCore, type ClientReport } from './core.js';
import type { MtlsDispatcher, MtlsDispatcherOptions } from './dispatcher.js';
import { type ClientSocketState, PeerHandler, type PeerHandlerOwner } from './peer-handler.js';
import type { Target } from './target.js';
import { loadUndici } from './undici.js';

/** What undici passes a custom connector. */
interface UndiciConnectOptions {
  readonly hostname: string;
  readonly port: string;
  readonly protocol: string;
  readonly localAddress?: string | null;
}

/** The dispatcher's constructor, given options already checked by createMtlsDispatcher. */
export type MtlsAgentClass = new (options: MtlsDispatcherOptions) => MtlsDispatcher;

let built: MtlsAgentClass | undefined;

/** Concurrent streams per HTTP/2 connection: undici's default `maxConcurrentStreams`. */
const H2_STREAMS = 100;

const RETIRED =
  'sidecarless closed this idle connection: its server certificate expired or no longer verifies against the bundles';

/** The dispatcher's class, declared once, on the first call (which loads undici). */
export function mtlsAgentClass(): MtlsAgentClass {
  built ??= declareClasses();
  return built;
}

/**
 * The ALPN list a dispatcher offers on its TLS connections: as undici's own connector, HTTP/1.1
 * only unless HTTP/2 was allowed. undici speaks h2 on any socket whose ALPN says h2, so this list
 * is what decides.
 */
export function alpnOf(allowH2: boolean | undefined): string[] {
  return allowH2 === true ? ['h2', 'http/1.1'] : ['http/1.1'];
}

function declareClasses(): MtlsAgentClass {
  const undici = loadUndici();

  /** An undici Client that knows its socket, so its responses can be tied to their server. */
  class PeerClient extends undici.Client {
    readonly #state: ClientSocketState;
    readonly #owner: PeerHandlerOwner;

    constructor(origin: URL | string, options: Client.Options, owner: PeerHandlerOwner) {
      const state: ClientSocketState = { socket: undefined };
      const connect = options.connect as (opts: object, cb: ConnectCallback) => void;
      const configured = options.pipelining ?? 1;
      const self: { client?: PeerClient } = {};
      super(origin, {
        ...options,
        connect: (opts: object, cb: ConnectCallback) =>
          connect(opts, (err, socket) => {
            if (socket !== undefined) state.socket = socket;
            // undici has taken the socket on when this returns (its HTTP/1.1 or HTTP/2 context).
            cb(err, socket);
            // undici 7 runs at most `pipelining` requests at once on a Client, HTTP/2 streams
            // included, and its default is 1: an h2 connection would carry one request at a time
            // and the pool would open a connection per concurrent request. As its own H2CClient,
            // let an h2 connection carry up to H2_STREAMS; HTTP/1.1 keeps the configured depth.
            const depth = (socket as TLSSocket | undefined)?.alpnProtocol === 'h2' ? H2_STREAMS : configured;
            const client = self.client;
            if (err === null && client !== undefined && client.pipelining !== depth)
              client.pipelining = depth;
          }),
      } as Client.Options);
      self.client = this;
      this.#state = state;
      this.#owner = owner;
    }

    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      // Agent and Pool already turned the handler into undici's legacy callbacks (UnwrapHandler).
      const legacy = handler as ConstructorParameters<typeof PeerHandler>[0];
      return super.dispatch(options, new PeerHandler(legacy, this.#state, this.#owner, options));
    }
  }

  class MtlsAgent extends undici.Agent {
    readonly #core: ClientCore;

    constructor(opts: MtlsDispatcherOptions) {
      const busy = new WeakMap<Socket, number>();
      const retired = new WeakSet<Socket>();
      const closeIfIdle = (socket: Socket) => {
        if ((busy.get(socket) ?? 0) !== 0) return;
        // undici's HTTP/2 client throws (an uncaught TypeError in its session 'close' listener)
        // when its socket is destroyed without an error; with its own SocketError it fails no
        // queued request, which goes to a new connection.
        if ((socket as TLSSocket).alpnProtocol === 'h2')
          socket.destroy(new undici.errors.SocketError(RETIRED));
        else socket.destroy();
      };
      const owner: PeerHandlerOwner = {
        onPeer: opts.onPeer,
        // Per socket, not per request: an HTTP/2 connection carries several requests at once.
        busy: (socket) => busy.set(socket, (busy.get(socket) ?? 0) + 1),
        idle: (socket) => {
          const n = (busy.get(socket) ?? 1) - 1;
          busy.set(socket, n);
          // Checked on the next tick: undici may start the next request on this socket first
          // (pipelining, or another HTTP/2 stream), and then the socket is busy again.
          if (n === 0 && retired.has(socket)) process.nextTick(closeIfIdle, socket);
        },
      };
      const events: { emitter?: EventEmitter } = {};
      const alpn = alpnOf(opts.allowH2);
      const core = new ClientCore(
        opts,
        {
          emitFallback: (event) => events.emitter?.emit('fallback', event),
          retire: (socket) => {
            retired.add(socket);
            closeIfIdle(socket);
          },
        },
        alpn,
      );
      const plainTls = (target: Target) => plainTlsSocket(target, alpn);
      const connect = (request: UndiciConnectOptions, cb: ConnectCallback) =>
        core.connect({ ...request, host: request.hostname }, plainTls, cb);
      super({
        ...pick(opts, [
          'connections',
          'keepAliveTimeout',
          'keepAliveMaxTimeout',
          'headersTimeout',
          'bodyTimeout',
          'allowH2',
        ]),
        connect: connect as unknown as NonNullable<Agent.Options['connect']>,
        factory: (origin: URL | string, poolOptions: object) =>
          new undici.Pool(origin, {
            ...(poolOptions as Pool.Options),
            factory: (o: URL | string, clientOptions: object) =>
              new PeerClient(o, clientOptions as Client.Options, owner),
          }),
      });
      events.emitter = this;
      this.#core = core;
    }

    describe(): ClientReport {
      return this.#core.describe();
    }

    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      this.#core.close();
      return callback === undefined ? super.close() : super.close(callback);
    }

    override destroy(): Promise<void>;
    override destroy(err: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(err: Error | null, callback: () => void): void;
    override destroy(err?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
      this.#core.close();
      return (super.destroy as (...args: unknown[]) => Promise<void> | void)(
        ...[err, callback].filter((a) => a !== undefined),
      );
    }

    [Symbol.asyncDispose](): Promise<void> {
      return this.close();
    }
  }

  return MtlsAgent as unknown as MtlsAgentClass;
}

/** Ordinary TLS for https:// URLs to plaintext destinations: system roots, hostname check, no SVID. */
function plainTlsSocket(target: Target, alpn: string[]): TLSSocket {
  return tls
    .connect({
      host: target.host,
      port: target.port,
      ALPNProtocols: alpn,
      ...(target.servername === undefined ? {} : { servername: target.servername }),
      ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
      ...(target.lookup === undefined ? {} : { lookup: target.lookup }),
    })
    .setNoDelay(true);
}

function pick<T extends object, K extends keyof T>(object: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (object[key] !== undefined) out[key] = object[key];
  return out;
}
