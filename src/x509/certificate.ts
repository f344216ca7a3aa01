import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import type { Name } from '@peculiar/asn1-x509';
import { SidecarlessError } from '../errors.js';
import { weakKeyRule } from './algorithms.js';
import { subjectOf } from './build.js';
import {
  checkElement,
  childrenOf,
  contextTag,
  type DerElement,
  DerError,
  expectTag,
  readBitFlags,
  readBitString,
  readBoolean,
  readIntegerBytes,
  readOid,
  readOnly,
  readSmallInteger,
  readTime,
  TAG,
} from './der.js';
import { type DistinguishedName, type GeneralNameInfo, readGeneralName, readName } from './general-name.js';

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

const id_ce_basicConstraints = '2.5.29.19';
const id_ce_keyUsage = '2.5.29.15';
const id_ce_extKeyUsage = '2.5.29.37';
const id_ce_subjectAltName = '2.5.29.17';
const id_ce_nameConstraints = '2.5.29.30';

/** Extensions we process; any other extension marked critical makes a certificate unusable. */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set<string>([
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_extKeyUsage,
  id_ce_subjectAltName,
  id_ce_nameConstraints,
  // subjectKeyIdentifier, authorityKeyIdentifier.
  '2.5.29.14',
  '2.5.29.35',
  // Policies are accepted unenforced, as go-spiffe and Go's crypto/x509 do.
  '2.5.29.32',
]);

/** One subtree of a nameConstraints extension (RFC 5280 §4.2.1.10). */
export interface NameSubtree {
  readonly base: GeneralNameInfo;
  /** `minimum` is anything but 0, or `maximum` is present (both forbidden by RFC 5280). */
  readonly hasBounds: boolean;
}

/** A nameConstraints extension: its permitted and excluded subtrees, as read. */
export interface NameConstraintsInfo {
  readonly permitted: readonly NameSubtree[];
  readonly excluded: readonly NameSubtree[];
}

/** What a certificate says, read once by the one parser every check uses. */
export interface CertificateInfo {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  /** `subject "…", serial …` for messages. */
  readonly label: string;
  readonly subject: string;
  readonly issuer: string;
  /** The subject's RDNs, as ./name-constraints.ts compares them. */
  readonly subjectRdns: DistinguishedName;
  /**
   * The subject as an @peculiar/asn1-x509 `Name`, byte for byte, for issuing under this
   * certificate (the local CA, the testing kit); decoded on first use, so that reading a
   * certificate loads no ASN.1 library.
   */
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
  /** keyUsage bits as ./key-usage.ts's KeyUsageFlags, or undefined when absent. */
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emails: readonly string[];
  /** SAN entries of other forms (otherName, directoryName, …), counted for name constraints. */
  readonly otherNames: number;
  readonly nameConstraints: NameConstraintsInfo | undefined;
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

/** The parts of a certificate (RFC 5280 §4.1) this parser reads, found in order. */
interface CertificateParts {
  readonly version: number;
  readonly serial: Buffer;
  readonly innerAlgorithm: DerElement;
  readonly outerAlgorithm: DerElement;
  readonly subject: DerElement;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly keyAlgorithm: DerElement;
  readonly extensions: readonly DerElement[];
}

function readParts(der: Buffer): CertificateParts {
  const top = childrenOf(readOnly(der), TAG.sequence);
  if (top.length !== 3) throw new DerError('a Certificate has three elements');
  const [tbs, outerAlgorithm, signature] = top as [DerElement, DerElement, DerElement];
  readAlgorithm(outerAlgorithm);
  readBitString(signature);
  const fields = childrenOf(tbs, TAG.sequence);
  let i = 0;
  const next = (): DerElement => {
    const field = fields[i++];
    if (field === undefined) throw new DerError('TBSCertificate is missing fields');
    return field;
  };
  let version = 0;
  if (fields[0]?.tag === contextTag(0, true)) {
    const explicit = childrenOf(next());
    if (explicit.length !== 1) throw new DerError('version of other than one INTEGER');
    version = readSmallInteger(explicit[0] as DerElement);
  }
  const serial = readIntegerBytes(next());
  const innerAlgorithm = next();
  readAlgorithm(innerAlgorithm);
  readName(next()); // issuer
  const validity = childrenOf(next(), TAG.sequence);
  if (validity.length !== 2) throw new DerError('Validity of other than two times');
  const notBefore = readTime(validity[0] as DerElement);
  const notAfter = readTime(validity[1] as DerElement);
  const subject = next();
  readName(subject);
  const spki = childrenOf(next(), TAG.sequence);
  if (spki.length !== 2) throw new DerError('SubjectPublicKeyInfo of other than two elements');
  const keyAlgorithm = spki[0] as DerElement;
  readAlgorithm(keyAlgorithm);
  readBitString(spki[1] as DerElement);
  // issuerUniqueID [1] and subjectUniqueID [2], IMPLICIT BIT STRING, then extensions [3].
  for (const n of [1, 2]) {
    if (fields[i]?.tag === contextTag(n, false)) readBitString({ ...next(), tag: TAG.bitString });
  }
  let extensions: DerElement[] = [];
  if (fields[i]?.tag === contextTag(3, true)) {
    const explicit = childrenOf(next());
    if (explicit.length !== 1) throw new DerError('extensions of other than one SEQUENCE');
    extensions = childrenOf(explicit[0] as DerElement, TAG.sequence);
  }
  if (i !== fields.length) throw new DerError('TBSCertificate has unexpected fields');
  return {
    version,
    serial,
    innerAlgorithm,
    outerAlgorithm,
    subject,
    notBefore,
    notAfter,
    keyAlgorithm,
    extensions,
  };
}

/** An AlgorithmIdentifier: its OID and its parameters' whole encoding, if any. */
function readAlgorithm(element: DerElement): { readonly oid: string; readonly parameters?: DerElement } {
  const parts = childrenOf(element, TAG.sequence);
  if (parts.length < 1 || parts.length > 2) throw new DerError('AlgorithmIdentifier of 1 or 2 elements');
  const oid = readOid(parts[0] as DerElement);
  if (parts[1] === undefined) return { oid };
  checkElement(parts[1]);
  return { oid, parameters: parts[1] };
}

function readExtension(element: DerElement): {
  readonly id: string;
  readonly critical: boolean;
  readonly value: Buffer;
} {
  const parts = childrenOf(element, TAG.sequence);
  const [idPart, second, third] = parts;
  if (idPart === undefined || second === undefined || parts.length > 3) {
    throw new DerError('Extension of other than 2 or 3 elements');
  }
  const id = readOid(idPart);
  const critical = third === undefined ? false : readBoolean(second);
  const octets = third ?? second;
  expectTag(octets, TAG.octetString);
  return { id, critical, value: octets.value };
}

function readBasicConstraints(value: Buffer): NonNullable<CertificateInfo['basicConstraints']> {
  const parts = childrenOf(readOnly(value), TAG.sequence);
  let i = 0;
  let cA = false;
  let pathLen: number | undefined;
  if (parts[i]?.tag === TAG.boolean) cA = readBoolean(parts[i++] as DerElement);
  if (parts[i]?.tag === TAG.integer) pathLen = readSmallInteger(parts[i++] as DerElement);
  if (i !== parts.length) throw new DerError('basicConstraints has unexpected fields');
  return { cA, pathLen };
}

function readSubtrees(element: DerElement): NameSubtree[] {
  return childrenOf(element).map((subtree) => {
    const [base, ...bounds] = childrenOf(subtree, TAG.sequence);
    if (base === undefined) throw new DerError('GeneralSubtree without a base');
    let hasBounds = false;
    let i = 0;
    if (bounds[i]?.tag === contextTag(0, false)) {
      if (readSmallInteger(bounds[i++] as DerElement, contextTag(0, false)) !== 0) hasBounds = true;
    }
    if (bounds[i]?.tag === contextTag(1, false)) {
      readIntegerBytes(bounds[i++] as DerElement, contextTag(1, false));
      hasBounds = true;
    }
    if (i !== bounds.length) throw new DerError('GeneralSubtree has unexpected fields');
    return { base: readGeneralName(base), hasBounds };
  });
}

function readNameConstraints(value: Buffer): NameConstraintsInfo {
  const parts = childrenOf(readOnly(value), TAG.sequence);
  let i = 0;
  let permitted: NameSubtree[] = [];
  let excluded: NameSubtree[] = [];
  if (parts[i]?.tag === contextTag(0, true)) permitted = readSubtrees(parts[i++] as DerElement);
  if (parts[i]?.tag === contextTag(1, true)) excluded = readSubtrees(parts[i++] as DerElement);
  if (i !== parts.length) throw new DerError('nameConstraints has unexpected fields');
  return { permitted, excluded };
}

function parse(der: Buffer, given: X509Certificate | undefined, index: number): CertificateInfo {
  let x509: X509Certificate;
  let parts: CertificateParts;
  try {
    x509 = given ?? new X509Certificate(der);
    parts = readParts(der);
  } catch (err) {
    throw invalid(index, 'is not a valid DER X.509 certificate', err);
  }
  if (x509.raw.length !== der.length) throw invalid(index, 'has trailing bytes after the certificate');
  if (parts.version !== 2) throw invalid(index, `is X.509 version ${parts.version + 1}; SVIDs are version 3`);
  // RFC 5280 §4.1.1.2: the outer and inner signature algorithms must be identical (OID and
  // parameters; DER has one encoding of each, so the bytes are compared).
  if (!parts.outerAlgorithm.bytes.equals(parts.innerAlgorithm.bytes)) {
    throw invalid(index, 'signatureAlgorithm differs from the TBS signature field');
  }
  const serial = parts.serial.toString('hex').toUpperCase();
  // Node gives `undefined`, not '', for an empty name (RFC 5280 allows an empty leaf subject).
  const subject = (x509.subject ?? '').replaceAll('\n', ', ');
  const label = `subject "${subject}", serial ${serial}`;

  let basicConstraints: CertificateInfo['basicConstraints'];
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  let nameConstraints: NameConstraintsInfo | undefined;
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const emails: string[] = [];
  let otherNames = 0;
  const unknownCriticalExtensions: string[] = [];
  const seen = new Set<string>();

  for (const element of parts.extensions) {
    let ext: ReturnType<typeof readExtension>;
    try {
      ext = readExtension(element);
    } catch (err) {
      throw invalid(index, `has a malformed extension (${label})`, err);
    }
    const { id, value } = ext;
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(id)) throw invalid(index, `has extension ${id} twice (${label})`);
    seen.add(id);
    if (!KNOWN_EXTENSIONS.has(id)) {
      if (ext.critical) unknownCriticalExtensions.push(id);
      continue;
    }
    try {
      if (id === id_ce_basicConstraints) {
        basicConstraints = readBasicConstraints(value);
      } else if (id === id_ce_keyUsage) {
        keyUsage = readBitFlags(readOnly(value));
      } else if (id === id_ce_extKeyUsage) {
        extKeyUsage = childrenOf(readOnly(value), TAG.sequence).map(readOid);
      } else if (id === id_ce_nameConstraints) {
        nameConstraints = readNameConstraints(value);
      } else if (id === id_ce_subjectAltName) {
        for (const element of childrenOf(readOnly(value), TAG.sequence)) {
          const name = readGeneralName(element);
          if (name.form === 'uri') uris.push(name.value);
          else if (name.form === 'dns') dnsNames.push(name.value);
          else if (name.form === 'ip') ipAddresses.push(name.value);
          else if (name.form === 'email') emails.push(name.value);
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
  let subjectName: Name | undefined;
  return Object.freeze({
    der,
    x509,
    label,
    subject,
    issuer: (x509.issuer ?? '').replaceAll('\n', ', '),
    subjectRdns: readName(parts.subject),
    get subjectName(): Name {
      subjectName ??= subjectOf(der);
      return subjectName;
    },
    serial,
    notBefore: parts.notBefore,
    notAfter: parts.notAfter,
    signatureAlgorithm: readAlgorithm(parts.outerAlgorithm).oid,
    publicKey,
    keyWeakness: weakKeyRule(publicKey),
    ecParameters: ecParametersOf(readAlgorithm(parts.keyAlgorithm)),
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
  readonly oid: string;
  readonly parameters?: DerElement;
}): CertificateInfo['ecParameters'] {
  if (algorithm.oid !== ID_EC_PUBLIC_KEY) return undefined;
  const tag = algorithm.parameters?.tag;
  if (tag === TAG.oid) return 'named';
  if (tag === TAG.sequence) return 'explicit';
  return 'implicit';
}
