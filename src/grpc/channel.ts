import type { Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { compilePeerMatcher, type PeerMatcher } from '../authz/peer-matcher.js';
import type { ConnectHooks } from '../client/connect.js';
import type { DestinationTable } from '../client/destinations.js';
import { checkOwnSvid } from '../client/refusal.js';
import { clientContextOf } from '../client/secure-context.js';
import { awaitServer, capture, currentIdentity } from '../client/sockets.js';
import { planOf, type Target, targetFor } from '../client/target.js';
import type { IdentitySource } from '../identity/source.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import { PeerVerifier } from '../tls/peer-verifier.js';

/**
 * Options of {@link createMtlsChannelCredentials}.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * import type { MtlsChannelCredentialsOptions } from 'sidecarless/grpc';
 * const options: MtlsChannelCredentialsOptions = {
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui'),
 *   expect: 'spiffe://cluster.local/ns/demo/sa/boards',
 * };
 * ```
 */
export interface MtlsChannelCredentialsOptions {
  /** The workload's SVID and bundles. */
  readonly identity: IdentitySource;
  /** The server identities accepted, as peer matchers (`'*'`: any authenticated server). */
  readonly expect: PeerMatcher;
  /** The TLS handshake of each new connection, in ms (default 10 000). */
  readonly timeout?: number;
}

const KNOWN: (keyof MtlsChannelCredentialsOptions)[] = ['identity', 'expect', 'timeout'];

// One verdict cache for every gRPC connection: verdicts belong to a BundleSet and go with it.
const verifier = new PeerVerifier('server');

const NO_TABLE: DestinationTable = Object.freeze({
  resolvesNames: false,
  candidates: () => [],
  select: () => undefined,
  resolve: () => undefined,
});

const never = (): never => {
  throw new Error('unreachable: a gRPC mTLS channel has no plaintext path');
};

/** The host and port a channel's target names (what grpc-js would send as SNI and authority). */
function endpointOf(
  target: grpc.experimental.GrpcUri,
  options: grpc.ChannelOptions,
): { host: string; port: number } {
  const override = options['grpc.ssl_target_name_override'];
  // grpc-js's authority for a unix socket target is "localhost".
  const path = target.scheme?.startsWith('unix') ? 'localhost' : target.path.replace(/^\/+/, '');
  const split = grpc.experimental.splitHostPort(path);
  const host = typeof override === 'string' && override !== '' ? override : (split?.host ?? path);
  return { host, port: split?.port ?? 443 };
}

/** Runs mTLS over the TCP socket grpc-js connected, and resolves once the server is authenticated. */
function secure(tcp: Socket, target: Target, hooks: ConnectHooks): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const identity = currentIdentity(hooks, target);
    checkOwnSvid(identity, target);
    const captured = capture();
    const socket = tls.connect({
      socket: tcp,
      ...(target.servername === undefined ? {} : { servername: target.servername }),
      secureContext: clientContextOf(identity),
      // The decision is verifyServer's (in awaitServer), against the bundle of the server's own
      // trust domain: OpenSSL's verdict against every bundle at once never decides.
      rejectUnauthorized: false,
      checkServerIdentity: captured.check,
      ALPNProtocols: ['h2'],
    });
    awaitServer(socket, tcp, target, hooks, identity.svid, captured.presented, (err, ok) => {
      if (err !== null) reject(err);
      else resolve(ok as TLSSocket);
    });
  });
}

/**
 * Channel credentials for grpc-js clients that authenticate the server as a mesh sidecar did:
 * each new connection presents the workload's current SVID, and is handed to grpc-js only after
 * the server's whole chain verified against the bundle of its own trust domain and its SPIFFE ID
 * matched `expect`. grpc-js's own TLS verification (`createSsl`, `createFromSecureContext`) is
 * never used: it checks against one merged CA list of every bundle, which accepts a partner's root
 * signing an ID in our trust domain. Rotation applies to every new connection; ALPN offers `h2`.
 *
 * grpc-js connects TCP itself (its resolver, its addresses) and then asks these credentials to
 * secure the socket (`_createSecureConnector`, part of grpc-js 1.13+'s `ChannelCredentials`).
 * A refused server fails the connection attempt, so calls end with `UNAVAILABLE`; the cause is
 * the library's error (`ERR_PEER_ID_MISMATCH`, `ERR_SVID_*`, `ERR_REFUSED_BY_SERVER`…) in the
 * status details.
 *
 * @param options - identity, the expected server, handshake timeout
 * @returns credentials for `new Client(target, credentials)` or a generated client
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a bad option, `ERR_POLICY_INVALID` for a bad
 *   `expect` matcher
 * @example
 * ```ts
 * import * as grpc from '@grpc/grpc-js';
 * import { createLocalCa } from 'sidecarless';
 * import { createMtlsChannelCredentials } from 'sidecarless/grpc';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui');
 * const credentials = createMtlsChannelCredentials({ identity, expect: 'spiffe://cluster.local/ns/demo/sa/greeter' });
 * const client = new grpc.Client('greeter.demo:8443', credentials);
 * client.close();
 * ```
 */
export function createMtlsChannelCredentials(
  options: MtlsChannelCredentialsOptions,
): grpc.ChannelCredentials {
  const opts = checkOptions<MtlsChannelCredentialsOptions>(options, KNOWN, 'createMtlsChannelCredentials');
  if (typeof opts.identity?.current !== 'function') {
    throw invalidOption('identity', 'an IdentitySource', opts.identity);
  }
  const expect = compilePeerMatcher(opts.expect, 'expect', { allowUnauthenticated: false });
  const hooks: ConnectHooks = {
    identity: opts.identity,
    verifier,
    connectTimeout: durationOption('timeout', opts.timeout, 10_000),
    established: () => {},
    fallback: never,
    plainTls: never,
    // A server that closes a new connection (TLS 1.3: it checks our certificate after our
    // handshake ended) ends it cleanly, so grpc-js fails the call UNAVAILABLE; as an error it
    // would be INTERNAL, a status clients read as a bug in the server.
    closeIsRefusal: false,
  };
  return new MtlsChannelCredentials(hooks, expect);
}

class MtlsChannelCredentials extends grpc.ChannelCredentials {
  readonly #hooks: ConnectHooks;
  readonly #expect: ReturnType<typeof compilePeerMatcher>;

  constructor(hooks: ConnectHooks, expect: ReturnType<typeof compilePeerMatcher>) {
    super();
    this.#hooks = hooks;
    this.#expect = expect;
  }

  override _isSecure(): boolean {
    return true;
  }

  override _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(
    channelTarget: grpc.experimental.GrpcUri,
    options: grpc.ChannelOptions,
    callCredentials?: grpc.CallCredentials,
  ): grpc.experimental.SecureConnector {
    let target: Target | Error;
    try {
      const { host, port } = endpointOf(channelTarget, options);
      // No destination table: the one destination is this channel's, whatever the host's spelling.
      const plan = planOf(NO_TABLE, { host, port, protocol: 'https:' });
      const destination = Object.freeze({
        key: plan.address,
        keys: [plan.address],
        mode: 'mtls' as const,
        expect: this.#expect,
      });
      target = targetFor(plan, destination);
    } catch (err) {
      // A target no SNI can be given for (a malformed name): every connection attempt fails.
      target = err as Error;
    }
    const hooks = this.#hooks;
    const calls = callCredentials ?? grpc.credentials.createEmpty();
    return {
      connect: async (socket) => {
        if (target instanceof Error) {
          socket.destroy();
          throw target;
        }
        return { socket: await secure(socket, target, hooks), secure: true };
      },
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => {},
    };
  }
}
