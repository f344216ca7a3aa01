import type http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { nodeHttp } from '../internal/builtins.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { AgentMtls } from './agent-mtls.js';
import type { ConnectCallback, FallbackEvent } from './connect.js';
import { CLIENT_OPTIONS, type ClientReport, type MtlsClientOptions } from './core.js';

/**
 * Options of `createMtlsAgent`: the client options and node:http Agent settings.
 * @example
 * ```ts
 * import { createLocalCa, type MtlsAgentOptions } from 'sidecarless';
 * const options: MtlsAgentOptions = {
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
 *   maxSockets: 32,
 * };
 * ```
 */
export interface MtlsAgentOptions extends MtlsClientOptions {
  /**
   * `'https:'` (default) for an `https.Agent`; `'http:'` for an `http.Agent` whose connections
   * are mTLS all the same, for `http.request` code with `http://` URLs (Node refuses an https
   * Agent there).
   */
  readonly protocol?: 'https:' | 'http:';
  /** Keep connections for reuse (default true: every new mTLS connection is a full handshake). */
  readonly keepAlive?: boolean;
  /** TCP keep-alive initial delay, in ms (default 1 000). */
  readonly keepAliveMsecs?: number;
  /** Connections per host (default unlimited). */
  readonly maxSockets?: number;
  /** Connections in all (default unlimited). */
  readonly maxTotalSockets?: number;
  /** Idle connections kept per host (default 256). */
  readonly maxFreeSockets?: number;
  /** Socket inactivity timeout, in ms. */
  readonly timeout?: number;
  /** Which idle connection is reused first (default `'lifo'`). */
  readonly scheduling?: 'fifo' | 'lifo';
}

/**
 * What a sidecarless agent adds to a node:http(s) Agent: the `fallback` event, `describe()` and
 * `close()`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsAgent, type MtlsAgentExtras } from 'sidecarless';
 * const agent: MtlsAgentExtras = createMtlsAgent({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { '*': { mode: 'auto', expect: '*' } },
 * });
 * agent.on('fallback', (event) => console.warn('plaintext to', event.address));
 * await agent.close();
 * ```
 */
export interface MtlsAgentExtras extends AsyncDisposable {
  /** An `auto` destination fell back to plaintext: the server does not speak TLS. */
  on(eventName: 'fallback', listener: (event: FallbackEvent) => void): this;
  /** See `on('fallback')`. */
  once(eventName: 'fallback', listener: (event: FallbackEvent) => void): this;
  /** Removes a `fallback` listener. */
  off(eventName: 'fallback', listener: (event: FallbackEvent) => void): this;
  /** Destroys every connection and stops following the identity. Idempotent. */
  close(): Promise<void>;
  /**
   * This workload's identity and its outbound edges: per destination `host:port`, requests,
   * share over mTLS, last seen, last refusal, TLS version and key-exchange group.
   */
  describe(): ClientReport;
}

/**
 * An `https.Agent` making mTLS connections; see `createMtlsAgent`.
 * @example
 * ```ts
 * import axios from 'axios';
 * import { createLocalCa, createMtlsAgent, type MtlsHttpsAgent } from 'sidecarless';
 * const httpsAgent: MtlsHttpsAgent = createMtlsAgent({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui'),
 *   destinations: { 'boards:8443': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
 * });
 * const client = axios.create({ httpsAgent });
 * ```
 */
export type MtlsHttpsAgent = https.Agent & MtlsAgentExtras;

/**
 * An `http.Agent` whose connections are mTLS, for `http://` URLs; see `createMtlsAgent`.
 * @example
 * ```ts
 * import http from 'node:http';
 * import { createLocalCa, createMtlsAgent, type MtlsHttpAgent } from 'sidecarless';
 * const agent: MtlsHttpAgent = createMtlsAgent({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui'),
 *   destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
 *   protocol: 'http:',
 * });
 * http.get('http://boards:8080/shareditems', { agent }, (res) => res.resume()); // mTLS on the wire
 * ```
 */
export type MtlsHttpAgent = http.Agent & MtlsAgentExtras;

const AGENT_OPTIONS = [
  'protocol',
  'keepAlive',
  'keepAliveMsecs',
  'maxSockets',
  'maxTotalSockets',
  'maxFreeSockets',
  'timeout',
  'scheduling',
] as const;

const baseAddRequest = (nodeHttp.Agent.prototype as unknown as { addRequest: (...args: unknown[]) => void })
  .addRequest;

type AgentInternals = {
  createSocket(req: unknown, options: object, cb: (err: Error | null, socket?: Duplex) => void): void;
  removeSocket(socket: Duplex, options: object): void;
  getName(options: object): string;
  requests: Record<string, unknown[] | undefined>;
};
const baseAgent = nodeHttp.Agent.prototype as unknown as AgentInternals;

/**
 * node:http's Agent, when a socket closes while requests are queued, creates a socket for the
 * queue without counting the sockets already on their way. Its connections are made synchronously;
 * ours only once the server is authenticated, so several can be on their way: the surplus ones
 * arrive to an empty queue, over maxSockets, and are destroyed right after their handshake (the
 * server sees the client hang up). Here a socket is made for the queue only when fewer are on
 * their way than there are queued requests.
 */
class QueueRefills {
  readonly #onTheirWay = new Map<string, number>();
  #removing = false;

  removeSocket(agent: AgentInternals, socket: Duplex, options: object): void {
    this.#removing = true;
    try {
      baseAgent.removeSocket.call(agent, socket, options);
    } finally {
      this.#removing = false;
    }
  }

  createSocket(
    agent: AgentInternals,
    req: unknown,
    options: object,
    cb: (err: Error | null, socket?: Duplex) => void,
  ): void {
    if (!this.#removing) {
      baseAgent.createSocket.call(agent, req, options, cb);
      return;
    }
    const name = agent.getName(options);
    const queued = agent.requests[name]?.length ?? 0;
    const onTheirWay = this.#onTheirWay.get(name) ?? 0;
    if (onTheirWay >= queued) return; // a socket on its way serves the queue when it arrives
    this.#onTheirWay.set(name, onTheirWay + 1);
    baseAgent.createSocket.call(agent, req, options, (err, socket) => {
      const left = (this.#onTheirWay.get(name) ?? 1) - 1;
      if (left === 0) this.#onTheirWay.delete(name);
      else this.#onTheirWay.set(name, left);
      cb(err, socket);
    });
  }
}

function agentOptions(opts: MtlsAgentOptions): https.AgentOptions {
  const out: Record<string, unknown> = { keepAlive: true, maxCachedSessions: 0 };
  for (const key of AGENT_OPTIONS) if (key !== 'protocol' && opts[key] !== undefined) out[key] = opts[key];
  return out as https.AgentOptions;
}

class HttpsMtlsAgent extends https.Agent {
  readonly #mtls: AgentMtls;

  constructor(options: MtlsAgentOptions) {
    super(agentOptions(options));
    this.#mtls = new AgentMtls(this, options, 'https:');
  }

  override createConnection(
    options: https.RequestOptions,
    cb?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    return this.#mtls.createConnection(options, cb as ConnectCallback);
  }

  /** Node's (undocumented, stable) hook for each request an Agent is given. */
  addRequest(req: http.ClientRequest, ...rest: unknown[]): void {
    this.#mtls.watch(req);
    baseAddRequest.call(this, req, ...rest);
  }

  override keepSocketAlive(socket: Duplex): boolean {
    return !this.#mtls.isRetired(socket) && (super.keepSocketAlive(socket) as unknown as boolean);
  }

  readonly #refills = new QueueRefills();

  /** Node's (undocumented, stable) hook when a socket leaves the pool: see QueueRefills. */
  removeSocket(socket: Duplex, options: object): void {
    this.#refills.removeSocket(this as unknown as AgentInternals, socket, options);
  }

  /** Node's (undocumented, stable) hook that makes a socket: see QueueRefills. */
  createSocket(req: unknown, options: object, cb: (err: Error | null, socket?: Duplex) => void): void {
    this.#refills.createSocket(this as unknown as AgentInternals, req, options, cb);
  }

  close(): Promise<void> {
    return this.#mtls.close();
  }

  describe(): ClientReport {
    return this.#mtls.describe();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class HttpMtlsAgent extends nodeHttp.Agent {
  readonly #mtls: AgentMtls;

  constructor(options: MtlsAgentOptions) {
    super(agentOptions(options));
    this.#mtls = new AgentMtls(this, options, 'http:');
  }

  override createConnection(
    options: http.ClientRequestArgs,
    cb?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    return this.#mtls.createConnection(options as https.RequestOptions, cb as ConnectCallback);
  }

  /** Node's (undocumented, stable) hook for each request an Agent is given. */
  addRequest(req: http.ClientRequest, ...rest: unknown[]): void {
    this.#mtls.watch(req);
    baseAddRequest.call(this, req, ...rest);
  }

  override keepSocketAlive(socket: Duplex): boolean {
    return !this.#mtls.isRetired(socket) && (super.keepSocketAlive(socket) as unknown as boolean);
  }

  readonly #refills = new QueueRefills();

  /** Node's (undocumented, stable) hook when a socket leaves the pool: see QueueRefills. */
  removeSocket(socket: Duplex, options: object): void {
    this.#refills.removeSocket(this as unknown as AgentInternals, socket, options);
  }

  /** Node's (undocumented, stable) hook that makes a socket: see QueueRefills. */
  createSocket(req: unknown, options: object, cb: (err: Error | null, socket?: Duplex) => void): void {
    this.#refills.createSocket(this as unknown as AgentInternals, req, options, cb);
  }

  close(): Promise<void> {
    return this.#mtls.close();
  }

  describe(): ClientReport {
    return this.#mtls.describe();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates a node:https Agent that presents the workload's SVID and authenticates each server by
 * its SPIFFE ID, per destination: for `https.request`, axios (`httpsAgent`), got
 * (`agent: { https }`). With `protocol: 'http:'` it is an `http.Agent` whose connections are
 * mTLS all the same, so `http.request('http://boards:8080/')` code gets mTLS on the wire as with a
 * sidecar. Destinations, modes, verification and rotation are those of {@link createMtlsDispatcher};
 * `getPeer(res)` gives the verified server of a response.
 *
 * For `mtls`/`auto` destinations the request's own TLS options (`ca`, `rejectUnauthorized`,
 * `checkServerIdentity`, `servername`...) are ignored: SPIFFE authentication replaces them. For an
 * `https://` request to a `plaintext` destination they apply as usual (ordinary TLS).
 * Connections are kept alive by default; no TLS session is resumed unless `resumption: true`.
 *
 * Before any listener of the application runs (the `https.get(url, cb)` callback included), the
 * agent records the server's Peer on the response and removes a server-sent
 * {@link PEER_ID_HEADER} from it (`headers`, `headersDistinct`, `rawHeaders`), from its trailers,
 * and from `information` (1xx), `upgrade` and `connect` responses. A server that resets or closes
 * a new connection before answering its first request, or refuses our certificate with an alert,
 * makes the request emit `ERR_REFUSED_BY_SERVER`; other resets keep Node's errors.
 *
 * @param options - identity, destinations, `protocol`, connect timeout, Agent settings
 * @returns the agent; `close()` it when done
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option or destination (a missing `expect`
 *   names the key), `ERR_POLICY_INVALID` for a bad `expect` matcher. Requests emit `error` with
 *   `ERR_HOST_INVALID`, `ERR_NO_DESTINATION`, `ERR_NO_IDENTITY`, `ERR_OWN_SVID_EXPIRED`,
 *   `ERR_OWN_SVID_NOT_YET_VALID`, `ERR_PEER_ID_MISMATCH`, `ERR_SVID_*`, `ERR_PEER_NOT_TLS`,
 *   `ERR_HANDSHAKE_FAILED`, `ERR_REFUSED_BY_SERVER` or `ERR_TIMEOUT`, naming the destination.
 * @example
 * ```ts
 * import https from 'node:https';
 * import { createLocalCa, createMtlsAgent, getPeer } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui');
 * const destinations = { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } };
 * const agent = createMtlsAgent({ identity, destinations });
 * https.get('https://boards:8080/shareditems', { agent }, (res) => {
 *   console.log(getPeer(res).id?.toString()); // spiffe://cluster.local/ns/demo/sa/boards
 * });
 * const httpAgent = createMtlsAgent({ identity, destinations, protocol: 'http:' }); // for http:// URLs
 * ```
 */
export function createMtlsAgent(options: MtlsAgentOptions & { readonly protocol?: 'https:' }): MtlsHttpsAgent;
/**
 * An `http.Agent` for `http://` URLs whose connections are mTLS all the same (the sidecar's
 * meaning of an `http://` call to an mTLS destination): see the `https:` overload.
 * @param options - the same options, with `protocol: 'http:'`
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import http from 'node:http';
 * import { createLocalCa, createMtlsAgent } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui');
 * const agent = createMtlsAgent({ identity, protocol: 'http:', destinations: { 'boards:8080': { expect: 'cluster.local/ns/demo/sa/boards' } } });
 * http.get('http://boards:8080/shareditems', { agent }); // mTLS on the wire
 * ```
 */
export function createMtlsAgent(options: MtlsAgentOptions & { readonly protocol: 'http:' }): MtlsHttpAgent;
/**
 * The agent for either protocol, when `protocol` is not known statically: see the `https:` overload.
 * @param options - the options
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_POLICY_INVALID`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsAgent, type MtlsAgentOptions } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'td' }).identity('/web');
 * const options: MtlsAgentOptions = { identity, destinations: { '*': { mode: 'plaintext' } } };
 * const agent = createMtlsAgent(options);
 * ```
 */
export function createMtlsAgent(options: MtlsAgentOptions): MtlsHttpsAgent | MtlsHttpAgent;
export function createMtlsAgent(options: MtlsAgentOptions): MtlsHttpsAgent | MtlsHttpAgent {
  const opts = checkOptions<MtlsAgentOptions>(
    options,
    [...CLIENT_OPTIONS, ...AGENT_OPTIONS],
    'createMtlsAgent',
  );
  const protocol = opts.protocol ?? 'https:';
  if (protocol !== 'https:' && protocol !== 'http:')
    throw invalidOption('protocol', '"https:" or "http:"', protocol);
  if (opts.keepAlive !== undefined && typeof opts.keepAlive !== 'boolean') {
    throw invalidOption('keepAlive', 'a boolean', opts.keepAlive);
  }
  for (const key of [
    'keepAliveMsecs',
    'maxSockets',
    'maxTotalSockets',
    'maxFreeSockets',
    'timeout',
  ] as const) {
    const value = opts[key];
    if (value !== undefined && !(typeof value === 'number' && value > 0))
      throw invalidOption(key, 'a positive number', value);
  }
  if (opts.scheduling !== undefined && opts.scheduling !== 'fifo' && opts.scheduling !== 'lifo') {
    throw invalidOption('scheduling', '"fifo" or "lifo"', opts.scheduling);
  }
  return (protocol === 'https:' ? new HttpsMtlsAgent(opts) : new HttpMtlsAgent(opts)) as
    | MtlsHttpsAgent
    | MtlsHttpAgent;
}
