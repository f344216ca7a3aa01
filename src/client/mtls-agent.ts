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

/** The events undici's Agent listens to on each origin's dispatcher. */
const AGENT_EVENTS = ['drain', 'connect', 'disconnect', 'connectionError'] as const;
/** How long a parked origin Pool waits to be taken back before it is closed. */
const PARKED_MS = 60_000;
/** Parked origin Pools kept at most per agent; the longest parked is closed first. */
const PARKED_LIMIT = 64;

/** A dispatcher's parked origin Pools, oldest first, and whether it is closing. */
interface KeptPools<P> {
  readonly pools: Map<string, P>;
  closing: boolean;
}

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

  /**
   * An origin's Pool that outlives undici Agent's bookkeeping. undici's Agent closes an origin's
   * Pool whenever its count of connected sockets falls to zero, which, with a new connection per
   * request, happens while every connection is still in its handshake: it built a new Pool and
   * new Clients for about every second request (measured, bench/README.md) and, with the Pool,
   * dropped undici's own session cache. The Agent's close of an unused Pool parks it instead;
   * the next request to that origin gets it back; a parked Pool is closed for real after
   * {@link PARKED_MS} unused, when more than {@link PARKED_LIMIT} are parked, and with the agent.
   */
  class KeptPool extends undici.Pool {
    readonly #kept: KeptPools<KeptPool>;
    readonly #key: string;
    #parked: NodeJS.Timeout | undefined;
    /** The Pool's own listeners (undici's Pool listens to some of its events itself). */
    readonly #own: ReadonlySet<unknown>;

    constructor(origin: URL | string, options: Pool.Options, kept: KeptPools<KeptPool>, key: string) {
      super(origin, options);
      this.#kept = kept;
      this.#key = key;
      const emitter = this as unknown as EventEmitter;
      this.#own = new Set(AGENT_EVENTS.flatMap((event) => emitter.listeners(event)));
    }

    /** Whether the Agent may be given this Pool again. */
    get reusable(): boolean {
      return !this.closed && !this.destroyed;
    }

    /** Taken back by the Agent: its listeners from the last time go (the Agent adds its own). */
    unpark(): this {
      clearTimeout(this.#parked);
      this.#parked = undefined;
      if (this.#kept.pools.get(this.#key) === this) this.#kept.pools.delete(this.#key);
      const emitter = this as unknown as EventEmitter;
      for (const event of AGENT_EVENTS) {
        for (const listener of emitter.listeners(event)) {
          if (!this.#own.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
        }
      }
      return this;
    }

    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      if (this.#kept.closing || !this.reusable) return this.#end(callback);
      // The Agent let go of this origin: park the Pool (its open connections, if any, go on).
      clearTimeout(this.#parked);
      this.#parked = setTimeout(() => this.#retire(), PARKED_MS).unref();
      const { pools } = this.#kept;
      pools.delete(this.#key);
      pools.set(this.#key, this);
      if (pools.size > PARKED_LIMIT) (pools.values().next().value as KeptPool).#retire();
      if (callback === undefined) return Promise.resolve();
      queueMicrotask(callback);
    }

    /** A parked Pool closed for real: it stayed parked too long, or too many are parked. */
    #retire(): void {
      (this.#end() as Promise<void>).catch(() => {});
    }

    /** Closes it for real (as the agent closes, or when retired). */
    #end(callback?: () => void): Promise<void> | void {
      clearTimeout(this.#parked);
      this.#parked = undefined;
      if (this.#kept.pools.get(this.#key) === this) this.#kept.pools.delete(this.#key);
      return callback === undefined ? super.close() : super.close(callback);
    }
  }

  class MtlsAgent extends undici.Agent {
    readonly #core: ClientCore;
    readonly #kept: KeptPools<KeptPool>;

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
      const kept: KeptPools<KeptPool> = { pools: new Map(), closing: false };
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
        core.connect(
          {
            host: request.hostname,
            port: request.port,
            protocol: request.protocol,
            localAddress: request.localAddress,
          },
          plainTls,
          cb,
        );
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
        factory: (origin: URL | string, poolOptions: object) => {
          const key = String(origin);
          const parked = kept.pools.get(key);
          if (parked?.reusable === true) return parked.unpark();
          return new KeptPool(
            origin,
            {
              ...(poolOptions as Pool.Options),
              factory: (o: URL | string, clientOptions: object) =>
                new PeerClient(o, clientOptions as Client.Options, owner),
            },
            kept,
            key,
          );
        },
      });
      events.emitter = this;
      this.#core = core;
      this.#kept = kept;
    }

    /** Closes the parked Pools, which the Agent no longer knows. */
    #endParked(end: (pool: KeptPool) => Promise<void>): Promise<void> {
      this.#kept.closing = true;
      const parked = [...this.#kept.pools.values()];
      this.#kept.pools.clear();
      return Promise.all(parked.map((pool) => end(pool).catch(() => {}))).then(() => undefined);
    }

    describe(): ClientReport {
      return this.#core.describe();
    }

    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      this.#core.close();
      const parked = this.#endParked((pool) => pool.close());
      if (callback === undefined) return Promise.all([super.close(), parked]).then(() => undefined);
      super.close(() => {
        void parked.then(callback);
      });
    }

    override destroy(): Promise<void>;
    override destroy(err: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(err: Error | null, callback: () => void): void;
    override destroy(err?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
      this.#core.close();
      const reason = typeof err === 'function' ? null : (err ?? null);
      void this.#endParked((pool) => pool.destroy(reason));
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
