import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { hostOfAuthority } from '../authz/authorize.js';
import { decisionEvent } from '../authz/decision-event.js';
import type { AuthorizationPolicy } from '../authz/policy.js';
import { admitRequest, type RequestAdmission } from '../policy/admission.js';
import type { Connection } from './connections.js';
import { cleanHttp2Request, cleanIncomingMessage, forwardedClientCert, XFCC_HEADER } from './headers.js';
import type { ServerCore } from './server-core.js';

function body(status: 400 | 403, reason: string): string {
  return JSON.stringify(status === 403 ? { error: 'forbidden', reason } : { error: 'bad_request', reason });
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * The per-request gate, shared by every door that carries a request: it gathers the facts,
 * asks `admitRequest` (src/policy) and applies the verdict — refuse (reset, close, or a 400/403
 * answer), or clean the headers, normalise the URL and let the request through. It runs inside
 * the wrapped emit, before any listener, so no middleware ever sees a refused request.
 */
export class RequestGate {
  readonly #core: ServerCore;
  readonly #policy: AuthorizationPolicy;
  readonly #gated = new WeakSet<object>();

  constructor(core: ServerCore, policy: AuthorizationPolicy) {
    this.#core = core;
    this.#policy = policy;
  }

  #admit(connection: Connection, method: string, target: string, host: string | undefined): RequestAdmission {
    const servername = (connection.socket as Partial<TLSSocket>).servername;
    const verdict = admitRequest({
      peer: connection.peer,
      limited: connection.limited,
      plaintextPaths: this.#core.settings.plaintextPaths,
      hasIdentity: !connection.peer.tls || this.#core.identity() !== undefined,
      closing: connection.closing,
      method,
      target,
      host: hostOfAuthority(host),
      port: connection.raw.localPort ?? null,
      sni: typeof servername === 'string' && servername !== '' ? servername.toLowerCase() : null,
      policy: this.#policy,
    });
    if (verdict.decision !== undefined && this.#core.observesAuthorization()) {
      this.#core.emitAuthorization(decisionEvent(verdict.decision, connection.peer));
    }
    this.#core.edges.request(connection.edge, connection.peer.mtls);
    if (!verdict.admit) {
      if (verdict.end === 'respond') {
        if (verdict.status === 403) this.#core.totals.denied++;
        // Answered, not closed: no reject event, but the edge shows why (the normalised path only).
        const path = verdict.decision?.path ?? null;
        this.#core.edges.refused(
          connection.edge,
          verdict.code,
          `${verdict.decision?.method || method} ${path ?? '(bad request-target)'}: ${verdict.reason}`,
        );
      } else {
        this.#core.rejectConnection(connection, 'request', verdict.code, verdict.message, verdict.end);
      }
    }
    return verdict;
  }

  #xfcc(connection: Connection, incoming: string | undefined): string | undefined {
    const mode = this.#core.settings.forwardClientCert;
    if (mode === 'sanitize') return undefined;
    return forwardedClientCert(mode, connection.peer, incoming, this.#core.ownId());
  }

  /**
   * HTTP/1.1 requests (`request`, `checkContinue`, `checkExpectation`, `dropRequest`): true when
   * listeners may see it. A refusal is answered on `res` (400/403) or ends the connection.
   */
  request(req: IncomingMessage, res: ServerResponse | Duplex): boolean {
    const connection = this.#core.tracker.of(req.socket);
    if (connection === undefined) {
      req.socket.destroy();
      return false;
    }
    const verdict = this.#admit(connection, req.method ?? 'GET', req.url ?? '', req.headers.host);
    if (!verdict.admit) {
      if (verdict.end === 'respond') {
        const text = body(verdict.status, verdict.reason);
        if ('writeHead' in res) {
          // A body the refusal leaves unread must not be read as the next request.
          if (hasBody(req)) res.shouldKeepAlive = false;
          res.writeHead(verdict.status, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(text),
          });
          res.end(text);
        }
        // dropRequest hands the socket: Node answers that request 503 itself.
      }
      return false;
    }
    cleanIncomingMessage(req, this.#xfcc(connection, first(req.headers[XFCC_HEADER])));
    // The application routes exactly what was authorised.
    req.url = verdict.path + verdict.query;
    if (!verdict.keepAlive && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
    return true;
  }

  /** HTTP/1.1 requests that take the socket (`upgrade`, `connect`): refusals are written on it. */
  upgrade(req: IncomingMessage, socket: Duplex): boolean {
    const connection = this.#core.tracker.of(req.socket);
    if (connection === undefined) {
      socket.destroy();
      return false;
    }
    const verdict = this.#admit(connection, req.method ?? 'GET', req.url ?? '', req.headers.host);
    if (!verdict.admit) {
      if (verdict.end === 'respond')
        writeRefusal(socket, verdict.status, body(verdict.status, verdict.reason));
      return false;
    }
    cleanIncomingMessage(req, this.#xfcc(connection, first(req.headers[XFCC_HEADER])));
    req.url = verdict.path + verdict.query;
    return true;
  }

  /** HTTP/2 streams: every stream is admitted (a session carries many requests). */
  stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[] | undefined): boolean {
    if (this.#gated.has(stream)) return true;
    const connection = stream.session === undefined ? undefined : this.#core.sessions.get(stream.session);
    if (connection === undefined) {
      stream.close(0x2); // INTERNAL_ERROR: a stream on a connection that was never admitted
      return false;
    }
    const verdict = this.#admit(
      connection,
      String(headers[':method'] ?? 'GET'),
      String(headers[':path'] ?? ''),
      first(headers[':authority']) ?? first(headers.host),
    );
    if (!verdict.admit) {
      if (verdict.end === 'respond') {
        stream.respond({ ':status': verdict.status, 'content-type': 'application/json' });
        stream.end(body(verdict.status, verdict.reason));
      } else {
        stream.close(0x8); // CANCEL: the connection is going away
      }
      return false;
    }
    cleanHttp2Request(
      { stream, headers, rawHeaders },
      verdict.path + verdict.query,
      this.#xfcc(connection, first(headers[XFCC_HEADER])),
    );
    this.#gated.add(stream);
    return true;
  }

  /** HTTP/2 compatibility requests: only for streams that passed {@link RequestGate.stream}. */
  compat(req: Http2ServerRequest): boolean {
    if (this.#gated.has(req.stream)) return true;
    req.stream.close(0x2);
    return false;
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function writeRefusal(socket: Duplex, status: 400 | 403, text: string): void {
  const line = status === 403 ? '403 Forbidden' : '400 Bad Request';
  socket.end(
    `HTTP/1.1 ${line}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
}
