import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  Http2ServerRequest,
  Http2ServerResponse,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { hostOfAuthority, type RequestAttributes } from '../authz/authorize.js';
import type { Peer } from '../authz/peer.js';
import type { Connection } from './connections.js';
import type { ServerCore } from './server-core.js';

/** What the authorization step says of one request. */
export type RequestVerdict =
  | { readonly pass: true; readonly path: string /** with its '?', or '' */; readonly query: string }
  | { readonly pass: false; readonly status: 400 | 403; readonly reason: string };

/** The authorization step of a server (see authorization.ts). */
export interface Authorizer {
  check(peer: Peer, method: string, target: string, attributes: RequestAttributes): RequestVerdict;
}

function body(status: 400 | 403, reason: string): string {
  return JSON.stringify(status === 403 ? { error: 'forbidden', reason } : { error: 'bad_request', reason });
}

/** The path part of a request target, for the plaintextPaths check (exact match, before anything else). */
function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * The per-request gate, shared by every protocol: STRICT's plaintext paths, the connection's
 * closing state, path normalisation and the authorization map. Runs before any request listener
 * (the server's emit is wrapped), so middleware never sees a refused request.
 */
export class RequestGate {
  readonly #core: ServerCore;
  readonly #authorizer: Authorizer;
  readonly #gated = new WeakSet<object>();

  constructor(core: ServerCore, authorizer: Authorizer) {
    this.#core = core;
    this.#authorizer = authorizer;
  }

  /** The STRICT plaintext rule and the closing state; undefined when the request may go on. */
  #transport(connection: Connection, target: string): 'reset' | 'closing' | undefined {
    const { peer } = connection;
    const strict = this.#core.settings.mode === 'STRICT';
    if (strict && !peer.tls && !this.#core.settings.plaintextPaths.has(pathOf(target))) return 'reset';
    // The source withdrew the server's identity (revoked, redacted): encrypted connections made
    // with it end now, not at the next handshake. identity() closes them; this refuses the request.
    if (peer.tls && this.#core.identity() === undefined) return 'closing';
    if (connection.closing !== undefined && connection.closing !== 'ERR_CONNECTION_MAX_AGE') return 'closing';
    return undefined;
  }

  #refuseTransport(connection: Connection, why: 'reset' | 'closing', target: string): void {
    const peer = connection.peer.id?.toString() ?? null;
    if (why === 'reset') {
      this.#core.reject(
        connection.raw,
        'request',
        'ERR_PLAINTEXT_REFUSED',
        `plaintext request for ${JSON.stringify(pathOf(target).slice(0, 200))} refused: not in plaintextPaths`,
        peer,
        null,
        'reset',
      );
    } else {
      this.#core.reject(
        connection.raw,
        'request',
        connection.closing ?? 'ERR_NO_IDENTITY',
        'request on a closing connection',
        peer,
        null,
        'destroy',
      );
    }
  }

  #decide(connection: Connection, method: string, target: string, host: unknown): RequestVerdict {
    const servername = (connection.socket as Partial<TLSSocket>).servername;
    const attributes: RequestAttributes = {
      host: hostOfAuthority(typeof host === 'string' ? host : undefined),
      port: connection.raw.localPort ?? null,
      sni: typeof servername === 'string' && servername !== '' ? servername.toLowerCase() : null,
    };
    const verdict = this.#authorizer.check(connection.peer, method, target, attributes);
    if (!verdict.pass && verdict.status === 403) this.#core.totals.denied++;
    return verdict;
  }

  /** HTTP/1.1 (and HTTP/2 compatibility) requests. Returns whether listeners may see it. */
  request(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean {
    if ('stream' in req && this.#gated.has(req.stream)) return true; // gated as an HTTP/2 stream
    const connection = this.#core.tracker.of(req.socket);
    if (connection === undefined) {
      req.socket.destroy();
      return false;
    }
    const target = req.url ?? '';
    const refused = this.#transport(connection, target);
    if (refused !== undefined) {
      this.#refuseTransport(connection, refused, target);
      return false;
    }
    const host = 'authority' in req ? req.authority : req.headers.host;
    const verdict = this.#decide(connection, req.method ?? 'GET', target, host);
    if (!verdict.pass) {
      const text = body(verdict.status, verdict.reason);
      res.writeHead(verdict.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      return false;
    }
    // The application routes exactly what was authorised.
    req.url = verdict.path + verdict.query;
    if (connection.closing === 'ERR_CONNECTION_MAX_AGE' && 'shouldKeepAlive' in res)
      res.shouldKeepAlive = false;
    return true;
  }

  /** HTTP/1.1 upgrade (WebSocket) and CONNECT requests: refused on the socket itself. */
  upgrade(req: IncomingMessage, socket: Duplex): boolean {
    const connection = this.#core.tracker.of(req.socket);
    if (connection === undefined) {
      socket.destroy();
      return false;
    }
    const target = req.url ?? '';
    const refused = this.#transport(connection, target);
    if (refused !== undefined) {
      this.#refuseTransport(connection, refused, target);
      return false;
    }
    const verdict = this.#decide(connection, req.method ?? 'GET', target, req.headers.host);
    if (!verdict.pass) {
      const text = body(verdict.status, verdict.reason);
      const status = verdict.status === 403 ? '403 Forbidden' : '400 Bad Request';
      socket.end(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
      return false;
    }
    req.url = verdict.path + verdict.query;
    return true;
  }

  /** HTTP/2 streams: every stream is authorized (a session carries many requests). */
  stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
    const connection = stream.session === undefined ? undefined : this.#core.sessions.get(stream.session);
    if (connection === undefined) {
      stream.close(0x2); // INTERNAL_ERROR: a stream on a connection that was never admitted
      return false;
    }
    const target = String(headers[':path'] ?? '');
    const refused = this.#transport(connection, target);
    if (refused !== undefined) {
      this.#refuseTransport(connection, refused, target);
      return false;
    }
    const verdict = this.#decide(
      connection,
      String(headers[':method'] ?? 'GET'),
      target,
      headers[':authority'] ?? headers.host,
    );
    if (!verdict.pass) {
      const text = body(verdict.status, verdict.reason);
      stream.respond({ ':status': verdict.status, 'content-type': 'application/json' });
      stream.end(text);
      return false;
    }
    headers[':path'] = verdict.path + verdict.query;
    this.#gated.add(stream);
    return true;
  }
}
