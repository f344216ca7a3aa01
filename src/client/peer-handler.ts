import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Peer } from '../authz/peer.js';
import { peerOf } from '../tls/peer-registry.js';
import { responded } from './client-edges.js';
import { answered } from './refusal.js';

/**
 * The response header through which a sidecarless dispatcher tells `fetch` callers which server
 * answered: the SPIFFE ID the server proved in the mTLS handshake of the connection the response
 * came on. The dispatcher removes any header of this name the server sent, on every response
 * (mTLS, plaintext, ordinary TLS), so it cannot be spoofed: it is present only on responses from
 * an authenticated server.
 * @example
 * ```ts
 * import { PEER_ID_HEADER } from 'sidecarless';
 * const res = await fetch('http://boards:8080/shareditems');
 * console.log('served by', res.headers.get(PEER_ID_HEADER)); // spiffe://cluster.local/ns/demo/sa/boards
 * ```
 */
export const PEER_ID_HEADER = 'x-sidecarless-peer-id';

/**
 * What `onPeer` is told with each response from an authenticated server.
 * @example
 * ```ts
 * import type { PeerRequestInfo } from 'sidecarless';
 * const log = (info: PeerRequestInfo) => console.log(info.method, info.origin, info.path);
 * ```
 */
export interface PeerRequestInfo {
  /** The request's origin, `scheme://host:port`. */
  readonly origin: string;
  /** The request's method. */
  readonly method: string;
  /** The request's path and query. */
  readonly path: string;
}

/**
 * Called with the verified server of each mTLS response, before the caller sees the response.
 * @example
 * ```ts
 * import type { OnPeer } from 'sidecarless';
 * const onPeer: OnPeer = (peer, request) => {
 *   console.log(`${request.method} ${request.origin}${request.path} answered by ${peer.id}`);
 * };
 * ```
 */
export type OnPeer = (peer: Peer, request: PeerRequestInfo) => void;

const HEADER_BYTES = Buffer.from(PEER_ID_HEADER);

/** undici's handler callbacks before v7's controller API, which its Client still calls. */
type LegacyHandler = Required<
  Pick<Dispatcher.DispatchHandler, 'onConnect' | 'onError' | 'onHeaders' | 'onData' | 'onComplete'>
> &
  Pick<Dispatcher.DispatchHandler, 'onUpgrade' | 'onBodySent' | 'onResponseStarted'> & {
    onRequestSent?(): void;
  };

function isPeerHeader(name: Buffer | string): boolean {
  return name.length === HEADER_BYTES.length && name.toString().toLowerCase() === PEER_ID_HEADER;
}

/** Whether raw headers (name, value, name, value...) hold one of ours. */
export function hasPeerHeader(raw: readonly (Buffer | string)[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if (isPeerHeader(raw[i] as Buffer | string)) return true;
  return false;
}

/** Raw headers (name, value, name, value...) without any of ours: a copy, or `raw` itself when it has none. */
export function stripped<T extends Buffer | string>(raw: T[]): T[] {
  if (!hasPeerHeader(raw)) return raw;
  const out: T[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!isPeerHeader(raw[i] as T)) out.push(raw[i] as T, raw[i + 1] as T);
  }
  return out;
}

/**
 * Trailers without ours. HTTP/1.1 gives a raw list; undici's HTTP/2 client gives the stream's
 * trailers object (names in lower case, RFC 9113 §8.2.1).
 */
function strippedTrailers(trailers: string[]): string[] {
  if (Array.isArray(trailers)) return stripped(trailers);
  if (typeof trailers !== 'object' || !Object.hasOwn(trailers, PEER_ID_HEADER)) return trailers;
  const copy: Record<string, unknown> = { ...(trailers as object) };
  delete copy[PEER_ID_HEADER];
  return copy as unknown as string[];
}

// The header value of each verified server, encoded once per SPIFFE ID object: connections to
// one server share it (the verdict cache hands back the same verified chain), so a new
// connection per request does not encode it again.
const headerValues = new WeakMap<object, Buffer>();

function headerValueOf(peer: Peer): Buffer {
  const key = peer.id ?? peer;
  let value = headerValues.get(key);
  if (value === undefined) {
    value = Buffer.from(String(peer.id));
    headerValues.set(key, value);
  }
  return value;
}

/** What a dispatch of this client tracks: the socket of its Client, and when it is busy. */
export interface ClientSocketState {
  socket: Socket | undefined;
}

/** What a PeerHandler tells its dispatcher or agent: the onPeer callback, and when a socket is busy or idle. */
export interface PeerHandlerOwner {
  readonly onPeer: OnPeer | undefined;
  busy(socket: Socket): void;
  idle(socket: Socket): void;
}

/**
 * Wraps the handler of one request on one undici Client: tells the owner when the Client's socket
 * is busy (so rotation never closes it under a request), and gives the response the verified
 * server's identity. The socket a request is written on is the Client's current socket, taken
 * when the request starts: an HTTP/1.1 Client replaces its socket only after the old one closed,
 * and an HTTP/2 Client (one session on one socket) only after the session closed or got GOAWAY.
 */
export class PeerHandler implements LegacyHandler {
  readonly #inner: LegacyHandler;
  readonly #state: ClientSocketState;
  readonly #owner: PeerHandlerOwner;
  readonly #request: Dispatcher.DispatchOptions;
  #socket: Socket | undefined;
  #abort: ((err?: Error) => void) | undefined;

  constructor(
    inner: LegacyHandler,
    state: ClientSocketState,
    owner: PeerHandlerOwner,
    request: Dispatcher.DispatchOptions,
  ) {
    this.#inner = inner;
    this.#state = state;
    this.#owner = owner;
    this.#request = request;
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    // Called when the request is about to be written on the Client's socket.
    this.#abort = abort;
    this.#socket = this.#state.socket;
    if (this.#socket !== undefined) this.#owner.busy(this.#socket);
    (this.#inner.onConnect as (a: typeof abort, c?: unknown) => void)(abort, context);
  }

  /**
   * The headers of a response (final, 1xx or 101) as the caller gets them: without the server's
   * peer header, with ours when the server was authenticated. In place: undici's HTTP/1.1 parser
   * hands each response a new array and drops it after the call (client-h1.js
   * onHeadersComplete, onUpgrade), so no copy is needed on the hot path.
   */
  #headers<T extends Buffer | string>(headers: T[]): { raw: T[]; peer: Peer | undefined } {
    const raw = stripped(headers);
    const peer = this.#socket === undefined ? undefined : peerOf(this.#socket);
    if (peer?.mtls !== true || peer.id === null) return { raw, peer: undefined };
    const value = headerValueOf(peer);
    if (typeof raw[0] === 'string') (raw as string[]).push(PEER_ID_HEADER, value.toString());
    else (raw as Buffer[]).push(HEADER_BYTES, value);
    return { raw, peer };
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    answered(this.#socket);
    if (statusCode >= 200) responded(this.#socket, statusCode);
    const { raw, peer } = this.#headers(headers);
    if (peer !== undefined) {
      if (this.#owner.onPeer !== undefined) {
        const { origin, method, path } = this.#request;
        try {
          this.#owner.onPeer(peer, { origin: String(origin), method, path });
        } catch (err) {
          // A throwing callback fails the request rather than vanishing.
          this.#abort?.(err as Error);
          return false;
        }
      }
    }
    return this.#inner.onHeaders(statusCode, raw as Buffer[], resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.#inner.onData(chunk);
  }

  onComplete(trailers: string[] | null): void {
    this.#release();
    this.#inner.onComplete(trailers === null ? null : strippedTrailers(trailers));
  }

  onError(err: Error): void {
    this.#release();
    this.#inner.onError(err);
  }

  onUpgrade(
    statusCode: number,
    headers: Buffer[] | string[] | null,
    socket: import('node:stream').Duplex,
  ): void {
    answered(this.#socket);
    responded(this.#socket, statusCode);
    const raw = headers === null ? null : this.#headers(headers as Buffer[]).raw;
    // The socket now belongs to the caller, not to the pool.
    this.#release();
    this.#inner.onUpgrade?.(statusCode, raw, socket);
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.#inner.onBodySent?.(chunkSize, totalBytesSent);
  }

  onRequestSent(): void {
    this.#inner.onRequestSent?.();
  }

  onResponseStarted(): void {
    this.#inner.onResponseStarted?.();
  }

  #release(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) this.#owner.idle(socket);
  }
}

type Controller = Dispatcher.DispatchController;

/** Headers (or trailers) without ours, in both the parsed object and the controller's raw list. */
function clean(
  controller: Controller,
  rawField: 'rawHeaders' | 'rawTrailers',
  headers: IncomingHttpHeaders,
): IncomingHttpHeaders {
  const raw = (controller as unknown as Record<string, unknown>)[rawField];
  if (Array.isArray(raw))
    (controller as unknown as Record<string, unknown>)[rawField] = stripped(raw as Buffer[]);
  if (headers === null || typeof headers !== 'object' || !Object.hasOwn(headers, PEER_ID_HEADER))
    return headers;
  const copy = { ...headers };
  delete copy[PEER_ID_HEADER];
  return copy;
}

/**
 * For requests a sidecarless interceptor passes on to the next dispatcher (plaintext
 * destinations): removes the peer header, so only an authenticated response ever carries it.
 * Interceptors composed with undici 7 get handlers in the controller API (legacy ones are
 * wrapped by compose).
 */
export class StripPeerHeaderHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;

  constructor(inner: Dispatcher.DispatchHandler) {
    this.#inner = inner;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: import('node:stream').Duplex,
  ): void {
    this.#inner.onRequestUpgrade?.(controller, statusCode, clean(controller, 'rawHeaders', headers), socket);
  }

  /** Final and informational (1xx) responses alike: undici calls this for both. */
  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    this.#inner.onResponseStart?.(
      controller,
      statusCode,
      clean(controller, 'rawHeaders', headers),
      statusMessage,
    );
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: IncomingHttpHeaders): void {
    this.#inner.onResponseEnd?.(controller, clean(controller, 'rawTrailers', trailers));
  }

  onResponseError(controller: Controller, error: Error): void {
    this.#inner.onResponseError?.(controller, error);
  }
}
