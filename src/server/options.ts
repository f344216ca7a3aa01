import type { AuthorizationMap } from '../authz/authorization-map.js';
import { normalizePath } from '../authz/normalize.js';
import type { PeerMatcher } from '../authz/peer-matcher.js';
import { type AuthorizationPolicy, isAuthorizationPolicy } from '../authz/policy.js';
import { SidecarlessError } from '../errors.js';
import type { IdentitySource } from '../identity/source.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import { DEFAULT_MAX_EDGES } from '../observe/edges.js';
import { MTLS_MODES, type MtlsMode } from '../policy/mode.js';
import { FORWARD_CLIENT_CERT_MODES, type ForwardClientCert } from './headers.js';

export type { MtlsMode } from '../policy/mode.js';

/**
 * What the server speaks over the (m)TLS or plaintext connection: HTTP/1.1 (a real `http.Server`),
 * HTTP/2 with HTTP/1.1 fallback by ALPN, or raw TLS (the handler gets the socket and its peer).
 * @example
 * ```ts
 * import type { ServerProtocol } from 'sidecarless';
 * const protocol: ServerProtocol = 'http2';
 * ```
 */
export type ServerProtocol = 'http1' | 'http2' | 'tls';

/**
 * Options of `createMtlsServer`. Checked once, at construction; unknown keys are refused.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const server = createMtlsServer({
 *   identity: ca.identity('/ns/demo/sa/boards'),
 *   mode: 'STRICT',
 *   plaintextPaths: ['/healthz'],
 *   authorize: { 'GET /shareditems': 'spiffe://cluster.local/ns/demo/sa/app-ui', '/healthz': 'unauthenticated' },
 *   handshakeTimeout: 5_000,
 * }, (_req, res) => res.end('ok'));
 * ```
 */
export interface MtlsServerOptions {
  /** Where the server's SVID and trusted bundles come from. Required unless `mode` is `DISABLE`. */
  readonly identity?: IdentitySource;
  /** Default `STRICT` (Istio defaults to PERMISSIVE; a security library fails closed). */
  readonly mode?: MtlsMode;
  /** Default `http1`. */
  readonly protocol?: ServerProtocol;
  /**
   * Who may call what. HTTP: an authorization map (`'[METHOD ]/path'` → peer matchers, `'*'` the
   * default). Raw TLS: a peer matcher checked right after the handshake. Default: any
   * authenticated peer of a trusted trust domain (`'*'`), plus, in PERMISSIVE and DISABLE, any
   * peer at all (the mode already says plaintext is welcome). HTTP servers also take a compiled
   * policy: one from `createAuthorizationPolicy()` (with its own `deny` and mode), or from
   * `fromIstio()` (Istio's evaluation).
   */
  readonly authorize?: AuthorizationMap | PeerMatcher | AuthorizationPolicy;
  /** Rules checked before `authorize`: any matching rule denies. HTTP only. */
  readonly deny?: AuthorizationMap;
  /** `audit` decides and reports but lets requests through; transport checks are never relaxed. */
  readonly authorizationMode?: 'enforce' | 'audit';
  /**
   * Under STRICT, plaintext requests for exactly these paths are let through (Kubernetes probes);
   * any other plaintext request is reset. Checked per request. HTTP only.
   */
  readonly plaintextPaths?: readonly string[];
  /** Close a connection that sends nothing within this many ms (default 10 000). */
  readonly sniffTimeout?: number;
  /** Abort TLS handshakes that take longer (default 10 000 ms, not Node's 120 000). */
  readonly handshakeTimeout?: number;
  /** HTTP: time to receive a request's headers (default 20 000 ms). */
  readonly headersTimeout?: number;
  /** HTTP: time to receive a whole request (default 60 000 ms). */
  readonly requestTimeout?: number;
  /** HTTP/1.1: idle keep-alive time (default 5 000 ms, as Node). */
  readonly keepAliveTimeout?: number;
  /** Refuse connections above this many open ones (default: no cap). */
  readonly maxConnections?: number;
  /** Close connections older than this many ms, gracefully (default: no limit). */
  readonly maxConnectionAge?: number;
  /** HTTP/2: concurrent streams per session (default 100). */
  readonly maxConcurrentStreams?: number;
  /** HTTP/2 and HTTP/1.1: the largest header block accepted, in bytes (default 16 384). */
  readonly maxHeaderSize?: number;
  /** The lowest TLS version accepted (default `TLSv1.2`). */
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * What happens to a caller's `x-forwarded-client-cert` header (Envoy's
   * `forward_client_cert_details`): `'sanitize'` (default: removed), `'sanitize-set'`,
   * `'append-forward'` (Istio's sidecar inbound default) or `'forward-only'`; see
   * {@link ForwardClientCert}. HTTP only.
   */
  readonly forwardClientCert?: ForwardClientCert;
  /**
   * Resume TLS sessions (TLS 1.3 and 1.2 tickets), safely (default false: every connection is a
   * full handshake). Sessions are bound to the server's SVID, bundle generation and instance
   * (`sessionIdContext`), ticket keys are fresh for every identity update and every
   * `sessionLifetime`, and a resumed connection is admitted only when the server holds the record
   * of a full handshake it admitted under the same keys, whose peer is still trusted and not
   * expired; otherwise it is closed (`ERR_RESUMPTION_REFUSED`). A resumed peer is the Peer of that
   * full handshake, with `resumed: true`.
   */
  readonly resumption?: boolean;
  /** How long a session may be resumed, and the longest life of ticket keys, in ms (default 300 000, at most 86 400 000). */
  readonly sessionLifetime?: number;
  /**
   * How many inbound edges `describe()` keeps (default 1 000): one per verified caller, plus one
   * `unauthenticated` for every other; when full, the least recently seen edge is dropped.
   */
  readonly maxEdges?: number;
}

/** The options after checking, with defaults applied. */
export interface ServerSettings {
  readonly identity: IdentitySource | undefined;
  readonly mode: MtlsMode;
  readonly protocol: ServerProtocol;
  readonly authorize: AuthorizationMap | PeerMatcher | AuthorizationPolicy | undefined;
  readonly deny: AuthorizationMap | undefined;
  readonly authorizationMode: 'enforce' | 'audit';
  readonly plaintextPaths: ReadonlySet<string>;
  readonly sniffTimeout: number;
  readonly handshakeTimeout: number;
  readonly headersTimeout: number;
  readonly requestTimeout: number;
  readonly keepAliveTimeout: number;
  readonly maxConnections: number | undefined;
  readonly maxConnectionAge: number | undefined;
  readonly maxConcurrentStreams: number;
  readonly maxHeaderSize: number;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly forwardClientCert: ForwardClientCert;
  readonly resumption: boolean;
  readonly sessionLifetime: number;
  readonly maxEdges: number;
}

const KNOWN: (keyof MtlsServerOptions)[] = [
  'identity',
  'mode',
  'protocol',
  'authorize',
  'deny',
  'authorizationMode',
  'plaintextPaths',
  'sniffTimeout',
  'handshakeTimeout',
  'headersTimeout',
  'requestTimeout',
  'keepAliveTimeout',
  'maxConnections',
  'maxConnectionAge',
  'maxConcurrentStreams',
  'maxHeaderSize',
  'minVersion',
  'forwardClientCert',
  'resumption',
  'sessionLifetime',
  'maxEdges',
];

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw invalidOption(field, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

function positiveInteger(field: string, value: unknown, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw invalidOption(field, 'a positive integer', value);
  }
  return value;
}

function isIdentitySource(value: unknown): value is IdentitySource {
  const v = value as Partial<IdentitySource> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.current === 'function' &&
    typeof v.subscribe === 'function' &&
    typeof v.ready === 'function'
  );
}

function booleanOption(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(field, 'a boolean', value);
  return value;
}

function sessionLifetimeOf(value: unknown): number {
  const ms = durationOption('sessionLifetime', value, 300_000);
  if (ms < 1_000 || ms > 86_400_000)
    throw invalidOption('sessionLifetime', 'between 1 000 and 86 400 000 ms', value);
  return ms;
}

/** Checks the options of createMtlsServer. */
export function checkServerOptions(options: unknown): ServerSettings {
  const opts = checkOptions<MtlsServerOptions>(options ?? {}, KNOWN, 'createMtlsServer');
  const mode = oneOf<MtlsMode>('mode', opts.mode, MTLS_MODES, 'STRICT');
  const protocol = oneOf('protocol', opts.protocol, ['http1', 'http2', 'tls'] as const, 'http1');
  if (opts.identity !== undefined && !isIdentitySource(opts.identity)) {
    throw invalidOption(
      'identity',
      'an IdentitySource (createLocalCa().identity(), workloadApiIdentity(), …)',
      opts.identity,
    );
  }
  if (opts.identity === undefined && mode !== 'DISABLE') {
    throw invalidOption('identity', `an IdentitySource (mode ${mode} needs the server's SVID)`, undefined);
  }
  if (protocol === 'tls' && mode !== 'STRICT') {
    // Raw TLS has nothing to sniff for but TLS; a plaintext raw socket has no request to authorize.
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `protocol "tls" supports mode STRICT only, got ${mode}`,
      {
        field: 'mode',
      },
    );
  }
  const plaintextPaths = opts.plaintextPaths ?? [];
  if (
    !Array.isArray(plaintextPaths) ||
    !plaintextPaths.every((p) => typeof p === 'string' && /^\/[^?#]*$/.test(p))
  ) {
    throw invalidOption(
      'plaintextPaths',
      'a list of paths such as "/healthz" (no query)',
      opts.plaintextPaths,
    );
  }
  for (const path of plaintextPaths) {
    // Matched exactly against the normalised request path, so it must be written that way.
    if (normalizePath(path) !== path || (path.length > 1 && path.endsWith('/'))) {
      throw invalidOption(
        'plaintextPaths',
        'paths in normal form (no "//", ".", "..", escapes or trailing "/")',
        path,
      );
    }
  }
  if (plaintextPaths.length > 0 && (mode !== 'STRICT' || protocol === 'tls')) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      'option "plaintextPaths" applies to STRICT HTTP servers only (PERMISSIVE already serves plaintext)',
      { field: 'plaintextPaths' },
    );
  }
  if (isAuthorizationPolicy(opts.authorize)) {
    if (protocol === 'tls') {
      throw invalidOption(
        'authorize',
        'a peer matcher with protocol "tls" (a raw TLS connection has no routes)',
        opts.authorize,
      );
    }
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
  }
  if (protocol === 'tls' && opts.deny !== undefined) {
    throw invalidOption('deny', 'absent with protocol "tls" (a raw TLS connection has no routes)', opts.deny);
  }
  return Object.freeze({
    identity: opts.identity,
    mode,
    protocol,
    authorize: opts.authorize,
    deny: opts.deny,
    authorizationMode: isAuthorizationPolicy(opts.authorize)
      ? opts.authorize.mode
      : oneOf('authorizationMode', opts.authorizationMode, ['enforce', 'audit'] as const, 'enforce'),
    plaintextPaths: new Set(plaintextPaths),
    sniffTimeout: durationOption('sniffTimeout', opts.sniffTimeout, 10_000),
    handshakeTimeout: durationOption('handshakeTimeout', opts.handshakeTimeout, 10_000),
    headersTimeout: durationOption('headersTimeout', opts.headersTimeout, 20_000),
    requestTimeout: durationOption('requestTimeout', opts.requestTimeout, 60_000),
    keepAliveTimeout: durationOption('keepAliveTimeout', opts.keepAliveTimeout, 5_000),
    maxConnections: positiveInteger('maxConnections', opts.maxConnections, undefined),
    maxConnectionAge:
      opts.maxConnectionAge === undefined
        ? undefined
        : durationOption('maxConnectionAge', opts.maxConnectionAge, 0),
    maxConcurrentStreams: positiveInteger('maxConcurrentStreams', opts.maxConcurrentStreams, 100) as number,
    maxHeaderSize: positiveInteger('maxHeaderSize', opts.maxHeaderSize, 16_384) as number,
    minVersion: oneOf('minVersion', opts.minVersion, ['TLSv1.2', 'TLSv1.3'] as const, 'TLSv1.2'),
    forwardClientCert: oneOf(
      'forwardClientCert',
      opts.forwardClientCert,
      FORWARD_CLIENT_CERT_MODES,
      'sanitize',
    ),
    resumption: booleanOption('resumption', opts.resumption, false),
    sessionLifetime: sessionLifetimeOf(opts.sessionLifetime),
    maxEdges: positiveInteger('maxEdges', opts.maxEdges, DEFAULT_MAX_EDGES) as number,
  });
}
