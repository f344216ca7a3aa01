import { type ErrorCode, SidecarlessError } from '../errors.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { checkCurveEncoding, checkPublicKey } from './algorithms.js';
import type { CertificateInfo } from './certificate.js';
import { KeyUsageFlags } from './key-usage.js';

function refuse(code: ErrorCode, info: CertificateInfo, index: number, rule: string, cause?: unknown) {
  return new SidecarlessError(
    code,
    `certificate ${index} (${info.label}): ${rule}`,
    { certificate: info.label, index },
    cause === undefined ? undefined : { cause },
  );
}

function checkCriticalExtensions(info: CertificateInfo, index: number): void {
  if (info.unknownCriticalExtensions.length === 0) return;
  throw refuse(
    'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION',
    info,
    index,
    `has critical extension ${info.unknownCriticalExtensions.join(', ')}, which sidecarless does not process`,
  );
}

/**
 * X509-SVID §3.1, §4.1, §4.3 and §5.2 on a leaf: exactly one URI SAN holding a SPIFFE ID with a
 * non-root path, cA false, keyUsage present with digitalSignature and without keyCertSign or
 * cRLSign, no unknown critical extension, an acceptable key. Returns the SPIFFE ID.
 */
export function checkLeafProfile(info: CertificateInfo, index = 0): SpiffeId {
  checkCriticalExtensions(info, index);
  if (info.uris.length === 0) {
    const other = info.dnsNames.length > 0 ? ` (it has DNS names ${info.dnsNames.join(', ')} only)` : '';
    throw refuse(
      'ERR_SVID_NO_URI_SAN',
      info,
      index,
      `an SVID must have a URI SAN holding its SPIFFE ID${other}`,
    );
  }
  if (info.uris.length > 1) {
    throw refuse(
      'ERR_SVID_MULTIPLE_URI_SANS',
      info,
      index,
      `an SVID must have exactly one URI SAN, found ${info.uris.length}`,
    );
  }
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(info.uris[0] as string);
  } catch (err) {
    throw refuse(
      'ERR_SVID_ID_INVALID',
      info,
      index,
      `its URI SAN is not a valid SPIFFE ID: ${(err as Error).message}`,
      err,
    );
  }
  if (id.path === '') {
    throw refuse('ERR_SVID_ID_NO_PATH', info, index, `leaf SPIFFE ID ${id} must have a non-root path`);
  }
  if (info.basicConstraints?.cA === true) {
    throw refuse('ERR_SVID_LEAF_IS_CA', info, index, 'a leaf SVID must not have basicConstraints cA=true');
  }
  const ku = info.keyUsage;
  if (ku === undefined)
    throw refuse('ERR_SVID_NO_KEY_USAGE', info, index, 'the keyUsage extension must be present');
  if (ku & KeyUsageFlags.keyCertSign) {
    throw refuse('ERR_SVID_LEAF_KEY_CERT_SIGN', info, index, 'a leaf SVID must not set keyUsage keyCertSign');
  }
  if (ku & KeyUsageFlags.cRLSign) {
    throw refuse('ERR_SVID_LEAF_CRL_SIGN', info, index, 'a leaf SVID must not set keyUsage cRLSign');
  }
  if (!(ku & KeyUsageFlags.digitalSignature)) {
    throw refuse(
      'ERR_SVID_NO_DIGITAL_SIGNATURE',
      info,
      index,
      'a leaf SVID must set keyUsage digitalSignature',
    );
  }
  checkCurveEncoding(info, index, id.toString());
  checkPublicKey(info, index);
  return id;
}

/**
 * X509-SVID §3.2 and §4.3 on a certificate that signed another: cA true and keyUsage present with
 * keyCertSign (for bundle authorities too: they are checked when a bundle is built, see
 * {@link checkAuthorityProfile}, so a path never ends at one that breaks this).
 */
export function checkSignerProfile(info: CertificateInfo, index: number, isAuthority: boolean): void {
  checkCriticalExtensions(info, index);
  const role = isAuthority ? 'bundle authority' : 'intermediate';
  if (info.basicConstraints?.cA !== true) {
    throw refuse(
      'ERR_SVID_SIGNER_NOT_CA',
      info,
      index,
      `the ${role} signed a certificate but is not a CA (basicConstraints cA must be true)`,
    );
  }
  const ku = info.keyUsage;
  if (ku === undefined || !(ku & KeyUsageFlags.keyCertSign)) {
    throw refuse(
      'ERR_SVID_SIGNER_NO_KEY_CERT_SIGN',
      info,
      index,
      `the ${role} signed a certificate but its keyUsage lacks keyCertSign`,
    );
  }
  checkPublicKey(info, index);
}

/**
 * Trust-anchor hygiene, when a bundle is built (X509Bundle's one constructor, so every source of
 * bundles goes through it): an authority must be a CA (basicConstraints cA=true), carry keyUsage
 * with keyCertSign, have an accepted key (RSA of at least 2048 bits, P-256/P-384/P-521, Ed25519)
 * and name its curve. Refused with `ERR_BUNDLE_INVALID`, or `ERR_SVID_EXPLICIT_CURVE` for curve
 * parameters, naming the authority; nothing of the bundle becomes current.
 *
 * @param where - names the bundle in messages (`for cluster.local`, a file)
 */
export function checkAuthorityProfile(info: CertificateInfo, index: number, where: string): void {
  const bad = (rule: string) =>
    new SidecarlessError(
      'ERR_BUNDLE_INVALID',
      `bundle ${where}: authority ${index} (${info.label}) ${rule}`,
      {
        certificate: info.label,
        index,
      },
    );
  if (info.basicConstraints?.cA !== true) {
    throw bad('is not a CA (basicConstraints cA must be true)');
  }
  if (info.keyUsage === undefined) throw bad('has no keyUsage extension (keyCertSign is required)');
  if (!(info.keyUsage & KeyUsageFlags.keyCertSign)) throw bad('has keyUsage without keyCertSign');
  try {
    checkCurveEncoding(info, index);
  } catch (err) {
    const e = err as SidecarlessError;
    throw new SidecarlessError('ERR_SVID_EXPLICIT_CURVE', `bundle ${where}: ${e.message}`, e.detail);
  }
  if (info.keyWeakness !== undefined) throw bad(info.keyWeakness);
}

/** Checks the validity period of one certificate of a path at `now`. */
export function checkValidity(
  info: CertificateInfo,
  index: number,
  now: number,
  role: 'leaf' | 'intermediate' | 'authority',
): void {
  if (now >= info.notBefore && now <= info.notAfter) return;
  const expired = now > info.notAfter;
  const when = expired
    ? `expired at ${new Date(info.notAfter).toISOString()}`
    : `is not valid before ${new Date(info.notBefore).toISOString()}`;
  const code: ErrorCode =
    role === 'leaf'
      ? expired
        ? 'ERR_SVID_EXPIRED'
        : 'ERR_SVID_NOT_YET_VALID'
      : role === 'authority'
        ? 'ERR_SVID_AUTHORITY_EXPIRED'
        : 'ERR_SVID_SIGNER_EXPIRED';
  throw refuse(code, info, index, `the ${role} ${when} (checked at ${new Date(now).toISOString()})`);
}
