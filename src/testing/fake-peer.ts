import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { X509Svid } from '../x509/svid.js';
import type * as pub from './public-types.js';

/**
 * Options of {@link fakePeer}.
 * @example
 * ```ts
 * import { fakePeer } from 'sidecarless/testing';
 * const noClientCert = fakePeer({ tls: true, alpn: 'h2', remoteAddress: '10.0.0.7' });
 * ```
 */
export interface FakePeerOptions {
  /** The peer's SPIFFE ID; `null` (default) for a peer without a verified certificate. */
  readonly id?: string | pub.SpiffeId | null;
  /** Take the ID, certificate, chain and notAfter from a real SVID instead. */
  readonly svid?: pub.X509Svid;
  /** Whether the connection is TLS (default: true with an ID, false without). */
  readonly tls?: boolean;
  /** Remote address (default `127.0.0.1`). */
  readonly remoteAddress?: string | null;
  /** ALPN protocol (default `null`). */
  readonly alpn?: string | null;
  /** Whether the session was resumed (default false). */
  readonly resumed?: boolean;
  /** When the identity stops being valid (default: the SVID's, or an hour from now with an ID). */
  readonly notAfter?: Date | null;
}

const KNOWN: (keyof FakePeerOptions)[] = [
  'id',
  'svid',
  'tls',
  'remoteAddress',
  'alpn',
  'resumed',
  'notAfter',
];

/**
 * Builds the `Peer` value authorization code takes, without sockets, so identity checks can be
 * unit-tested. A string or `SpiffeId` gives an mTLS peer with that ID; `null` or
 * `'unauthenticated'` a plaintext peer; options describe anything in between.
 *
 * @param peer - a SPIFFE ID, `null`/`'unauthenticated'`, or options
 * @throws SidecarlessError `ERR_SPIFFE_ID_INVALID` for a bad ID, `ERR_OPTION_INVALID` for an
 *   impossible peer (an ID without TLS)
 * @example
 * ```ts
 * import { fakePeer } from 'sidecarless/testing';
 * const ui = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
 * ui.mtls; // true
 * fakePeer(null).mtls; // false: plaintext
 * fakePeer({ tls: true }).tls; // TLS without a client certificate
 * ```
 */
export function fakePeer(peer: string | pub.SpiffeId | FakePeerOptions | null = null): pub.Peer {
  const opts: FakePeerOptions =
    peer === null || peer === 'unauthenticated'
      ? {}
      : typeof peer === 'string' || peer instanceof SpiffeId
        ? { id: peer }
        : checkOptions<FakePeerOptions>(peer, KNOWN, 'fakePeer');
  const svid = opts.svid;
  if (svid !== undefined && !(svid instanceof X509Svid)) throw invalidOption('svid', 'an X509Svid', svid);
  if (
    svid !== undefined &&
    opts.id !== undefined &&
    opts.id !== null &&
    !svid.id.equals(opts.id.toString())
  ) {
    throw invalidOption('id', `the SVID's ID ${svid.id} (or leave it out)`, String(opts.id));
  }
  const rawId = svid?.id ?? opts.id ?? null;
  const id = rawId === null ? null : rawId instanceof SpiffeId ? rawId : SpiffeId.parse(rawId);
  const tls = opts.tls ?? id !== null;
  if (id !== null && !tls) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      'fakePeer: a peer with a SPIFFE ID is always a TLS peer',
      {
        field: 'tls',
      },
    );
  }
  const notAfter =
    opts.notAfter !== undefined
      ? opts.notAfter
      : svid !== undefined
        ? svid.notAfter
        : id === null
          ? null
          : new Date(Date.now() + 3_600_000);
  const value: pub.Peer = {
    id,
    trustDomain: id?.trustDomain ?? null,
    mtls: id !== null,
    tls,
    certificate: svid?.leaf ?? null,
    chain: Object.freeze([...(svid?.certificates ?? [])]),
    notAfter,
    remoteAddress: opts.remoteAddress === undefined ? '127.0.0.1' : opts.remoteAddress,
    alpn: opts.alpn ?? null,
    resumed: opts.resumed ?? false,
  };
  Object.defineProperty(value, inspect.custom, {
    value: () => `Peer(${id === null ? (tls ? 'TLS, no client certificate' : 'plaintext') : `mTLS ${id}`})`,
  });
  return Object.freeze(value);
}
