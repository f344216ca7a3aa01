import type { X509Certificate } from 'node:crypto';
import { SidecarlessError } from '../errors.js';
import type { SpiffeId } from '../spiffe/spiffe-id.js';
import { checkPublicKey, checkSignatureAlgorithm } from './algorithms.js';
import { X509Bundle } from './bundle.js';
import { BundleSet } from './bundle-set.js';
import { type CertificateInfo, inspectCertificate } from './certificate.js';
import { checkNameConstraints } from './name-constraints.js';
import { checkLeafProfile, checkSignerProfile, checkValidity } from './profile.js';

/**
 * The longest chain a peer may present (leaf plus intermediates), bounding the work an
 * attacker's handshake can cause. Real SVID chains have 1 to 3 certificates.
 * @example
 * ```ts
 * import { MAX_CHAIN_LENGTH } from 'sidecarless';
 * console.log(`peers may present at most ${MAX_CHAIN_LENGTH} certificates`);
 * ```
 */
export const MAX_CHAIN_LENGTH = 8;

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';

/**
 * Options of {@link verifyPeerChain}.
 * @example
 * ```ts
 * import { createLocalCa, verifyPeerChain } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'td' });
 * const svid = ca.issue('/client');
 * verifyPeerChain(svid.certificates, ca.bundles(), { now: new Date(), usage: 'client' });
 * ```
 */
export interface VerifyPeerChainOptions {
  /** The time to check validity at (default: now). */
  readonly now?: Date | number;
  /**
   * What the peer is about to be trusted as. When set and the leaf has an extendedKeyUsage
   * extension, it must include `clientAuth` (for `'client'`) or `serverAuth` (for `'server'`).
   */
  readonly usage?: 'client' | 'server';
}

/**
 * The result of a successful {@link verifyPeerChain}.
 * @example
 * ```ts
 * import { createLocalCa, verifyPeerChain } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'td' });
 * const { id, verifiedChain, notAfter } = verifyPeerChain(ca.issue('/web').certificates, ca.bundles());
 * console.log(id.toString(), verifiedChain.length, notAfter.toISOString());
 * ```
 */
export interface VerifiedPeerChain {
  /** The peer's SPIFFE ID, from the leaf's URI SAN. */
  readonly id: SpiffeId;
  /** The path that was verified: the leaf, the intermediates used, and the bundle authority. */
  readonly verifiedChain: readonly X509Certificate[];
  /** The earliest `notAfter` on the verified path: when this verdict stops holding. */
  readonly notAfter: Date;
}

function toNow(now: Date | number | undefined): number {
  if (now === undefined) return Date.now();
  const t = typeof now === 'number' ? now : now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(t)) {
    throw new SidecarlessError('ERR_OPTION_INVALID', 'option "now" must be a valid Date or a number of ms', {
      field: 'now',
    });
  }
  return t;
}

function withPeer(err: unknown, peer: string): never {
  if (err instanceof SidecarlessError && err.detail.peer === undefined) {
    throw new SidecarlessError(
      err.code,
      `peer ${peer}: ${err.message}`,
      { ...err.detail, peer },
      err.cause === undefined ? undefined : { cause: err.cause },
    );
  }
  throw err;
}

/** Finds a bundle authority that signed `child`: same name, and the signature verifies. */
function findAuthority(
  child: CertificateInfo,
  childIndex: number,
  anchors: readonly CertificateInfo[],
): CertificateInfo | undefined {
  for (const anchor of anchors) {
    if (anchor.subject !== child.issuer) continue;
    checkSignatureAlgorithm(child, childIndex);
    if (child.x509.verify(anchor.publicKey)) return anchor;
  }
  return undefined;
}

/**
 * Verifies a peer's certificate chain as an X509-SVID, synchronously, so a server or client can
 * decide inside the TLS handshake path before any request byte is handed on.
 *
 * The leaf must carry exactly one URI SAN with a SPIFFE ID that has a path, `cA=false`, and
 * keyUsage with `digitalSignature` and without `keyCertSign`/`cRLSign`. The chain must end at an
 * authority in the bundle of **the leaf's own trust domain** (never a merged pool): a certificate
 * from another trust domain's CA that claims this trust domain is refused. Every signer must be a
 * CA with `keyCertSign`; pathLen and name constraints are honoured; every certificate of the path
 * must be valid at `now`. MD5/SHA-1 signatures, RSA keys under 2048 bits, unknown critical
 * extensions, chains over {@link MAX_CHAIN_LENGTH} and certificates over 16 KiB are refused.
 *
 * @param chain - the presented chain, leaf first, as DER bytes or `X509Certificate`s
 * @param bundles - the trusted bundles (one per trust domain), or a single bundle
 * @param options - the time to check at, and the intended usage
 * @returns the peer's SPIFFE ID and the verified path
 * @throws SidecarlessError with an `ERR_SVID_*` code naming the certificate (subject, serial) and
 *   the rule; `ERR_CERTIFICATE_INVALID` when a certificate cannot be parsed
 * @example
 * ```ts
 * import { createLocalCa, verifyPeerChain } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'cluster.local' });
 * const svid = ca.issue('/ns/demo/sa/ui');
 * const { id } = verifyPeerChain(svid.certificates, ca.bundles());
 * id.toString(); // 'spiffe://cluster.local/ns/demo/sa/ui'
 * ```
 */
export function verifyPeerChain(
  chain: readonly (Uint8Array | X509Certificate)[],
  bundles: BundleSet | X509Bundle,
  options: VerifyPeerChainOptions = {},
): VerifiedPeerChain {
  if (!(bundles instanceof BundleSet) && !(bundles instanceof X509Bundle)) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      'verifyPeerChain: bundles must be a BundleSet or an X509Bundle',
      {
        field: 'bundles',
      },
    );
  }
  if (typeof options !== 'object' || options === null) {
    throw new SidecarlessError('ERR_OPTION_INVALID', 'verifyPeerChain: options must be an object', {
      field: 'options',
    });
  }
  const now = toNow(options.now);
  if (!Array.isArray(chain) || chain.length === 0) {
    throw new SidecarlessError('ERR_SVID_CHAIN_EMPTY', 'the peer presented no certificate', {});
  }
  if (chain.length > MAX_CHAIN_LENGTH) {
    throw new SidecarlessError(
      'ERR_SVID_CHAIN_TOO_LONG',
      `the peer presented ${chain.length} certificates; the limit is ${MAX_CHAIN_LENGTH}`,
      { index: MAX_CHAIN_LENGTH },
    );
  }
  const infos = chain.map((c, i) => inspectCertificate(c, i));
  const leaf = infos[0] as CertificateInfo;
  const id = checkLeafProfile(leaf, 0);
  const peer = id.toString();
  try {
    return verifyPath(infos, id, bundles, now, options.usage);
  } catch (err) {
    return withPeer(err, peer);
  }
}

function verifyPath(
  infos: readonly CertificateInfo[],
  id: SpiffeId,
  bundles: BundleSet | X509Bundle,
  now: number,
  usage: 'client' | 'server' | undefined,
): VerifiedPeerChain {
  const td = id.trustDomain;
  const bundle =
    bundles instanceof X509Bundle ? (bundles.trustDomain.equals(td) ? bundles : undefined) : bundles.get(td);
  if (bundle === undefined) {
    throw new SidecarlessError(
      'ERR_SVID_NO_BUNDLE',
      `no bundle for trust domain ${td.name}: its peers cannot be verified`,
      {
        trustDomain: td.name,
      },
    );
  }
  const anchors = bundle.anchors();
  const leaf = infos[0] as CertificateInfo;
  checkValidity(leaf, 0, now, 'leaf');
  checkExtendedKeyUsage(leaf, usage);

  // Build the path upwards: at each step a bundle authority of the leaf's trust domain ends it;
  // otherwise the next presented certificate must be the issuer (chain order is not guessed).
  const path: CertificateInfo[] = [leaf];
  for (let i = 0; ; i++) {
    const child = path[i] as CertificateInfo;
    const authority = findAuthority(child, i, anchors);
    if (authority !== undefined) {
      path.push(authority);
      break;
    }
    const next = infos[i + 1];
    if (next === undefined) {
      throw new SidecarlessError(
        'ERR_SVID_UNTRUSTED',
        `certificate ${i} (${child.label}) was not issued by any authority in the bundle of trust domain ${td.name}`,
        { certificate: child.label, index: i, trustDomain: td.name },
      );
    }
    if (next.subject !== child.issuer) {
      throw new SidecarlessError(
        'ERR_SVID_CHAIN_ORDER',
        `certificate ${i + 1} (${next.label}) is not the issuer of certificate ${i} (issuer "${child.issuer}"); chains are leaf first, each followed by its issuer`,
        { certificate: next.label, index: i + 1 },
      );
    }
    checkSignatureAlgorithm(child, i);
    checkPublicKey(next, i + 1);
    if (!child.x509.verify(next.publicKey)) {
      throw new SidecarlessError(
        'ERR_SVID_BAD_SIGNATURE',
        `the signature of certificate ${i} (${child.label}) does not verify with the key of certificate ${i + 1} (${next.label})`,
        { certificate: child.label, index: i },
      );
    }
    checkSignerProfile(next, i + 1, false);
    path.push(next);
  }

  const last = path.length - 1;
  checkSignerProfile(path[last] as CertificateInfo, last, true);
  let intermediatesBelow = 0;
  for (let j = 1; j <= last; j++) {
    const signer = path[j] as CertificateInfo;
    checkValidity(signer, j, now, j === last ? 'authority' : 'intermediate');
    // RFC 5280 §4.2.1.9: pathLen counts the non-self-issued intermediates below the signer.
    const pathLen = signer.basicConstraints?.pathLen;
    if (pathLen !== undefined && intermediatesBelow > pathLen) {
      throw new SidecarlessError(
        'ERR_SVID_PATH_LEN',
        `certificate ${j} (${signer.label}) allows ${pathLen} intermediate(s) below it, the path has ${intermediatesBelow}`,
        { certificate: signer.label, index: j },
      );
    }
    for (let i = 0; i < j; i++) {
      const subject = path[i] as CertificateInfo;
      if (i === 0 || !subject.selfIssued) checkNameConstraints(signer, j, subject, i);
    }
    if (!signer.selfIssued) intermediatesBelow++;
  }
  return Object.freeze({
    id,
    verifiedChain: Object.freeze(path.map((c) => c.x509)),
    notAfter: new Date(Math.min(...path.map((c) => c.notAfter))),
  });
}

function checkExtendedKeyUsage(leaf: CertificateInfo, usage: 'client' | 'server' | undefined): void {
  const eku = leaf.extKeyUsage;
  if (usage === undefined || eku === undefined || eku.includes(EKU_ANY)) return;
  const needed = usage === 'client' ? EKU_CLIENT_AUTH : EKU_SERVER_AUTH;
  if (eku.includes(needed)) return;
  throw new SidecarlessError(
    'ERR_SVID_EXT_KEY_USAGE',
    `certificate 0 (${leaf.label}): extendedKeyUsage lacks ${usage === 'client' ? 'clientAuth' : 'serverAuth'}, so it cannot be used as a TLS ${usage}`,
    { certificate: leaf.label, index: 0 },
  );
}
