import type { Socket } from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { AuthorizationMap } from '../authz/authorization-map.js';
import { type AuthorizationDecision, authorizeNormalized } from '../authz/authorize.js';
import { decisionEvent } from '../authz/decision-event.js';
import {
  type AuthorizationPolicy,
  CompiledAuthorizationPolicy,
  createAuthorizationPolicy,
  isAuthorizationPolicy,
} from '../authz/policy.js';
import type { IdentitySource } from '../identity/source.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { acceptConnection, type Delivery, refuseUnknownDoor } from '../server/accept.js';
import type { Connection } from '../server/connections.js';
import { watchDrops } from '../server/http-settings.js';
import { takeListeners, wrapEmit } from '../server/listener.js';
import { checkServerOptions, type MtlsServerOptions } from '../server/options.js';
import { ServerCore } from '../server/server-core.js';
import { type MtlsTlsServer, serverExtras } from '../server/server-types.js';
import { GrpcConnections, setCallPeer } from './connections.js';

/**
 * Options of {@link createMtlsGrpcServer}. Checked once; unknown keys are refused. The mode is
 * always STRICT: a gRPC call is admitted only over mTLS with a client SVID that verifies.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * import type { MtlsGrpcServerOptions } from 'sidecarless/grpc';
 * const options: MtlsGrpcServerOptions = {
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/boards'),
 *   authorize: { '/demo.Boards/List': 'spiffe://cluster.local/ns/demo/sa/app-ui', '*': 'spiffe://cluster.local/*' },
 * };
 * ```
 */
export interface MtlsGrpcServerOptions {
  /** Where the server's SVID and trusted bundles come from. */
  readonly identity: IdentitySource;
  /**
   * Who may call which method: an authorization map whose paths are gRPC method paths
   * (`/package.Service/Method`, `/package.Service/*`, `'*'` the default; every call is a `POST`),
   * or a compiled policy from `createAuthorizationPolicy()`. Default: any authenticated peer of
   * a trusted trust domain (`{ '*': '*' }`).
   */
  readonly authorize?: AuthorizationMap | AuthorizationPolicy;
  /** Rules checked before `authorize`: any matching rule denies. */
  readonly deny?: AuthorizationMap;
  /** `audit` decides and reports but lets calls through; transport checks are never relaxed. */
  readonly authorizationMode?: 'enforce' | 'audit';
  /** Close a connection that sends nothing within this many ms (default 10 000). */
  readonly sniffTimeout?: MtlsServerOptions['sniffTimeout'];
  /** Abort TLS handshakes that take longer (default 10 000 ms). */
  readonly handshakeTimeout?: MtlsServerOptions['handshakeTimeout'];
  /** Refuse connections above this many open ones (default: no cap). */
  readonly maxConnections?: MtlsServerOptions['maxConnections'];
  /** Close connections older than this many ms (default: no limit). */
  readonly maxConnectionAge?: MtlsServerOptions['maxConnectionAge'];
  /** The lowest TLS version accepted (default `TLSv1.2`). */
  readonly minVersion?: MtlsServerOptions['minVersion'];
  /** How many inbound edges `describe()` keeps (default 1 000). */
  readonly maxEdges?: MtlsServerOptions['maxEdges'];
}

/**
 * The listener {@link createMtlsGrpcServer} returns: a `tls.Server` with the library's report,
 * events and compiled policy (`policy`).
 * @example
 * ```ts
 * import * as grpc from '@grpc/grpc-js';
 * import { createLocalCa } from 'sidecarless';
 * import { createMtlsGrpcServer, type MtlsGrpcServer } from 'sidecarless/grpc';
 * const listener: MtlsGrpcServer = createMtlsGrpcServer(
 *   { identity: createLocalCa({ trustDomain: 'td' }).identity('/api') }, new grpc.Server());
 * ```
 */
export type MtlsGrpcServer = MtlsTlsServer;

const KNOWN: (keyof MtlsGrpcServerOptions)[] = [
  'identity',
  'authorize',
  'deny',
  'authorizationMode',
  'sniffTimeout',
  'handshakeTimeout',
  'maxConnections',
  'maxConnectionAge',
  'minVersion',
  'maxEdges',
];

function compilePolicy(opts: MtlsGrpcServerOptions): AuthorizationPolicy {
  const { authorize, deny, authorizationMode } = opts;
  if (isAuthorizationPolicy(authorize)) {
    // The compiled policy carries its own deny rules and mode: two sources would disagree.
    for (const field of ['deny', 'authorizationMode'] as const) {
      if (opts[field] !== undefined) {
        throw invalidOption(
          field,
          'absent when "authorize" is a compiled policy (it has its own)',
          opts[field],
        );
      }
    }
    return authorize;
  }
  if (
    authorize !== undefined &&
    (typeof authorize !== 'object' || authorize === null || Array.isArray(authorize))
  ) {
    throw invalidOption(
      'authorize',
      'an authorization map of gRPC method paths, or a compiled policy',
      authorize,
    );
  }
  return createAuthorizationPolicy({
    authorize: authorize ?? { '*': '*' },
    ...(deny === undefined ? {} : { deny }),
    ...(authorizationMode === undefined ? {} : { mode: authorizationMode }),
  });
}

/** The most method paths whose decisions one connection keeps (grpc-js routes only registered ones). */
const DECISIONS_PER_CONNECTION = 64;

/**
 * Decides the calls of one listener. For a policy from `createAuthorizationPolicy()` (frozen;
 * its rules read only the method, the path and the peer) the decision is a pure function of the
 * connection's peer, fixed when the connection was admitted, and the method path: it is kept per
 * (connection, path) and goes with the connection. A peer that stops verifying (a bundle or
 * trust-domain change, expiry, rotation) has its connection closed, so no kept decision outlives
 * its peer's trust. Policy engines (the Istio import) decide every call afresh. Every call still
 * emits its event and counts on its edge.
 */
class CallDecisions {
  readonly #policy: AuthorizationPolicy;
  readonly #kept: WeakMap<Connection, Map<string, AuthorizationDecision>> | undefined;

  constructor(policy: AuthorizationPolicy) {
    this.#policy = policy;
    this.#kept = policy instanceof CompiledAuthorizationPolicy ? new WeakMap() : undefined;
  }

  decide(connection: Connection, path: string): AuthorizationDecision {
    const kept = this.#kept;
    let paths = kept?.get(connection);
    const known = paths?.get(path);
    if (known !== undefined) return known;
    const decision = authorizeNormalized(this.#policy, connection.peer, {
      ok: true,
      method: 'POST',
      path,
      query: '',
    });
    if (kept !== undefined) {
      if (paths === undefined) {
        paths = new Map();
        kept.set(connection, paths);
      }
      if (paths.size < DECISIONS_PER_CONNECTION) paths.set(path, decision);
    }
    return decision;
  }
}

/** Why a call is refused, as the gRPC status the caller gets, or undefined to let it through. */
function authorizeCall(
  core: ServerCore,
  decisions: CallDecisions,
  connection: Connection | undefined,
  path: string,
): grpc.StatusObject | undefined {
  if (connection === undefined || connection.closing !== undefined) {
    // A call on a connection the gate did not admit (or is closing): never served.
    return {
      code: grpc.status.UNAVAILABLE,
      details: 'sidecarless: the connection is not admitted',
      metadata: new grpc.Metadata(),
    };
  }
  const { peer } = connection;
  const decision = decisions.decide(connection, path);
  if (core.observesAuthorization()) core.emitAuthorization(decisionEvent(decision, peer));
  core.edges.request(connection.edge, peer.mtls);
  if (decision.allowed) return undefined;
  core.totals.denied++;
  core.edges.refused(connection.edge, 'ERR_NOT_AUTHORIZED', `${path}: ${decision.reason}`);
  // The reason code only: never the server's rules.
  return {
    code: grpc.status.PERMISSION_DENIED,
    details: `sidecarless: ${decision.reason}`,
    metadata: new grpc.Metadata(),
  };
}

/**
 * Decides one call when its request metadata arrives: true to let it through (its peer recorded
 * for `getGrpcPeer`), false once the call was ended with the refusal's status.
 */
type Admit = (call: grpc.ServerInterceptingCallInterface, path: string, metadata: grpc.Metadata) => boolean;

type CallListener = Parameters<grpc.ServerInterceptingCallInterface['start']>[0];

/**
 * The library's per-call layer, between grpc-js's transport call and the method handler. grpc-js's
 * generic `ServerInterceptingCall` runs every message, half-close and status of every call
 * through closures and pending queues so that an asynchronous interceptor may finish first; the
 * authorization decision is synchronous, so this layer forwards everything directly and acts
 * only on the request metadata: refused, the handler never sees the call (no metadata, no
 * message, no half-close; grpc-js reads the request only once the handler asked for it).
 */
class AuthorizingCall implements grpc.ServerInterceptingCallInterface, CallListener {
  readonly #next: grpc.ServerInterceptingCallInterface;
  readonly #path: string;
  readonly #admit: Admit;
  #listener: CallListener | undefined;
  #admitted = false;

  constructor(next: grpc.ServerInterceptingCallInterface, path: string, admit: Admit) {
    this.#next = next;
    this.#path = path;
    this.#admit = admit;
  }

  start(listener: CallListener): void {
    this.#listener = listener;
    // This object is also the transport call's listener (one allocation per call).
    this.#next.start(this);
  }

  onReceiveMetadata(metadata: grpc.Metadata): void {
    if (this.#admitted || !this.#admit(this.#next, this.#path, metadata)) return;
    this.#admitted = true;
    this.#listener?.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    if (this.#admitted) this.#listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    if (this.#admitted) this.#listener?.onReceiveHalfClose();
  }

  onCancel(): void {
    this.#listener?.onCancel();
  }

  sendMetadata(metadata: grpc.Metadata): void {
    this.#next.sendMetadata(metadata);
  }

  sendMessage(message: unknown, callback: () => void): void {
    this.#next.sendMessage(message, callback);
  }

  sendStatus(status: Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0]): void {
    this.#next.sendStatus(status);
  }

  startRead(): void {
    this.#next.startRead();
  }

  getPeer(): string {
    return this.#next.getPeer();
  }

  getDeadline(): grpc.Deadline {
    return this.#next.getDeadline();
  }

  getHost(): string {
    return this.#next.getHost();
  }

  getAuthContext(): ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']> {
    return this.#next.getAuthContext();
  }

  getConnectionInfo(): ReturnType<grpc.ServerInterceptingCallInterface['getConnectionInfo']> {
    return this.#next.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<grpc.ServerInterceptingCallInterface['getMetricsRecorder']> {
    return this.#next.getMetricsRecorder();
  }
}

// grpc-js's ServerInterceptingCall implements the whole call interface, plus its own helpers.
const GENERIC_HELPERS = new Set(['constructor', 'processPendingMessage', 'processPendingStatus']);

/**
 * Whether AuthorizingCall implements every method of the installed grpc-js's call interface
 * (read from grpc-js's own implementation of it); a method it lacked would throw in a handler.
 */
export function thinCallFits(generic: object = grpc.ServerInterceptingCall.prototype): boolean {
  return Object.getOwnPropertyNames(generic).every(
    (name) =>
      GENERIC_HELPERS.has(name) ||
      typeof (AuthorizingCall.prototype as unknown as Record<string, unknown>)[name] === 'function',
  );
}

/** Whether this module serves calls through AuthorizingCall (else grpc-js's generic layer). */
export const THIN_CALL_FITS = thinCallFits();

/**
 * Serves a grpc-js `Server` over the library's mTLS gate, as a mesh sidecar fronted a gRPC
 * service: each connection is sniffed and its TLS handshake run by the library, the client's whole
 * chain is verified against the bundle of its own trust domain (never grpc-js's own TLS, which
 * merges every bundle into one CA list), and only then is the socket handed to grpc-js through
 * `server.createConnectionInjector()`, which runs HTTP/2 on it. Every call is authorized before
 * its handler runs, against the same authorization map as HTTP, with the method path
 * (`/package.Service/Method`) as the path; a denied call ends with `PERMISSION_DENIED`. Handlers
 * read the caller with {@link getGrpcPeer}.
 *
 * The mode is STRICT: a client without a certificate fails the handshake (its channel reports
 * `UNAVAILABLE`), plaintext is reset. Rotation, trust changes and expiry apply as for
 * `createMtlsServer`: a peer that no longer verifies, or whose SVID expires, has its connection
 * closed. The grpc-js server needs no `bindAsync`; shut both down: `grpcServer.tryShutdown()`
 * ends the calls, `listener.close()` the port.
 *
 * @param options - identity, authorization, limits
 * @param grpcServer - the grpc-js server with its services added
 * @returns the listening `tls.Server` (call `listen()`), with `describe()`, `policy` and events
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option, `ERR_POLICY_INVALID` for a bad
 *   authorization map
 * @example
 * ```ts
 * import * as grpc from '@grpc/grpc-js';
 * import { createLocalCa } from 'sidecarless';
 * import { createMtlsGrpcServer, getGrpcPeer } from 'sidecarless/grpc';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = new grpc.Server();
 * const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) };
 * server.addService(
 *   { hello: { path: '/demo.Greeter/Hello', requestStream: false, responseStream: false,
 *     requestSerialize: json.serialize, requestDeserialize: json.deserialize,
 *     responseSerialize: json.serialize, responseDeserialize: json.deserialize } },
 *   { hello: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) =>
 *       done(null, { from: getGrpcPeer(call).id?.toString() }) },
 * );
 * const listener = createMtlsGrpcServer({
 *   identity: ca.identity('/ns/demo/sa/greeter'),
 *   authorize: { '/demo.Greeter/Hello': 'spiffe://cluster.local/ns/demo/sa/app-ui' },
 * }, server);
 * listener.listen(8443);
 * ```
 */
export function createMtlsGrpcServer(
  options: MtlsGrpcServerOptions,
  grpcServer: grpc.Server,
): MtlsGrpcServer {
  const opts = checkOptions<MtlsGrpcServerOptions>(options, KNOWN, 'createMtlsGrpcServer');
  if (typeof (grpcServer as Partial<grpc.Server> | null)?.createConnectionInjector !== 'function') {
    throw invalidOption('grpcServer', 'a grpc-js Server (@grpc/grpc-js 1.10 or later)', grpcServer);
  }
  const { authorize: _a, deny: _d, authorizationMode: _m, ...transport } = opts;
  const policy = compilePolicy(opts);
  if (opts.identity === undefined) {
    throw invalidOption('identity', "an IdentitySource (a gRPC server needs the server's SVID)", undefined);
  }
  const settings = checkServerOptions({ ...transport, protocol: 'tls', mode: 'STRICT' });
  const server = tls.createServer();
  const core = new ServerCore(settings, server);
  const connections = new GrpcConnections();
  const decisions = new CallDecisions(policy);
  const admit: Admit = (call, path, metadata) => {
    const connection = connections.of(call.getConnectionInfo());
    const refusal = authorizeCall(core, decisions, connection, path);
    if (refusal !== undefined || connection === undefined) {
      call.sendStatus(refusal as grpc.StatusObject);
      return false;
    }
    setCallPeer(metadata, connection.peer);
    return true;
  };
  const interceptor: grpc.ServerInterceptor = THIN_CALL_FITS
    ? // grpc-js types an interceptor's result as its own class; it uses only the call interface.
      (method, call) =>
        new AuthorizingCall(call, method.path, admit) as unknown as grpc.ServerInterceptingCall
    : (method, call) =>
        // A grpc-js whose call interface has methods AuthorizingCall does not know: its own
        // generic layer, slower but complete.
        new grpc.ServerInterceptingCall(call, {
          start(next) {
            next({
              onReceiveMetadata(metadata, forward) {
                if (admit(call, method.path, metadata)) forward(metadata);
              },
            });
          },
        });
  // TLS ends in the library; grpc-js runs HTTP/2 over the verified socket ("insecure" to it).
  const injector = grpcServer.createConnectionInjector(
    grpc.experimental.createServerCredentialsWithInterceptors(grpc.ServerCredentials.createInsecure(), [
      interceptor,
    ]),
  );
  takeListeners(server, 'connection');
  const delivery: Delivery = {
    alpn: ['h2'],
    h2c: false,
    tls(connection, socket) {
      if (!connections.add(connection, socket)) {
        core.rejectConnection(
          connection,
          'handshake',
          'ERR_GRPC_UNTRACKABLE',
          'a connection without distinct TCP addresses and ports (a unix socket, or a four-tuple already open): refused',
          'destroy',
        );
        return;
      }
      injector.injectConnection(socket);
    },
    plaintext(raw) {
      // admitConnection never admits plaintext on a STRICT raw TLS listener.
      raw.destroy();
    },
  };
  wrapEmit(server, 'server', 'tls', {
    accept: (_e, _event, [socket]) => {
      acceptConnection(core, socket as Socket, 'tls', delivery);
      return true;
    },
    secure: (_e, event, [socket]) => {
      refuseUnknownDoor(core, event, [socket as tls.TLSSocket]);
      return false;
    },
    unknown: (event, carried) => refuseUnknownDoor(core, event, carried),
  });
  core.start();
  core.checkPolicyTrustDomains(policy);
  watchDrops(core, server);
  server.once('close', () => {
    core.stop();
    injector.destroy();
  });
  return serverExtras(server, core, policy) as MtlsGrpcServer;
}
