import type { TLSSocket } from 'node:tls';
import { compilePeerMatcher, type PeerMatcher } from '../authz/peer-matcher.js';
import { SidecarlessError } from '../errors.js';
import type { IdentitySource } from '../identity/source.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import { show } from '../internal/show.js';
import { PeerVerifier } from '../tls/peer-verifier.js';
import { connectTarget } from './connect.js';
import type { DestinationTable } from './destinations.js';
import { parseHost, portOf } from './hosts.js';
import { planOf, targetFor } from './target.js';

/**
 * Options of {@link connectMtls}.
 * @example
 * ```ts
 * import { createLocalCa, type ConnectMtlsOptions } from 'sidecarless';
 * const options: ConnectMtlsOptions = {
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   host: 'redis.demo.svc.cluster.local',
 *   port: 6379,
 *   expect: 'spiffe://cluster.local/ns/demo/sa/redis',
 * };
 * ```
 */
export interface ConnectMtlsOptions {
  /** The workload's SVID and bundles. */
  readonly identity: IdentitySource;
  /** The server's host name or IP address (also the SNI, but for IP addresses). */
  readonly host: string;
  /** The server's port. */
  readonly port: number;
  /** The server identities accepted, as peer matchers (`'*'`: any authenticated server). */
  readonly expect: PeerMatcher;
  /** TCP connect plus TLS handshake, in ms (default 10 000). */
  readonly timeout?: number;
  /** Aborts the attempt. */
  readonly signal?: AbortSignal;
}

const KNOWN: (keyof ConnectMtlsOptions)[] = ['identity', 'host', 'port', 'expect', 'timeout', 'signal'];

// One verdict cache for every raw connection: verdicts belong to a BundleSet and are dropped
// with it.
const verifier = new PeerVerifier('server');

const NO_TABLE: DestinationTable = Object.freeze({
  resolvesNames: false,
  candidates: () => [],
  select: () => undefined,
  resolve: () => undefined,
});

const never = (): never => {
  throw new Error('unreachable: connectMtls has no plaintext path');
};

/**
 * Opens a raw mTLS connection (for protocols other than HTTP) with the workload's SVID, and
 * resolves only once the server is authenticated: its chain verified against the bundle of its
 * own trust domain and its SPIFFE ID matched against `expect`. SNI is `host` (none for an IP).
 * No TLS session is resumed. `getPeer(socket)` gives the server's `Peer`. Our own SVID is
 * checked first (expired, not yet valid). An IPv4-mapped IPv6 `host` is its IPv4 address; an
 * IPv6 zone id is refused.
 *
 * A server refusal can arrive after this resolves: under TLS 1.3 the server checks our
 * certificate only after our handshake ended, and sends nothing when it accepts, so there is no
 * verdict to wait for. A certificate alert, or a reset of what the caller wrote before any byte
 * came back, then reaches the socket's `error` listener as `ERR_REFUSED_BY_SERVER` (the network
 * error as `cause`). A clean close in that window stays a close (`end`): a raw protocol's server
 * may close without a word, and an `error` event there could crash a caller that listens for
 * none. Protocols whose server speaks first tell acceptance by its first bytes.
 *
 * @param options - identity, host, port, expected server, timeout, abort signal
 * @returns the connected, authenticated socket
 * @throws SidecarlessError `ERR_OPTION_INVALID` for bad options, `ERR_POLICY_INVALID` for a bad
 *   matcher or a zone id; rejects with `ERR_NO_IDENTITY`, `ERR_OWN_SVID_EXPIRED`,
 *   `ERR_OWN_SVID_NOT_YET_VALID`, `ERR_PEER_ID_MISMATCH`, `ERR_SVID_*`, `ERR_PEER_NOT_TLS`,
 *   `ERR_HANDSHAKE_FAILED`, `ERR_REFUSED_BY_SERVER` (a certificate alert in the handshake),
 *   `ERR_TIMEOUT` or `ERR_ABORTED`, or the network error
 * @example
 * ```ts
 * import { connectMtls, createLocalCa, getPeer } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/worker');
 * const socket = await connectMtls({ identity, host: 'queue', port: 5671, expect: 'spiffe://cluster.local/ns/demo/sa/queue' });
 * console.log(getPeer(socket).id?.toString());
 * socket.end();
 * ```
 */
export function connectMtls(options: ConnectMtlsOptions): Promise<TLSSocket> {
  const opts = checkOptions<ConnectMtlsOptions>(options, KNOWN, 'connectMtls');
  if (typeof opts.identity?.current !== 'function') {
    throw invalidOption('identity', 'an IdentitySource', opts.identity);
  }
  const host = typeof opts.host === 'string' ? parseHost(opts.host) : undefined;
  if (host === undefined || !host.ok) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `option "host" ${host?.rule ?? 'must be a host name or an IP address'}, got ${show(opts.host)}`,
      { field: 'host' },
    );
  }
  const port = typeof opts.port === 'number' ? portOf(opts.port, 'https:') : undefined;
  if (port === undefined) throw invalidOption('port', 'a port number (1-65535)', opts.port);
  const expect = compilePeerMatcher(opts.expect, 'expect', { allowUnauthenticated: false });
  const connectTimeout = durationOption('timeout', opts.timeout, 10_000);
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw invalidOption('signal', 'an AbortSignal', signal);
  // No destination table: the one destination is this call's, whatever the host's spelling.
  const plan = planOf(NO_TABLE, { host: opts.host, port, protocol: 'https:' });
  const address = plan.address;
  const destination = Object.freeze({ key: address, keys: [address], mode: 'mtls' as const, expect });
  const target = targetFor(plan, destination);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(
        new SidecarlessError('ERR_ABORTED', `connectMtls to ${address} was aborted`, { value: address }),
      );
      return;
    }
    let done = false;
    const onAbort = () => {
      done = true;
      reject(
        new SidecarlessError('ERR_ABORTED', `connectMtls to ${address} was aborted`, { value: address }),
      );
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    connectTarget(
      {
        identity: opts.identity,
        verifier,
        connectTimeout,
        established: () => {},
        fallback: never,
        plainTls: never,
        closeIsRefusal: false,
      },
      target,
      (err, socket) => {
        signal?.removeEventListener('abort', onAbort);
        if (done) {
          socket?.destroy();
          return;
        }
        if (err !== null) reject(err);
        else resolve(socket as TLSSocket);
      },
    );
  });
}
