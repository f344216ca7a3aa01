// Header hygiene, as a sidecar does it: identity headers a caller sends are its own claims, so
// they are removed (or replaced with the server's verified view) before any listener runs.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Peer } from '../authz/peer.js';

/** The header through which a sidecarless client tells fetch callers who answered. */
export const PEER_ID_HEADER = 'x-sidecarless-peer-id';
/** Envoy's header for the caller's client certificate, as Istio's sidecars forward it. */
export const XFCC_HEADER = 'x-forwarded-client-cert';

/**
 * What the server does with `x-forwarded-client-cert`, with Envoy's semantics
 * (`forward_client_cert_details`):
 * - `'sanitize'` (default, Envoy SANITIZE): remove it;
 * - `'sanitize-set'` (SANITIZE_SET): replace it with the server's element for an mTLS caller;
 * - `'append-forward'` (APPEND_FORWARD, Istio's sidecar inbound default): keep an mTLS caller's
 *   header and append the server's element;
 * - `'forward-only'` (FORWARD_ONLY): keep an mTLS caller's header as it is.
 * A plaintext or certificate-less caller's header is always removed.
 * @example
 * ```ts
 * import type { ForwardClientCert } from 'sidecarless';
 * const xfcc: ForwardClientCert = 'append-forward';
 * ```
 */
export type ForwardClientCert = 'sanitize' | 'sanitize-set' | 'append-forward' | 'forward-only';

export const FORWARD_CLIENT_CERT_MODES: readonly ForwardClientCert[] = Object.freeze([
  'sanitize',
  'sanitize-set',
  'append-forward',
  'forward-only',
]);

/** Envoy quotes a value holding a separator or a quote; the Subject is always quoted. */
function xfccValue(value: string, always = false): string {
  if (!always && !/[,;="\s]/.test(value)) return value;
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Node's subject (`C=..\nO=..\nCN=..`) as an RFC 2253 string, most specific first, as Envoy shows it. */
function rfc2253(subject: string | undefined): string {
  if (subject === undefined || subject === '') return '';
  return subject
    .split('\n')
    .reverse()
    .map((rdn) => {
      const eq = rdn.indexOf('=');
      if (eq === -1) return rdn;
      const value = rdn.slice(eq + 1).replace(/[,+"\\<>;]/g, (c) => `\\${c}`);
      return `${rdn.slice(0, eq)}=${value}`;
    })
    .join(',');
}

function dnsNames(peer: Peer): string[] {
  const san = peer.certificate?.subjectAltName;
  if (san === undefined) return [];
  // Node quotes any SAN holding a separator (CVE-2021-44532): a quoted DNS entry is not a name.
  return san
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:') && !entry.startsWith('DNS:"'))
    .map((entry) => entry.slice(4));
}

const elements = new WeakMap<Peer, { by: string; element: string }>();

/**
 * The server's XFCC element for an mTLS peer, as Envoy writes it:
 * `By=<server ID>;Hash=<SHA-256 of the peer leaf, hex>;Subject="<RFC 2253>";URI=<peer ID>`, then
 * `DNS=<name>` for each DNS SAN. Built once per connection's peer.
 */
export function xfccElement(peer: Peer, by: string): string {
  const cached = elements.get(peer);
  if (cached?.by === by) return cached.element;
  const leaf = peer.certificate;
  const parts = [`By=${xfccValue(by)}`];
  if (leaf !== null) parts.push(`Hash=${createHash('sha256').update(leaf.raw).digest('hex')}`);
  parts.push(`Subject=${xfccValue(rfc2253(leaf?.subject), true)}`);
  parts.push(`URI=${xfccValue(String(peer.id))}`);
  for (const name of dnsNames(peer)) parts.push(`DNS=${xfccValue(name)}`);
  const element = parts.join(';');
  elements.set(peer, { by, element });
  return element;
}

/**
 * The `x-forwarded-client-cert` value a request goes on with (undefined: none), by the option's
 * rule: pure, for tests. `incoming` is what the caller sent.
 */
export function forwardedClientCert(
  mode: ForwardClientCert,
  peer: Peer,
  incoming: string | undefined,
  by: string | null,
): string | undefined {
  // A caller that proved no certificate has no standing to say who the client was.
  if (!peer.mtls || peer.id === null) return undefined;
  switch (mode) {
    case 'sanitize':
      return undefined;
    case 'forward-only':
      return incoming;
    case 'sanitize-set':
      return by === null ? undefined : xfccElement(peer, by);
    case 'append-forward': {
      if (by === null) return incoming;
      const ours = xfccElement(peer, by);
      return incoming === undefined || incoming === '' ? ours : `${incoming},${ours}`;
    }
  }
}

function isIdentityHeader(name: string): boolean {
  // Most headers are neither: compare only names of the right length.
  if (name.length === PEER_ID_HEADER.length) return name.toLowerCase() === PEER_ID_HEADER;
  if (name.length === XFCC_HEADER.length) return name.toLowerCase() === XFCC_HEADER;
  return false;
}

function hasIdentityHeader(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if (isIdentityHeader(raw[i] as string)) return true;
  return false;
}

function withoutIdentityHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!isIdentityHeader(raw[i] as string)) out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

function stripObject(headers: Record<string, unknown>): void {
  delete headers[PEER_ID_HEADER];
  delete headers[XFCC_HEADER];
}

/** Removes identity headers from an HTTP/1.1 request's trailers, as they arrive (listener of 'end'). */
function cleanTrailers(this: IncomingMessage): void {
  if (!hasIdentityHeader(this.rawTrailers)) return;
  // Node builds trailers lazily from rawTrailers with the count it parsed: build both views
  // first, then shrink the raw form.
  stripObject(this.trailers as Record<string, unknown>);
  stripObject(this.trailersDistinct as Record<string, unknown>);
  this.rawTrailers = withoutIdentityHeaders(this.rawTrailers);
}

/**
 * Cleans an HTTP/1.1 request before any listener sees it: a caller-sent `x-sidecarless-peer-id`
 * is removed from `headers`, `headersDistinct`, `rawHeaders` (Hono reads it) and the trailers,
 * and `x-forwarded-client-cert` becomes `xfcc` (undefined: removed).
 */
export function cleanIncomingMessage(req: IncomingMessage, xfcc: string | undefined): void {
  if (hasIdentityHeader(req.rawHeaders) || xfcc !== undefined) {
    // Node builds headers lazily from rawHeaders with the count it parsed: replacing rawHeaders
    // first would leave the lazy views reading past its end. Build both views, then edit all three.
    const headers = req.headers as Record<string, unknown>;
    const distinct = req.headersDistinct as Record<string, unknown>;
    stripObject(headers);
    stripObject(distinct);
    const raw = withoutIdentityHeaders(req.rawHeaders);
    if (xfcc !== undefined) {
      headers[XFCC_HEADER] = xfcc;
      distinct[XFCC_HEADER] = [xfcc];
      raw.push(XFCC_HEADER, xfcc);
    }
    req.rawHeaders = raw;
  }
  // Only a chunked body has trailers.
  if (req.headers['transfer-encoding'] !== undefined) req.once('end', cleanTrailers);
}

/** Removes identity headers from an HTTP/2 stream's trailers (listener of 'trailers'). */
function cleanHttp2Trailers(trailers: IncomingHttpHeaders): void {
  stripObject(trailers as Record<string, unknown>);
}

/** What an HTTP/2 stream needs cleaned: its header object, its raw headers, its trailers. */
export interface Http2RequestHeaders {
  readonly stream: { on(event: 'trailers', listener: (trailers: IncomingHttpHeaders) => void): unknown };
  readonly headers: IncomingHttpHeaders;
  /** The flat [name, value, …] list Node passes as 'stream''s fourth argument, edited in place. */
  readonly rawHeaders: string[] | undefined;
}

/**
 * Cleans an HTTP/2 request before any session, server or compatibility listener: identity
 * headers removed (XFCC set to `xfcc` when defined), and the raw `:path` set to the normalised
 * path the handler receives, so no raw form disagrees with what was authorised.
 */
export function cleanHttp2Request(
  request: Http2RequestHeaders,
  path: string,
  xfcc: string | undefined,
): void {
  const { headers, rawHeaders } = request;
  headers[':path'] = path;
  stripObject(headers as Record<string, unknown>);
  if (xfcc !== undefined) headers[XFCC_HEADER] = xfcc;
  if (rawHeaders !== undefined) {
    const clean = withoutIdentityHeaders(rawHeaders);
    for (let i = 0; i + 1 < clean.length; i += 2) if (clean[i] === ':path') clean[i + 1] = path;
    if (xfcc !== undefined) clean.push(XFCC_HEADER, xfcc);
    rawHeaders.splice(0, rawHeaders.length, ...clean);
  }
  request.stream.on('trailers', cleanHttp2Trailers);
}
