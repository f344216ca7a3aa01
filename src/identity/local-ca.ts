import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { type TrustDomain, toTrustDomain } from '../spiffe/trust-domain.js';
import { buildCertificate, buildName, ext } from '../x509/build.js';
import { X509Bundle } from '../x509/bundle.js';
import { BundleSet } from '../x509/bundle-set.js';
import { type CertificateInfo, inspectCertificate } from '../x509/certificate.js';
import { KeyUsageFlags } from '../x509/key-usage.js';
import { type PrivateKeyInput, parsePrivateKey, spkiOf } from '../x509/private-key.js';
import { checkSignerProfile } from '../x509/profile.js';
import { type CertificateInput, readCertificates } from '../x509/read-certificates.js';
import { X509Svid } from '../x509/svid.js';
import { LocalCaIdentity, type LocalIdentityOptions } from './local-ca-identity.js';
import type { IdentitySource } from './source.js';

/**
 * Key types the local CA can issue SVIDs for.
 * @example
 * ```ts
 * import { createLocalCa, type KeyType } from 'sidecarless';
 * const keyType: KeyType = 'ec-p384';
 * createLocalCa({ trustDomain: 'td', keyType }).issue('/web');
 * ```
 */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'ed25519';

const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519'];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Issued certificates start a minute in the past, to tolerate clock skew between peers. */
const BACKDATE = 60_000;

/**
 * A CA certificate and its key, as given to {@link createLocalCa} (Istio's `cacerts` case).
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { createLocalCa } from 'sidecarless';
 * // Istio's cacerts secret: the intermediate signs, the root anchors.
 * const ca = createLocalCa({
 *   trustDomain: 'cluster.local',
 *   root: { certificate: readFileSync('cacerts/root-cert.pem') },
 *   intermediate: { certificate: readFileSync('cacerts/ca-cert.pem'), key: readFileSync('cacerts/ca-key.pem') },
 * });
 * ```
 */
export interface LocalCaCertificate {
  /** The certificate (for an intermediate: it first, then any further intermediates). */
  readonly certificate: CertificateInput;
  /** Its private key. */
  readonly key: PrivateKeyInput;
}

/**
 * Options of {@link createLocalCa}.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true, ttl: 3_600_000, keyType: 'ec-p256' });
 * ```
 */
export interface LocalCaOptions {
  /** The trust domain the CA issues SVIDs in. */
  readonly trustDomain: TrustDomain | string;
  /**
   * A root to use instead of generating one (the Istio plug-in CA case). Its key may be omitted
   * when `intermediate` is given with its own key.
   */
  readonly root?: { readonly certificate: CertificateInput; readonly key?: PrivateKeyInput };
  /** Sign leaves with an intermediate: `true` generates one under the root, or give one with its key. */
  readonly intermediate?: boolean | LocalCaCertificate;
  /** Default lifetime of issued SVIDs, in ms (default 1 hour). */
  readonly ttl?: number;
  /** Lifetime of generated roots and intermediates, in ms (default 365 days). */
  readonly rootTtl?: number;
  /** Default key type of issued SVIDs (default `ec-p256`). */
  readonly keyType?: KeyType;
}

/**
 * Options of {@link LocalCa.issue}.
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * const svid = createLocalCa({ trustDomain: 'td' }).issue('/batch', { ttl: 60_000, keyType: 'rsa-2048', hint: 'batch' });
 * ```
 */
export interface IssueOptions {
  /** Lifetime in ms (default: the CA's `ttl`). Clamped to the signing certificate's lifetime. */
  readonly ttl?: number;
  /** Key type (default: the CA's `keyType`). */
  readonly keyType?: KeyType;
  /** A hint to attach to the SVID. */
  readonly hint?: string;
}

export type { LocalIdentityOptions } from './local-ca-identity.js';

/**
 * An embedded CA for development, demos and tests: the Istio "citadel" role, in-process.
 * It issues X509-SVIDs that follow the leaf profile exactly, serves identities that re-issue
 * themselves before expiry, and rotates its root without an outage.
 *
 * @example
 * ```ts
 * import { createLocalCa, verifyPeerChain } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const svid = ca.issue('/ns/demo/sa/boards');
 * verifyPeerChain(svid.certificates, ca.bundles()).id.toString();
 * // 'spiffe://cluster.local/ns/demo/sa/boards'
 * ```
 */
export interface LocalCa extends AsyncDisposable {
  /** The trust domain of every SVID the CA issues. */
  readonly trustDomain: TrustDomain;
  /**
   * Issues an SVID for a path (`/ns/demo/sa/boards`) or a SPIFFE ID of the CA's trust domain.
   * @throws SidecarlessError `ERR_SPIFFE_ID_INVALID` for a bad path, `ERR_OPTION_INVALID` for an ID of
   *   another trust domain or a bad option
   */
  issue(pathOrId: string | SpiffeId, options?: IssueOptions): X509Svid;
  /**
   * An identity source for a path or ID that re-issues its SVID before expiry (by default at half
   * its lifetime, as Istio does) and follows root rotations.
   */
  identity(pathOrId: string | SpiffeId, options?: LocalIdentityOptions): IdentitySource;
  /** The CA's current bundle: the active root, plus older roots still needed by live SVIDs. */
  bundle(): X509Bundle;
  /** The bundle as a `BundleSet` of one trust domain. */
  bundles(): BundleSet;
  /**
   * Starts a new root. The new root is published to every identity first, then every identity is
   * re-issued under it; the old root stays in the bundle until no SVID signed by it is in use
   * (identities re-issued, SVIDs from `issue()` expired). No outage.
   * @throws SidecarlessError `ERR_OPTION_INVALID` for a CA created with a given `root`: its
   *   successor is the operator's to make (create a CA with the new root).
   */
  rotateRoot(): void;
  /** Stops every identity the CA serves and its timers. */
  close(): Promise<void>;
}

/** One root (and optional intermediate) the CA signs with. */
export interface Authority {
  readonly root: CertificateInfo;
  readonly rootKey: KeyObject | undefined;
  /** The certificate that signs leaves: the root or the intermediate. */
  readonly signer: CertificateInfo;
  readonly signerKey: KeyObject;
  /** Intermediates that leaves carry after themselves. */
  readonly chain: readonly Buffer[];
  /** The latest notAfter of SVIDs handed out by `issue()` under this authority. */
  oneOffNotAfter: number;
}

/** What the testing kit needs of a CA to forge bad certificates. */
export interface LocalCaInternals {
  active(): Authority;
  generateKey(type: KeyType): { privateKey: KeyObject; publicKey: KeyObject };
}

const internals = new WeakMap<LocalCa, LocalCaInternals>();

/** The signing keys of a local CA, for the testing kit's bad-certificate factory. */
export function localCaInternals(ca: LocalCa): LocalCaInternals {
  const found = internals.get(ca);
  if (found === undefined) throw new Error('not a local CA created by this copy of sidecarless');
  return found;
}

/** A fresh key pair of one of the key types the local CA issues. */
export function generateKey(type: KeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: Number(type.slice(4)) });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
  }
}

function keyTypeOption(field: string, value: unknown, fallback: KeyType): KeyType {
  if (value === undefined) return fallback;
  if (!KEY_TYPES.includes(value as KeyType))
    throw invalidOption(field, `one of ${KEY_TYPES.join(', ')}`, value);
  return value as KeyType;
}

function keyOf(input: PrivateKeyInput, info: CertificateInfo, field: string): KeyObject {
  const key = parsePrivateKey(input, `option "${field}"`);
  if (!spkiOf(key).equals(spkiOf(info.publicKey))) {
    throw new SidecarlessError(
      'ERR_KEY_MISMATCH',
      `option "${field}" does not match the certificate (${info.label})`,
      {
        field,
        certificate: info.label,
      },
    );
  }
  return key;
}

class LocalCaImpl implements LocalCa {
  readonly trustDomain: TrustDomain;
  readonly #ttl: number;
  readonly #rootTtl: number;
  readonly #keyType: KeyType;
  readonly #useIntermediate: boolean;
  #authorities: Authority[] = [];
  #bundle: X509Bundle;
  #generation = 0;
  #pruneTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #pluginRoot: boolean;
  readonly #identities = new Set<LocalCaIdentity>();

  constructor(options: LocalCaOptions) {
    const opts = checkOptions<LocalCaOptions>(
      options,
      ['trustDomain', 'root', 'intermediate', 'ttl', 'rootTtl', 'keyType'],
      'createLocalCa',
    );
    const td: unknown = opts.trustDomain;
    if (
      typeof td !== 'string' &&
      (typeof td !== 'object' || td === null || typeof (td as { name?: unknown }).name !== 'string')
    ) {
      throw invalidOption('trustDomain', 'a trust domain name or a TrustDomain', td);
    }
    this.trustDomain = toTrustDomain(td);
    this.#ttl = durationOption('ttl', opts.ttl, HOUR);
    this.#rootTtl = durationOption('rootTtl', opts.rootTtl, 365 * DAY);
    this.#keyType = keyTypeOption('keyType', opts.keyType, 'ec-p256');
    if (
      opts.intermediate !== undefined &&
      typeof opts.intermediate !== 'boolean' &&
      (typeof opts.intermediate !== 'object' || opts.intermediate === null)
    ) {
      throw invalidOption('intermediate', 'a boolean or { certificate, key }', opts.intermediate);
    }
    this.#useIntermediate = opts.intermediate !== undefined && opts.intermediate !== false;
    if (opts.root === undefined && typeof opts.intermediate === 'object') {
      // Without this, a given intermediate would be ignored and a new CA generated in its place.
      throw invalidOption('root', 'the root certificate that issued "intermediate"', undefined);
    }
    this.#pluginRoot = opts.root !== undefined;
    this.#authorities.push(opts.root === undefined ? this.#generateAuthority() : this.#pluginAuthority(opts));
    this.#bundle = this.#buildBundle();
    internals.set(this, { active: () => this.#active(), generateKey });
  }

  #active(): Authority {
    return this.#authorities[this.#authorities.length - 1] as Authority;
  }

  #generateAuthority(): Authority {
    const gen = ++this.#generation;
    const td = this.trustDomain.name;
    const now = Date.now();
    const rootKeys = generateKey('ec-p256');
    const rootName = buildName([
      ['O', 'sidecarless'],
      ['CN', `${td} root ${gen}`],
    ]);
    const rootDer = buildCertificate({
      subject: rootName,
      issuer: rootName,
      publicKey: rootKeys.publicKey,
      signingKey: rootKeys.privateKey,
      notBefore: new Date(now - BACKDATE),
      notAfter: new Date(now + this.#rootTtl),
      extensions: [
        ext.basicConstraints(true),
        ext.keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
        ext.subjectAltName({ uris: [this.trustDomain.idString()] }),
        ext.subjectKeyIdentifier(rootKeys.publicKey),
      ],
    });
    const root = inspectCertificate(rootDer);
    if (!this.#useIntermediate) {
      return {
        root,
        rootKey: rootKeys.privateKey,
        signer: root,
        signerKey: rootKeys.privateKey,
        chain: [],
        oneOffNotAfter: 0,
      };
    }
    const intKeys = generateKey('ec-p256');
    const intDer = buildCertificate({
      subject: buildName([
        ['O', 'sidecarless'],
        ['CN', `${td} intermediate ${gen}`],
      ]),
      issuer: rootName,
      publicKey: intKeys.publicKey,
      signingKey: rootKeys.privateKey,
      notBefore: new Date(now - BACKDATE),
      notAfter: new Date(now + this.#rootTtl),
      extensions: [
        ext.basicConstraints(true, 0),
        ext.keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
        ext.subjectAltName({ uris: [this.trustDomain.idString()] }),
        ext.subjectKeyIdentifier(intKeys.publicKey),
        ext.authorityKeyIdentifier(rootKeys.publicKey),
      ],
    });
    const signer = inspectCertificate(intDer);
    return {
      root,
      rootKey: rootKeys.privateKey,
      signer,
      signerKey: intKeys.privateKey,
      chain: [intDer],
      oneOffNotAfter: 0,
    };
  }

  #pluginAuthority(opts: LocalCaOptions): Authority {
    this.#generation++;
    const given = opts.root as NonNullable<LocalCaOptions['root']>;
    if (typeof given !== 'object' || given === null)
      throw invalidOption('root', '{ certificate, key? }', given);
    const [rootDer, ...extra] = readCertificates(given.certificate, 'option "root.certificate"', 1);
    if (rootDer === undefined || extra.length > 0)
      throw invalidOption('root.certificate', 'exactly one certificate', given.certificate);
    const root = inspectCertificate(rootDer);
    checkSignerProfile(root, 0, true);
    const rootKey = given.key === undefined ? undefined : keyOf(given.key, root, 'root.key');
    const intermediate = opts.intermediate;
    if (intermediate === undefined || intermediate === false) {
      if (rootKey === undefined)
        throw invalidOption('root.key', 'the root private key (no intermediate was given)', undefined);
      return { root, rootKey, signer: root, signerKey: rootKey, chain: [], oneOffNotAfter: 0 };
    }
    if (intermediate === true) {
      throw invalidOption(
        'intermediate',
        '{ certificate, key } when a root is given (a generated intermediate needs a generated root)',
        true,
      );
    }
    const ders = readCertificates(intermediate.certificate, 'option "intermediate.certificate"', 7).filter(
      (der) => !der.equals(root.der),
    );
    const infos = ders.map((der, i) => inspectCertificate(der, i));
    for (let i = 0; i < infos.length; i++) {
      const child = infos[i] as CertificateInfo;
      const issuer = infos[i + 1] ?? root;
      checkSignerProfile(child, i, false);
      if (child.issuer !== issuer.subject || !child.x509.verify(issuer.publicKey)) {
        throw new SidecarlessError(
          'ERR_SVID_CHAIN_ORDER',
          `option "intermediate.certificate": certificate ${i} (${child.label}) was not issued by ${issuer === root ? 'the root' : `certificate ${i + 1}`}`,
          { field: 'intermediate.certificate', index: i },
        );
      }
    }
    const signer = infos[0];
    if (signer === undefined)
      throw invalidOption(
        'intermediate.certificate',
        'an intermediate certificate',
        intermediate.certificate,
      );
    const signerKey = keyOf(intermediate.key, signer, 'intermediate.key');
    return { root, rootKey, signer, signerKey, chain: ders, oneOffNotAfter: 0 };
  }

  #buildBundle(): X509Bundle {
    return X509Bundle.fromCertificates(
      this.trustDomain,
      this.#authorities.map((a) => a.root.x509),
    );
  }

  #checkOpen(): void {
    if (this.#closed)
      throw new SidecarlessError(
        'ERR_SOURCE_CLOSED',
        `the local CA of ${this.trustDomain.name} is closed`,
        {},
      );
  }

  #idFor(pathOrId: string | SpiffeId): SpiffeId {
    const id =
      pathOrId instanceof SpiffeId
        ? pathOrId
        : typeof pathOrId === 'string' && pathOrId.startsWith('spiffe://')
          ? SpiffeId.parse(pathOrId)
          : SpiffeId.fromPath(this.trustDomain, pathOrId);
    if (!id.memberOf(this.trustDomain)) {
      throw invalidOption('pathOrId', `an ID in trust domain ${this.trustDomain.name}`, id.toString());
    }
    if (id.path === '')
      throw invalidOption('pathOrId', 'a workload path (a leaf SVID needs a non-root path)', id.toString());
    return id;
  }

  /** Issues a leaf under the active authority. @internal */
  issueUnder(
    id: SpiffeId,
    ttl: number,
    keyType: KeyType,
    hint: string | undefined,
  ): { svid: X509Svid; authority: Authority } {
    const authority = this.#active();
    const now = Date.now();
    // Certificate times have whole seconds (RFC 5280 UTCTime): round up, or a short lifetime would
    // be cut to a certificate that is already expired when it is issued.
    const notAfter = Math.min(
      Math.ceil((now + ttl) / 1000) * 1000,
      authority.signer.notAfter,
      authority.root.notAfter,
    );
    if (notAfter <= now) {
      throw new SidecarlessError(
        'ERR_SVID_AUTHORITY_EXPIRED',
        `the local CA of ${this.trustDomain.name} has expired (${authority.signer.label}); call rotateRoot()`,
        { certificate: authority.signer.label },
      );
    }
    const keys = generateKey(keyType);
    const usage =
      keys.publicKey.asymmetricKeyType === 'rsa'
        ? KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment
        : KeyUsageFlags.digitalSignature;
    const der = buildCertificate({
      subject: buildName([['O', 'sidecarless']]),
      issuer: authority.signer.subjectName,
      publicKey: keys.publicKey,
      signingKey: authority.signerKey,
      notBefore: new Date(now - BACKDATE),
      notAfter: new Date(notAfter),
      extensions: [
        ext.basicConstraints(false),
        ext.keyUsage(usage),
        ext.extKeyUsage(),
        ext.subjectAltName({ uris: [id.toString()] }),
        ext.subjectKeyIdentifier(keys.publicKey),
        ext.authorityKeyIdentifier(authority.signer.publicKey),
      ],
    });
    const svid = X509Svid.parse(
      [der, ...authority.chain],
      keys.privateKey,
      hint === undefined ? {} : { hint },
    );
    return { svid, authority };
  }

  issue(pathOrId: string | SpiffeId, options: IssueOptions = {}): X509Svid {
    this.#checkOpen();
    const opts = checkOptions<IssueOptions>(options, ['ttl', 'keyType', 'hint'], 'issue');
    const id = this.#idFor(pathOrId);
    const { svid, authority } = this.issueUnder(
      id,
      durationOption('ttl', opts.ttl, this.#ttl),
      keyTypeOption('keyType', opts.keyType, this.#keyType),
      opts.hint,
    );
    authority.oneOffNotAfter = Math.max(authority.oneOffNotAfter, svid.notAfter.getTime());
    return svid;
  }

  identity(pathOrId: string | SpiffeId, options: LocalIdentityOptions = {}): IdentitySource {
    this.#checkOpen();
    const opts = checkOptions<LocalIdentityOptions>(
      options,
      ['ttl', 'keyType', 'hint', 'renewAt', 'federatedBundles'],
      'identity',
    );
    const identity = new LocalCaIdentity(this, this.#idFor(pathOrId), {
      ttl: durationOption('ttl', opts.ttl, this.#ttl),
      keyType: keyTypeOption('keyType', opts.keyType, this.#keyType),
      hint: opts.hint,
      renewAt: opts.renewAt,
      federatedBundles: opts.federatedBundles,
    });
    this.#identities.add(identity);
    return identity;
  }

  /** @internal Called by an identity when it closes. */
  forget(identity: LocalCaIdentity): void {
    this.#identities.delete(identity);
    this.#prune();
  }

  bundle(): X509Bundle {
    return this.#bundle;
  }

  bundles(): BundleSet {
    return BundleSet.of(this.#bundle);
  }

  rotateRoot(): void {
    this.#checkOpen();
    if (this.#pluginRoot) {
      // A self-made root would silently replace the operator's root in every bundle.
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `the local CA of ${this.trustDomain.name} signs under a given root; rotate it by creating a CA with the new root, not with rotateRoot()`,
        { field: 'root' },
      );
    }
    this.#authorities.push(this.#generateAuthority());
    this.#bundle = this.#buildBundle();
    // Trust first, then use: every identity learns the new root before any SVID signed by it is
    // presented, so no peer sees an unknown issuer during the rotation.
    for (const identity of this.#identities) identity.bundleChanged();
    for (const identity of this.#identities) identity.renewNow();
    this.#prune();
  }

  #prune(): void {
    if (this.#closed) return;
    clearTimeout(this.#pruneTimer);
    const now = Date.now();
    const active = this.#active();
    const inUse = new Set<Authority>([active]);
    for (const identity of this.#identities) {
      const authority = identity.authority();
      if (authority !== undefined) inUse.add(authority);
    }
    let nextCheck = Number.POSITIVE_INFINITY;
    for (const authority of this.#authorities) {
      if (authority.oneOffNotAfter > now) {
        inUse.add(authority);
        if (authority !== active) nextCheck = Math.min(nextCheck, authority.oneOffNotAfter);
      }
    }
    const kept = this.#authorities.filter((a) => inUse.has(a));
    if (kept.length !== this.#authorities.length) {
      this.#authorities = kept;
      this.#bundle = this.#buildBundle();
      for (const identity of this.#identities) identity.bundleChanged();
    }
    if (Number.isFinite(nextCheck)) {
      this.#pruneTimer = setTimeout(() => this.#prune(), Math.min(nextCheck - now + 1, 2 ** 31 - 1));
      this.#pruneTimer.unref();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Closed first: each identity closing below calls forget(), whose prune must not re-arm a timer.
    this.#closed = true;
    clearTimeout(this.#pruneTimer);
    const identities = [...this.#identities];
    this.#identities.clear();
    await Promise.all(identities.map((i) => i.close()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [inspect.custom](): string {
    return `LocalCa(${this.trustDomain.name}, ${this.#authorities.length} root(s), ${this.#identities.size} identities)`;
  }
}

/** The CA as its identities see it. */
export type LocalCaForIdentity = Pick<LocalCaImpl, 'issueUnder' | 'forget' | 'bundle' | 'trustDomain'>;

/**
 * Creates an embedded CA: generates an ECDSA P-256 root (or uses a given root or intermediate
 * with its key) for one trust domain.
 *
 * @param options - trust domain, optional plug-in root/intermediate, default lifetimes and key type
 * @throws SidecarlessError `ERR_OPTION_INVALID`, `ERR_TRUST_DOMAIN_INVALID`, or certificate and key
 *   errors for a plug-in CA
 * @example
 * ```ts
 * import { createLocalCa } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
 * const identity = ca.identity('/ns/demo/sa/boards', { ttl: 60_000 }); // renews every 30 s
 * const { svid } = await identity.ready();
 * await ca.close();
 * ```
 */
export function createLocalCa(options: LocalCaOptions): LocalCa {
  return new LocalCaImpl(options);
}
