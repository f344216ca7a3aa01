import type { KeyObject, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import type { SpiffeId } from '../spiffe/spiffe-id.js';
import { checkSignatureAlgorithm } from './algorithms.js';
import { type CertificateInfo, inspectCertificate } from './certificate.js';
import { encodePem } from './pem.js';
import { type PrivateKeyInput, parsePrivateKey, spkiOf } from './private-key.js';
import { checkLeafProfile, checkSignerProfile } from './profile.js';
import { type CertificateInput, readCertificates } from './read-certificates.js';
import { MAX_CHAIN_LENGTH } from './verify.js';

/**
 * Options of {@link X509Svid.parse}.
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { X509Svid } from 'sidecarless';
 * const svid = X509Svid.parse(readFileSync('svid.pem'), readFileSync('svid_key.pem'), { hint: 'internal', source: 'svid.pem' });
 * ```
 */
export interface X509SvidParseOptions {
  /** An operator-chosen label for the SVID (the Workload API's `hint`). */
  readonly hint?: string;
  /** Names the input (a file, an option) in error messages. */
  readonly source?: string;
}

const keys = new WeakMap<X509Svid, { readonly key: KeyObject; pem?: string }>();

/**
 * An X509-SVID: the workload's leaf certificate, the intermediates that connect it to its trust
 * domain's authorities, and the private key. Validated on creation: the leaf follows the
 * X509-SVID profile, the chain is in order (each certificate followed by its issuer) and the key
 * matches the leaf. Whether the chain verifies to a bundle is checked by the identity sources
 * and by {@link verifyPeerChain}.
 *
 * The private key never appears in `inspect()`, `toJSON()` or any error.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { X509Svid } from 'sidecarless';
 * const svid = X509Svid.parse(readFileSync('cert-chain.pem'), readFileSync('key.pem'));
 * console.log(svid.id.toString(), svid.notAfter);
 * ```
 */
export class X509Svid {
  /** The SPIFFE ID from the leaf's URI SAN. */
  readonly id: SpiffeId;
  /** The chain: the leaf first, then its intermediates in order. */
  readonly certificates: readonly X509Certificate[];
  /** The earliest `notAfter` in the chain: when this SVID stops being usable. */
  readonly notAfter: Date;
  /** The leaf's `notBefore`: when it was issued. */
  readonly notBefore: Date;
  /** The operator-chosen label, when there is one. */
  readonly hint: string | undefined;

  private constructor(
    infos: readonly CertificateInfo[],
    id: SpiffeId,
    key: KeyObject,
    hint: string | undefined,
  ) {
    this.id = id;
    this.certificates = Object.freeze(infos.map((i) => i.x509));
    this.notAfter = new Date(Math.min(...infos.map((i) => i.notAfter)));
    this.notBefore = new Date((infos[0] as CertificateInfo).notBefore);
    this.hint = hint;
    keys.set(this, { key });
    Object.freeze(this);
  }

  /**
   * Builds an SVID from its certificate chain and private key, validating both.
   *
   * @param certChain - the leaf then its intermediates: PEM text, DER or concatenated DER bytes,
   *   `X509Certificate`s, or a list of them
   * @param key - the leaf's private key: PKCS#8, SEC1 or PKCS#1, PEM or DER, or a `KeyObject`
   *   (EC P-256/P-384, RSA of at least 2048 bits, or Ed25519)
   * @param options - a hint, and a source name for messages
   * @throws SidecarlessError `ERR_SVID_*` when the chain breaks the X509-SVID profile,
   *   `ERR_KEY_INVALID`/`ERR_KEY_UNSUPPORTED`/`ERR_KEY_MISMATCH` for the key, `ERR_PEM_INVALID`
   *   or `ERR_CERTIFICATE_INVALID` for undecodable input
   * @example
   * ```ts
   * import { createLocalCa, X509Svid } from 'sidecarless';
   * const issued = createLocalCa({ trustDomain: 'td' }).issue('/web');
   * const copy = X509Svid.parse(issued.certChainPem(), issued.privateKey);
   * copy.id.equals(issued.id); // true
   * ```
   */
  static parse(
    certChain: CertificateInput,
    key: PrivateKeyInput,
    options: X509SvidParseOptions = {},
  ): X509Svid {
    const what = options.source ?? 'SVID certificate chain';
    if (options.hint !== undefined && typeof options.hint !== 'string') {
      throw new SidecarlessError('ERR_OPTION_INVALID', 'option "hint" must be a string', { field: 'hint' });
    }
    // Read a few more than allowed, so a long chain gets the same code as in verifyPeerChain.
    const ders = readCertificates(certChain, what, 4 * MAX_CHAIN_LENGTH);
    if (ders.length > MAX_CHAIN_LENGTH) {
      throw new SidecarlessError(
        'ERR_SVID_CHAIN_TOO_LONG',
        `${what}: ${ders.length} certificates; the limit is ${MAX_CHAIN_LENGTH}`,
        { index: MAX_CHAIN_LENGTH },
      );
    }
    const infos = ders.map((der, i) => inspectCertificate(der, i));
    checkNotReversed(infos, what);
    const id = checkLeafProfile(infos[0] as CertificateInfo, 0);
    for (let i = 1; i < infos.length; i++) {
      const child = infos[i - 1] as CertificateInfo;
      const issuer = infos[i] as CertificateInfo;
      if (issuer.subject !== child.issuer || !child.x509.verify(issuer.publicKey)) {
        throw new SidecarlessError(
          'ERR_SVID_CHAIN_ORDER',
          `${what}: certificate ${i} (${issuer.label}) did not issue certificate ${i - 1} (${child.label}); give the leaf first, then each issuer`,
          { certificate: issuer.label, index: i },
        );
      }
      checkSignerProfile(issuer, i, false);
    }
    // The last certificate's signer is in the bundle, not here; its algorithm is still ours to refuse.
    for (const [i, info] of infos.entries()) checkSignatureAlgorithm(info, i);
    const privateKey = parsePrivateKey(
      key,
      options.source === undefined ? 'SVID private key' : `${options.source} key`,
    );
    if (!spkiOf(privateKey).equals(spkiOf((infos[0] as CertificateInfo).publicKey))) {
      throw new SidecarlessError(
        'ERR_KEY_MISMATCH',
        `the private key does not match the public key of the leaf certificate (${(infos[0] as CertificateInfo).label})`,
        { certificate: (infos[0] as CertificateInfo).label, peer: id.toString() },
      );
    }
    return new X509Svid(infos, id, privateKey, options.hint);
  }

  /** The leaf certificate. */
  get leaf(): X509Certificate {
    return this.certificates[0] as X509Certificate;
  }

  /** The intermediates, in order (may be empty). */
  get intermediates(): readonly X509Certificate[] {
    return this.certificates.slice(1);
  }

  /**
   * The private key. Handle with care: never log it.
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * const key = createLocalCa({ trustDomain: 'td' }).issue('/web').privateKey;
   * key.asymmetricKeyType; // 'ec'
   * ```
   */
  get privateKey(): KeyObject {
    return (keys.get(this) as { key: KeyObject }).key;
  }

  /**
   * The chain as PEM, leaf first (what `cert` in node:tls options takes).
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * const pem = createLocalCa({ trustDomain: 'td' }).issue('/web').certChainPem();
   * ```
   */
  certChainPem(): string {
    return this.certificates.map((c) => encodePem('CERTIFICATE', c.raw)).join('');
  }

  /**
   * The chain as DER buffers, leaf first.
   * @example
   * ```ts
   * import { createLocalCa } from 'sidecarless';
   * const [leafDer] = createLocalCa({ trustDomain: 'td' }).issue('/web').certChainDer();
   * ```
   */
  certChainDer(): Buffer[] {
    return this.certificates.map((c) => c.raw);
  }

  /** A summary without key material. */
  toJSON(): { id: string; notAfter: string; serial: string; hint?: string } {
    return {
      id: this.id.toString(),
      notAfter: this.notAfter.toISOString(),
      serial: this.leaf.serialNumber,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    };
  }

  /** @internal */
  [inspect.custom](): string {
    return `X509Svid(${this.id}, serial ${this.leaf.serialNumber}, notAfter ${this.notAfter.toISOString()})`;
  }
}

/**
 * A chain given issuer first (`ca.pem` concatenated before `cert.pem`) would otherwise be refused
 * for the CA's leaf profile, which misleads; name the real mistake.
 */
function checkNotReversed(infos: readonly CertificateInfo[], what: string): void {
  const first = infos[0] as CertificateInfo;
  if (first.basicConstraints?.cA !== true) return;
  const issued = infos.findIndex(
    (c, i) => i > 0 && c.issuer === first.subject && c.x509.verify(first.publicKey),
  );
  if (issued === -1) return;
  throw new SidecarlessError(
    'ERR_SVID_CHAIN_ORDER',
    `${what}: certificate 0 (${first.label}) is a CA that issued certificate ${issued}; give the leaf first, then each issuer`,
    { certificate: first.label, index: 0 },
  );
}

/**
 * The private key as PKCS#8 PEM, for node:tls (which takes no KeyObject). Internal: only TLS
 * context builders call this; the PEM is cached so a context rebuild does not re-encode it.
 */
export function privateKeyPemOf(svid: X509Svid): string {
  const entry = keys.get(svid) as { key: KeyObject; pem?: string };
  entry.pem ??= entry.key.export({ format: 'pem', type: 'pkcs8' }) as string;
  return entry.pem;
}
