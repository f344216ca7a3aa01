import type { KeyObject } from 'node:crypto';
import { SidecarlessError } from '../errors.js';
import type { CertificateInfo } from './certificate.js';

/** Signature algorithms sidecarless verifies, by OID. RSASSA-PSS is not accepted yet. */
const ALLOWED_SIGNATURES = new Map<string, string>([
  ['1.2.840.10045.4.3.2', 'ecdsa-with-SHA256'],
  ['1.2.840.10045.4.3.3', 'ecdsa-with-SHA384'],
  ['1.2.840.10045.4.3.4', 'ecdsa-with-SHA512'],
  ['1.2.840.113549.1.1.11', 'sha256WithRSAEncryption'],
  ['1.2.840.113549.1.1.12', 'sha384WithRSAEncryption'],
  ['1.2.840.113549.1.1.13', 'sha512WithRSAEncryption'],
  ['1.3.101.112', 'Ed25519'],
]);

/** Known weak algorithms, named in messages. */
const WEAK_SIGNATURES = new Map<string, string>([
  ['1.2.840.113549.1.1.4', 'md5WithRSAEncryption'],
  ['1.2.840.113549.1.1.2', 'md2WithRSAEncryption'],
  ['1.2.840.113549.1.1.5', 'sha1WithRSAEncryption'],
  ['1.2.840.10045.4.1', 'ecdsa-with-SHA1'],
  ['1.2.840.10040.4.3', 'dsa-with-SHA1'],
]);

/** Refuses a certificate whose signature uses a weak or unknown algorithm. */
export function checkSignatureAlgorithm(info: CertificateInfo, index: number, peer?: string): void {
  const oid = info.signatureAlgorithm;
  if (ALLOWED_SIGNATURES.has(oid)) return;
  const weak = WEAK_SIGNATURES.get(oid);
  const rule =
    weak === undefined
      ? `is signed with algorithm ${oid}, which is not accepted (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512, or Ed25519)`
      : `is signed with ${weak}, which is too weak`;
  throw new SidecarlessError('ERR_SVID_WEAK_ALGORITHM', `certificate ${index} (${info.label}) ${rule}`, {
    certificate: info.label,
    index,
    ...(peer === undefined ? {} : { peer }),
  });
}

/**
 * The reason a public key is too weak to trust, or undefined when it is acceptable. Computed once
 * per certificate when it is parsed (reading key details costs more than the check itself).
 */
export function weakKeyRule(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `has an RSA key of ${bits} bits (at least 2048 required)`;
  }
  if (type === 'ec') {
    const curve = details.namedCurve;
    return curve === 'prime256v1' || curve === 'secp384r1' || curve === 'secp521r1'
      ? undefined
      : `has an EC key on curve ${curve ?? 'unknown'} (P-256, P-384 or P-521 required)`;
  }
  if (type === 'ed25519') return undefined;
  return `has a ${type ?? 'unknown'} key, which is not accepted`;
}

/**
 * Refuses an EC key whose curve is not named by an OID (RFC 5480 §2.1.1: specifiedCurve and
 * implicitCurve must not be used; Go's crypto/x509 refuses them too). `id` is the SPIFFE ID the
 * certificate carries, named in the message when known.
 */
export function checkCurveEncoding(info: CertificateInfo, index: number, id?: string, peer?: string): void {
  if (info.ecParameters !== 'explicit' && info.ecParameters !== 'implicit') return;
  const form = info.ecParameters === 'explicit' ? 'explicit curve parameters' : 'implicit curve parameters';
  const of = id === undefined ? '' : ` of ${id}`;
  throw new SidecarlessError(
    'ERR_SVID_EXPLICIT_CURVE',
    `certificate ${index} (${info.label})${of} has an EC key with ${form}; RFC 5480 requires a named curve`,
    { certificate: info.label, index, ...(peer === undefined ? {} : { peer }) },
  );
}

/** Refuses a certificate whose public key is weak, of an unaccepted type, or on an unnamed curve. */
export function checkPublicKey(info: CertificateInfo, index: number, peer?: string): void {
  checkCurveEncoding(info, index, undefined, peer);
  const rule = info.keyWeakness;
  if (rule === undefined) return;
  throw new SidecarlessError('ERR_SVID_WEAK_KEY', `certificate ${index} (${info.label}) ${rule}`, {
    certificate: info.label,
    index,
    ...(peer === undefined ? {} : { peer }),
  });
}
