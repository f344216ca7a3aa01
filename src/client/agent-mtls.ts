import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { SidecarlessError } from '../errors.js';
import { nodeTls as tls } from '../internal/builtins.js';
import { invalidOption } from '../internal/options.js';
import { watchResponses } from './agent-responses.js';
import type { ConnectCallback } from './connect.js';
import { ClientCore, type ClientReport, type MtlsClientOptions } from './core.js';
import type { Target } from './target.js';

/** The mTLS half of a node:http(s) Agent, shared by the http and https variants. */
export class AgentMtls {
  readonly #agent: http.Agent;
  readonly #protocol: 'http:' | 'https:';
  readonly #retired = new WeakSet<Socket>();
  readonly #core: ClientCore;

  constructor(agent: http.Agent, options: MtlsClientOptions, protocol: 'http:' | 'https:') {
    this.#agent = agent;
    this.#protocol = protocol;
    this.#core = new ClientCore(options, {
      emitFallback: (event) => (agent as EventEmitter).emit('fallback', event),
      retire: (socket) => this.#retire(socket),
    });
  }

  /**
   * Called by the Agent for each new connection, with the request's options merged in. The socket
   * is handed back only when the server was authenticated, so no request byte precedes the check;
   * `host:port` destinations are resolved here, where the port is known (checkServerIdentity gets
   * none).
   */
  createConnection(options: https.RequestOptions, cb: ConnectCallback): undefined {
    try {
      if (options.socketPath !== undefined) {
        throw invalidOption(
          'socketPath',
          'absent: an mTLS agent connects to host:port destinations',
          options.socketPath,
        );
      }
      // The caller's own TLS options (ca, rejectUnauthorized...) apply to ordinary TLS only; mTLS
      // destinations use the identity's and nothing else.
      const plainTls = (t: Target): TLSSocket =>
        tls
          .connect({
            ...(options as ConnectionOptions),
            host: t.host,
            port: t.port,
            ...(t.lookup === undefined ? {} : { lookup: t.lookup }),
          })
          .setNoDelay(true);
      this.#core.connect(
        {
          host: options.host ?? options.hostname ?? 'localhost',
          port: options.port ?? undefined,
          protocol: this.#protocol,
          localAddress: options.localAddress,
        },
        plainTls,
        cb,
      );
    } catch (err) {
      cb(err instanceof SidecarlessError ? err : (err as Error));
    }
    return undefined;
  }

  /** Before any application listener: the response's Peer, and no server-sent peer header. */
  watch(req: http.ClientRequest): void {
    watchResponses(req);
  }

  describe(): ClientReport {
    return this.#core.describe();
  }

  isRetired(socket: Duplex): boolean {
    return this.#retired.has(socket as Socket);
  }

  close(): Promise<void> {
    this.#core.close();
    this.#agent.destroy();
    return Promise.resolve();
  }

  #retire(socket: Socket): void {
    this.#retired.add(socket);
    // An idle socket is closed now; a busy one when its request is done (keepSocketAlive).
    const free = Object.values(this.#agent.freeSockets).some((list) => list?.includes(socket));
    if (free) socket.destroy();
  }
}
