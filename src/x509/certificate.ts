import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_certificatePolicies,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  type Name,
  NameConstraints,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import { SidecarlessError } from '../errors.js';
import { weakKeyRule } from './algorithms.js';

/**
 * The largest certificate sidecarless parses, in DER bytes. Real SVIDs are 0.5–2 KiB; the limit
 * bounds the work an attacker's handshake can cause.
 * @example
 * ```ts
 * import { MAX_CERTIFICATE_BYTES } from 'sidecarless';
 * console.log(`certificates over ${MAX_CERTIFICATE_BYTES} bytes are refused`);
 * ```
 */
export const MAX_CERTIFICATE_BYTES = 16 * 1024;

/** Extensions we process; any other extension marked critical makes a certificate unusable. */
const KNOWN_EXTENSIONS = new Set<string>([
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_extKeyUsage,
  id_ce_subjectAltName,
  id_ce_nameConstraints,
  id_ce_subjectKeyIdentifier,
  id_ce_authorityKeyIdentifier,
  // Policies are accepted unenforced, as go-spiffe and Go's crypto/x509 do.
  id_ce_certificatePolicies,
]);

/** What a certificate says, read once by the one parser every check uses. */
export interface CertificateInfo {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  /** `subject "…", serial …` for messages. */
  readonly label: string;
  readonly subject: string;
  readonly issuer: string;
  readonly subjectName: Name;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** The outer signatureAlgorithm OID (checked equal to the TBS one). */
  readonly signatureAlgorithm: string;
  readonly publicKey: KeyObject;
  /** Why the public key is too weak to trust, or undefined when it is acceptable. */
  readonly keyWeakness: string | undefined;
  /**
   * How an EC key names its curve (RFC 5480 §2.1.1): `named` (an OID, the only form allowed),
   * `explicit` (specifiedCurve: the curve's parameters spelled out) or `implicit` (implicitCurve,
   * NULL); undefined for other key types.
   */
  readonly ecParameters: 'named' | 'explicit' | 'implicit' | undefined;
  readonly basicConstraints: { readonly cA: boolean; readonly pathLen: number | undefined } | undefined;
  /** keyUsage bits as @peculiar/asn1-x509's KeyUsageFlags, or undefined when absent. */
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emails: readonly string[];
  /** SAN entries of other forms (otherName, directoryName, …), counted for name constraints. */
  readonly otherNames: number;
  readonly nameConstraints: NameConstraints | undefined;
  readonly unknownCriticalExtensions: readonly string[];
  readonly selfIssued: boolean;
}

const MEMO_LIMIT = 1024;
const memo = new Map<string, CertificateInfo>();

/** For benchmarks: measure the parse of a certificate never seen before. */
export function clearCertificateMemo(): void {
  memo.clear();
}

function invalid(index: number, rule: string, cause?: unknown): SidecarlessError {
  return new SidecarlessError(
    'ERR_CERTIFICATE_INVALID',
    `certificate ${index}: ${rule}`,
    { index },
    cause === undefined ? undefined : { cause },
  );
}

function toBuffer(input: Uint8Array | X509Certificate): Buffer {
  if (input instanceof X509Certificate) return input.raw;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

/**
 * Parses a DER certificate (or takes an `X509Certificate`) into a {@link CertificateInfo}.
 * Parsing is a pure function of the bytes, so results are memoized by the SHA-256 of the DER
 * (bounded, least recently used); every signature and time check still runs on each use.
 *
 * @param index - the position in the input, for messages
 */
export function inspectCertificate(input: Uint8Array | X509Certificate, index = 0): CertificateInfo {
  if (!(input instanceof Uint8Array || input instanceof X509Certificate)) {
    throw invalid(index, 'must be DER bytes or an X509Certificate');
  }
  const der = toBuffer(input);
  if (der.length > MAX_CERTIFICATE_BYTES) {
    throw new SidecarlessError(
      'ERR_SVID_CERTIFICATE_TOO_LARGE',
      `certificate ${index} is ${der.length} bytes; the limit is ${MAX_CERTIFICATE_BYTES}`,
      { index },
    );
  }
  const key = createHash('sha256').update(der).digest('base64');
  const hit = memo.get(key);
  if (hit !== undefined) {
    memo.delete(key);
    memo.set(key, hit);
    return hit;
  }
  const info = parse(der, input instanceof X509Certificate ? input : undefined, index);
  memo.set(key, info);
  if (memo.size > MEMO_LIMIT) memo.delete(memo.keys().next().value as string);
  return info;
}

function parse(der: Buffer, given: X509Certificate | undefined, index: number): CertificateInfo {
  let x509: X509Certificate;
  let cert: Certificate;
  try {
    x509 = given ?? new X509Certificate(der);
    cert = AsnConvert.parse(der, Certificate);
  } catch (err) {
    throw invalid(index, 'is not a valid DER X.509 certificate', err);
  }
  if (x509.raw.length !== der.length) throw invalid(index, 'has trailing bytes after the certificate');
  const tbs = cert.tbsCertificate;
  if (tbs.version !== 2) throw invalid(index, `is X.509 version ${tbs.version + 1}; SVIDs are version 3`);
  // RFC 5280 §4.1.1.2: the outer and inner signature algorithms must be identical.
  const outer = cert.signatureAlgorithm;
  if (
    outer.algorithm !== tbs.signature.algorithm ||
    !sameBytes(outer.parameters ?? null, tbs.signature.parameters ?? null)
  ) {
    throw invalid(index, 'signatureAlgorithm differs from the TBS signature field');
  }
  const serial = Buffer.from(tbs.serialNumber).toString('hex').toUpperCase();
  // Node gives `undefined`, not '', for an empty name (RFC 5280 allows an empty leaf subject).
  const subject = (x509.subject ?? '').replaceAll('\n', ', ');
  const label = `subject "${subject}", serial ${serial}`;

  let basicConstraints: CertificateInfo['basicConstraints'];
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  let nameConstraints: NameConstraints | undefined;
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const emails: string[] = [];
  let otherNames = 0;
  const unknownCriticalExtensions: string[] = [];
  const seen = new Set<string>();

  for (const ext of tbs.extensions ?? []) {
    const id = ext.extnID;
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(id)) throw invalid(index, `has extension ${id} twice (${label})`);
    seen.add(id);
    if (!KNOWN_EXTENSIONS.has(id)) {
      if (ext.critical) unknownCriticalExtensions.push(id);
      continue;
    }
    const octets = ext.extnValue;
    const value = new Uint8Array(octets.buffer, octets.byteOffset, octets.byteLength);
    try {
      if (id === id_ce_basicConstraints) {
        const bc = AsnConvert.parse(value, BasicConstraints);
        basicConstraints = { cA: bc.cA, pathLen: bc.pathLenConstraint };
      } else if (id === id_ce_keyUsage) {
        keyUsage = AsnConvert.parse(value, KeyUsage).toNumber();
      } else if (id === id_ce_extKeyUsage) {
        extKeyUsage = [...AsnConvert.parse(value, ExtendedKeyUsage)];
      } else if (id === id_ce_nameConstraints) {
        nameConstraints = AsnConvert.parse(value, NameConstraints);
      } else if (id === id_ce_subjectAltName) {
        for (const name of AsnConvert.parse(value, SubjectAlternativeName)) {
          if (name.uniformResourceIdentifier !== undefined) uris.push(name.uniformResourceIdentifier);
          else if (name.dNSName !== undefined) dnsNames.push(name.dNSName);
          else if (name.iPAddress !== undefined) ipAddresses.push(name.iPAddress);
          else if (name.rfc822Name !== undefined) emails.push(name.rfc822Name);
          else otherNames++;
        }
      }
    } catch (err) {
      throw invalid(index, `extension ${id} is malformed (${label})`, err);
    }
  }

  let publicKey: X509Certificate['publicKey'];
  try {
    publicKey = x509.publicKey;
  } catch (err) {
    // OpenSSL decodes the SubjectPublicKeyInfo only when asked: a mangled key throws here.
    throw invalid(index, `has a public key that cannot be decoded (${label})`, err);
  }
  return Object.freeze({
    der,
    x509,
    label,
    subject,
    issuer: (x509.issuer ?? '').replaceAll('\n', ', '),
    subjectName: tbs.subject,
    serial,
    notBefore: tbs.validity.notBefore.getTime().getTime(),
    notAfter: tbs.validity.notAfter.getTime().getTime(),
    signatureAlgorithm: outer.algorithm,
    publicKey,
    keyWeakness: weakKeyRule(publicKey),
    ecParameters: ecParametersOf(tbs.subjectPublicKeyInfo.algorithm),
    basicConstraints,
    keyUsage,
    extKeyUsage,
    uris,
    dnsNames,
    ipAddresses,
    emails,
    otherNames,
    nameConstraints,
    unknownCriticalExtensions,
    selfIssued: x509.subject === x509.issuer,
  });
}

const ID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/**
 * The form of an EC key's ECParameters: Node reports an explicit P-256 as `prime256v1` (OpenSSL
 * matches the parameters to a named curve), so the encoding itself must be read.
 */
function ecParametersOf(algorithm: {
  readonly algorithm: string;
  readonly parameters?: ArrayBuffer | null;
}): CertificateInfo['ecParameters'] {
  if (algorithm.algorithm !== ID_EC_PUBLIC_KEY) return undefined;
  const tag = algorithm.parameters == null ? undefined : new Uint8Array(algorithm.parameters)[0];
  if (tag === 0x06) return 'named';
  if (tag === 0x30) return 'explicit';
  return 'implicit';
}

function sameBytes(a: ArrayBuffer | null, b: ArrayBuffer | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}
