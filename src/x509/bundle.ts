import { createPublicKey, type JsonWebKey, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { type TrustDomain, toTrustDomain } from '../spiffe/trust-domain.js';
import { type CertificateInfo, inspectCertificate } from './certificate.js';
import { checkAuthorityProfile } from './profile.js';
import { type CertificateInput, readCertificates } from './read-certificates.js';

/**
 * The most authorities one bundle may hold: bounds memory and the anchor search.
 * @example
 * ```ts
 * import { MAX_BUNDLE_AUTHORITIES } from 'sidecarless';
 * console.log(`a bundle holds at most ${MAX_BUNDLE_AUTHORITIES} authorities`);
 * ```
 */
export const MAX_BUNDLE_AUTHORITIES = 256;

/**
 * Options of {@link X509Bundle.parse}.
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { X509Bundle } from 'sidecarless';
 * const path = '/run/spire/bundle.json';
 * const bundle = X509Bundle.parse('example.org', readFileSync(path), { format: 'jwks', source: path });
 * ```
 */
export interface X509BundleParseOptions {
  /** The encoding; `auto` (default) tells JSON, PEM and DER apart by their first bytes. */
  readonly format?: 'auto' | 'pem' | 'der' | 'jwks';
  /** Names the input (a file path, say) in error messages. */
  readonly source?: string;
}

/**
 * A JWK of a SPIFFE bundle that is not an X.509 authority (a `jwt-svid` key, or an unknown use).
 * @example
 * ```ts
 * import { X509Bundle } from 'sidecarless';
 * const bundle = X509Bundle.parse('example.org', '{"keys":[{"use":"jwt-svid","kty":"OKP","kid":"a"}]}');
 * const jwtKeys = bundle.otherKeys.filter((k) => k.use === 'jwt-svid');
 * ```
 */
export type BundleJwk = Readonly<Record<string, unknown>>;

interface BundleParts {
  readonly authorities: readonly CertificateInfo[];
  readonly sequence?: number | undefined;
  readonly refreshHint?: number | undefined;
  readonly otherKeys?: readonly BundleJwk[] | undefined;
  /** Names the input in messages (default `for <trust domain>`). */
  readonly where?: string | undefined;
}

function bundleError(
  where: string,
  rule: string,
  detail: { index?: number; field?: string } = {},
  cause?: unknown,
) {
  return new SidecarlessError(
    'ERR_BUNDLE_INVALID',
    `bundle ${where}: ${rule}`,
    detail,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The X.509 authorities of one trust domain: the certificates that may anchor the chains of
 * SVIDs in that trust domain, and nothing else. Immutable.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { X509Bundle } from 'sidecarless';
 * const bundle = X509Bundle.parse('cluster.local', readFileSync('/etc/istio/root-cert.pem'));
 * bundle.authorities.length;
 * ```
 */
export class X509Bundle {
  /** The trust domain whose SVIDs these authorities anchor. */
  readonly trustDomain: TrustDomain;
  /** The authorities (CA certificates), without duplicates. */
  readonly authorities: readonly X509Certificate[];
  /** `spiffe_sequence` of a SPIFFE bundle document, when it had one. */
  readonly sequence: number | undefined;
  /** `spiffe_refresh_hint` in seconds, when the document had one. */
  readonly refreshHint: number | undefined;
  /** JWKs of other uses (`jwt-svid`, unknown): kept, never used for X.509. */
  readonly otherKeys: readonly BundleJwk[];
  readonly #anchors: readonly CertificateInfo[];

  private constructor(trustDomain: TrustDomain, parts: BundleParts) {
    const seen = new Set<string>();
    const anchors: CertificateInfo[] = [];
    for (const [index, info] of parts.authorities.entries()) {
      const key = info.der.toString('base64');
      if (seen.has(key)) continue;
      checkAuthorityProfile(info, index, parts.where ?? `for ${trustDomain.name}`);
      seen.add(key);
      anchors.push(info);
    }
    if (anchors.length > MAX_BUNDLE_AUTHORITIES) {
      throw bundleError(
        `for ${trustDomain.name}`,
        `has ${anchors.length} authorities; the limit is ${MAX_BUNDLE_AUTHORITIES}`,
      );
    }
    this.trustDomain = trustDomain;
    this.#anchors = Object.freeze(anchors);
    this.authorities = Object.freeze(anchors.map((a) => a.x509));
    this.sequence = parts.sequence;
    this.refreshHint = parts.refreshHint;
    this.otherKeys = Object.freeze([...(parts.otherKeys ?? [])]);
    Object.freeze(this);
  }

  /**
   * Builds a bundle from authority certificates.
   *
   * @param trustDomain - the trust domain these authorities anchor
   * @param authorities - PEM text, DER or concatenated DER bytes, `X509Certificate`s, or a list of them
   * @throws SidecarlessError `ERR_BUNDLE_INVALID` naming the certificate at fault (an authority
   *   that is not a CA, lacks keyUsage keyCertSign or has a weak key), `ERR_SVID_EXPLICIT_CURVE`
   *   for an authority whose EC key spells out its curve parameters
   * @example
   * ```ts
   * import { createLocalCa, X509Bundle } from 'sidecarless';
   * const ca = createLocalCa({ trustDomain: 'cluster.local' });
   * const copy = X509Bundle.fromCertificates('cluster.local', ca.bundle().authorities);
   * ```
   */
  static fromCertificates(trustDomain: TrustDomain | string, authorities: CertificateInput): X509Bundle {
    const td = toTrustDomain(trustDomain);
    return new X509Bundle(td, { authorities: readAuthorities(authorities, `for ${td.name}`) });
  }

  /**
   * Parses a bundle: PEM, DER, concatenated DER, or a SPIFFE bundle document (a JWKS whose
   * `x509-svid` keys carry one `x5c` certificate each).
   *
   * @param trustDomain - the trust domain the document is for (a document never names its own)
   * @param data - the document, as text or bytes
   * @param options - format and source name for messages
   * @throws SidecarlessError `ERR_BUNDLE_INVALID` naming the field or key index at fault, or an
   *   authority that is not a CA, lacks keyUsage keyCertSign or has a weak key;
   *   `ERR_SVID_EXPLICIT_CURVE` for an authority whose EC key spells out its curve parameters
   * @example
   * ```ts
   * import { X509Bundle } from 'sidecarless';
   * const json = '{"keys":[]}';
   * X509Bundle.parse('example.org', json).authorities.length; // 0
   * ```
   */
  static parse(
    trustDomain: TrustDomain | string,
    data: string | Uint8Array,
    options: X509BundleParseOptions = {},
  ): X509Bundle {
    const td = toTrustDomain(trustDomain);
    const where = options.source === undefined ? `for ${td.name}` : `${options.source} (${td.name})`;
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new SidecarlessError('ERR_OPTION_INVALID', `bundle ${where} must be a string or bytes`, {
        field: 'data',
      });
    }
    const format = options.format ?? 'auto';
    if (format === 'jwks' || (format === 'auto' && startsWithBrace(data))) {
      const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
      return new X509Bundle(td, { ...parseJwks(text, where), where });
    }
    return new X509Bundle(td, { authorities: readAuthorities(data, where), where });
  }

  /**
   * The earliest `notAfter` among the authorities, for expiry warnings; undefined when empty.
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * createLocalCa({ trustDomain: 'td' }).bundle().earliestNotAfter();
   * ```
   */
  earliestNotAfter(): Date | undefined {
    if (this.#anchors.length === 0) return undefined;
    return new Date(Math.min(...this.#anchors.map((a) => a.notAfter)));
  }

  /**
   * Whether the bundle holds this exact certificate.
   * @param certificate - the certificate to look for
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * const bundle = createLocalCa({ trustDomain: 'td' }).bundle();
   * bundle.contains(bundle.authorities[0]!); // true
   * ```
   */
  contains(certificate: X509Certificate | Uint8Array): boolean {
    const der = certificate instanceof X509Certificate ? certificate.raw : Buffer.from(certificate);
    return this.#anchors.some((a) => a.der.equals(der));
  }

  /**
   * Whether `other` is for the same trust domain and holds the same authorities.
   * @param other - another bundle
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * const ca = createLocalCa({ trustDomain: 'td' });
   * ca.bundle().equals(ca.bundle()); // true
   * ```
   */
  equals(other: X509Bundle): boolean {
    return (
      this.trustDomain.equals(other.trustDomain) &&
      this.#anchors.length === other.#anchors.length &&
      this.#anchors.every((a) => other.contains(a.der))
    );
  }

  /**
   * The authorities as PEM text.
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * const pem = createLocalCa({ trustDomain: 'td' }).bundle().toPem();
   * ```
   */
  toPem(): string {
    return this.authorities.map((c) => c.toString()).join('');
  }

  /**
   * The bundle as a SPIFFE bundle document (JWKS), keeping `otherKeys`.
   * @example
   * ```ts
   * import { createLocalCa, X509Bundle } from 'sidecarless';
   * const bundle = createLocalCa({ trustDomain: 'td' }).bundle();
   * X509Bundle.parse('td', JSON.stringify(bundle.toJwks())).equals(bundle); // true
   * ```
   */
  toJwks(): { keys: Record<string, unknown>[]; spiffe_sequence?: number; spiffe_refresh_hint?: number } {
    const keys: Record<string, unknown>[] = this.#anchors.map((a) => ({
      ...(a.publicKey.export({ format: 'jwk' }) as Record<string, unknown>),
      use: 'x509-svid',
      x5c: [a.der.toString('base64')],
    }));
    keys.push(...this.otherKeys.map((k) => ({ ...k })));
    return {
      keys,
      ...(this.sequence === undefined ? {} : { spiffe_sequence: this.sequence }),
      ...(this.refreshHint === undefined ? {} : { spiffe_refresh_hint: this.refreshHint }),
    };
  }

  /** @internal The parsed authorities, for chain verification. */
  anchors(): readonly CertificateInfo[] {
    return this.#anchors;
  }

  /** @internal A bundle with other authorities, keeping the document fields. */
  withAuthorities(authorities: readonly CertificateInfo[]): X509Bundle {
    return new X509Bundle(this.trustDomain, {
      authorities,
      sequence: this.sequence,
      refreshHint: this.refreshHint,
      otherKeys: this.otherKeys,
    });
  }

  /** @internal */
  [inspect.custom](): string {
    return `X509Bundle(${this.trustDomain.name}, ${this.#anchors.length} authorities)`;
  }
}

function startsWithBrace(data: string | Uint8Array): boolean {
  const head =
    typeof data === 'string' ? data.slice(0, 32) : Buffer.from(data.subarray(0, 32)).toString('latin1');
  return head.trimStart().startsWith('{');
}

function readAuthorities(input: CertificateInput, where: string): CertificateInfo[] {
  let certificates: Buffer[];
  try {
    certificates = readCertificates(input, `bundle ${where}`, MAX_BUNDLE_AUTHORITIES);
  } catch (err) {
    // The message already starts with "bundle <where>:"; only the code changes.
    throw new SidecarlessError('ERR_BUNDLE_INVALID', (err as Error).message, indexOf(err), { cause: err });
  }
  return certificates.map((der, index) => {
    try {
      return inspectCertificate(der, index);
    } catch (err) {
      throw bundleError(where, `authority ${index}: ${(err as Error).message}`, { index }, err);
    }
  });
}

function indexOf(err: unknown): { index?: number } {
  const index = err instanceof SidecarlessError ? err.detail.index : undefined;
  return index === undefined ? {} : { index };
}

function nonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** SPIFFE Trust Domain and Bundle §4 and X509-SVID §6: the JWKS form of a bundle. */
function parseJwks(text: string, where: string): BundleParts {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // No cause: a JSON syntax error quotes the document, which may not be a bundle at all.
    throw bundleError(where, 'is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw bundleError(where, 'must be a JSON object with a "keys" array');
  }
  const {
    keys,
    spiffe_sequence: sequence,
    spiffe_refresh_hint: refreshHint,
  } = doc as Record<string, unknown>;
  if (!Array.isArray(keys)) throw bundleError(where, '"keys" must be an array', { field: 'keys' });
  if (sequence !== undefined && !nonNegativeInteger(sequence)) {
    throw bundleError(where, '"spiffe_sequence" must be a non-negative integer', {
      field: 'spiffe_sequence',
    });
  }
  if (refreshHint !== undefined && !nonNegativeInteger(refreshHint)) {
    throw bundleError(where, '"spiffe_refresh_hint" must be a non-negative integer (seconds)', {
      field: 'spiffe_refresh_hint',
    });
  }
  if (keys.length > MAX_BUNDLE_AUTHORITIES * 4) {
    throw bundleError(where, `has ${keys.length} keys; too many`, { field: 'keys' });
  }
  const authorities: CertificateInfo[] = [];
  const otherKeys: BundleJwk[] = [];
  keys.forEach((key: unknown, index) => {
    const field = `keys[${index}]`;
    if (typeof key !== 'object' || key === null || Array.isArray(key)) {
      throw bundleError(where, `${field} must be an object`, { index, field });
    }
    const jwk = key as Record<string, unknown>;
    // Checked for every use: keys of other uses are kept and re-published by toJwks().
    if (jwk.d !== undefined || jwk.k !== undefined) {
      throw bundleError(
        where,
        `${field} carries private or secret key material ("${jwk.d !== undefined ? 'd' : 'k'}"); a bundle holds public keys only`,
        { index, field },
      );
    }
    if (typeof jwk.use !== 'string') {
      throw bundleError(where, `${field}.use must be set (SPIFFE bundle §4.2.2)`, {
        index,
        field: `${field}.use`,
      });
    }
    if (jwk.use !== 'x509-svid') {
      otherKeys.push(Object.freeze(structuredClone(jwk)));
      return;
    }
    authorities.push(readJwkAuthority(jwk, index, where));
  });
  return { authorities, sequence, refreshHint, otherKeys };
}

function readJwkAuthority(jwk: Record<string, unknown>, index: number, where: string): CertificateInfo {
  const field = `keys[${index}]`;
  const { x5c } = jwk;
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string') {
    throw bundleError(where, `${field}.x5c must hold exactly one base64 certificate (X509-SVID §6.1)`, {
      index,
      field: `${field}.x5c`,
    });
  }
  const base64 = x5c[0];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw bundleError(where, `${field}.x5c[0] is not standard base64`, { index, field: `${field}.x5c` });
  }
  let info: CertificateInfo;
  try {
    info = inspectCertificate(Buffer.from(base64, 'base64'), index);
  } catch (err) {
    throw bundleError(
      where,
      `${field}.x5c[0]: ${(err as Error).message}`,
      { index, field: `${field}.x5c` },
      err,
    );
  }
  // The JWK's own key parameters, when present, must describe the certificate's key.
  const { use: _use, x5c: _x5c, ...params } = jwk;
  if (typeof params.kty === 'string' && (params.n !== undefined || params.x !== undefined)) {
    let same = false;
    try {
      const fromJwk = createPublicKey({ key: params as JsonWebKey, format: 'jwk' });
      same = fromJwk.equals(info.publicKey);
    } catch {
      same = false;
    }
    if (!same) {
      throw bundleError(where, `${field}: the JWK key parameters do not match the x5c certificate's key`, {
        index,
        field,
      });
    }
  }
  return info;
}
