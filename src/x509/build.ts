// Certificate issuance for the local CA and the testing kit. Synchronous on purpose: the
// structures are serialized with @peculiar/asn1-x509 and signed with node:crypto, so a CA can
// issue inside a constructor or a timer without an await. The ASN.1 packages are loaded on the
// first call (./asn1.ts): reading certificates does not need them.
import { createHash, type KeyObject, randomBytes, sign } from 'node:crypto';
import type { AlgorithmIdentifier, Extension, Name } from '@peculiar/asn1-x509';
import { asn1Schema, asn1X509 } from './asn1.js';

/** Hashes a certificate can be signed with; `sha1` exists for the bad-certificate factory. */
export type SignatureHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const OID = {
  CN: '2.5.4.3',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  C: '2.5.4.6',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const EC_SIGNATURES: Record<SignatureHash, string> = {
  sha1: '1.2.840.10045.4.1',
  sha256: '1.2.840.10045.4.3.2',
  sha384: '1.2.840.10045.4.3.3',
  sha512: '1.2.840.10045.4.3.4',
};
const RSA_SIGNATURES: Record<SignatureHash, string> = {
  sha1: '1.2.840.113549.1.1.5',
  sha256: '1.2.840.113549.1.1.11',
  sha384: '1.2.840.113549.1.1.12',
  sha512: '1.2.840.113549.1.1.13',
};
const ED25519 = '1.3.101.112';
const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;

/** A distinguished name as ordered `[attribute, value]` pairs, e.g. `[['O', 'sidecarless']]`. */
export type NameSpec = readonly (readonly [keyof typeof OID | string, string])[];

export function buildName(spec: NameSpec): Name {
  const x = asn1X509();
  return new x.Name(
    spec.map(([attr, value]) => {
      const type = (OID as Record<string, string>)[attr] ?? attr;
      const v =
        type === OID.C
          ? new x.AttributeValue({ printableString: value })
          : new x.AttributeValue({ utf8String: value });
      return new x.RelativeDistinguishedName([new x.AttributeTypeAndValue({ type, value: v })]);
    }),
  );
}

/** The name of an existing certificate's subject, byte for byte, for use as an issuer. */
export function subjectOf(der: Uint8Array): Name {
  const x = asn1X509();
  const a = asn1Schema();
  return a.AsnConvert.parse(der, x.Certificate).tbsCertificate.subject;
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  const x = asn1X509();
  const a = asn1Schema();
  return new x.Extension({ extnID, critical, extnValue: new a.OctetString(a.AsnConvert.serialize(value)) });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (an identifier, not a signature). */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const x = asn1X509();
  const a = asn1Schema();
  const spki = a.AsnConvert.parse(publicKey.export({ format: 'der', type: 'spki' }), x.SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
}

/** Extension builders, each returning a ready `Extension`. */
export const ext = {
  basicConstraints(cA: boolean, pathLen?: number, critical = true): Extension {
    const x = asn1X509();
    return extension(
      x.id_ce_basicConstraints,
      critical,
      new x.BasicConstraints({ cA, ...(pathLen === undefined ? {} : { pathLenConstraint: pathLen }) }),
    );
  },
  /** `flags` are @peculiar/asn1-x509 KeyUsageFlags bits. */
  keyUsage(flags: number, critical = true): Extension {
    const x = asn1X509();
    return extension(x.id_ce_keyUsage, critical, new x.KeyUsage(flags));
  },
  extKeyUsage(oids: readonly string[] = [OID.serverAuth, OID.clientAuth], critical = false): Extension {
    const x = asn1X509();
    return extension(x.id_ce_extKeyUsage, critical, new x.ExtendedKeyUsage([...oids]));
  },
  subjectAltName(
    names: { uris?: readonly string[]; dns?: readonly string[]; ips?: readonly string[] },
    critical = false,
  ): Extension {
    const x = asn1X509();
    const general = [
      ...(names.uris ?? []).map((u) => new x.GeneralName({ uniformResourceIdentifier: u })),
      ...(names.dns ?? []).map((d) => new x.GeneralName({ dNSName: d })),
      ...(names.ips ?? []).map((ip) => new x.GeneralName({ iPAddress: ip })),
    ];
    return extension(x.id_ce_subjectAltName, critical, new x.SubjectAlternativeName(general));
  },
  subjectKeyIdentifier(publicKey: KeyObject): Extension {
    const x = asn1X509();
    return extension(
      x.id_ce_subjectKeyIdentifier,
      false,
      new x.SubjectKeyIdentifier(keyIdentifier(publicKey)),
    );
  },
  authorityKeyIdentifier(issuerPublicKey: KeyObject): Extension {
    const x = asn1X509();
    return extension(
      x.id_ce_authorityKeyIdentifier,
      false,
      new x.AuthorityKeyIdentifier({ keyIdentifier: new x.KeyIdentifier(keyIdentifier(issuerPublicKey)) }),
    );
  },
  /** URI name constraints (hosts, RFC 5280 §4.2.1.10). */
  nameConstraints(permittedUris: readonly string[], excludedUris: readonly string[] = []): Extension {
    const x = asn1X509();
    const subtrees = (uris: readonly string[]) =>
      new x.GeneralSubtrees(
        uris.map((u) => new x.GeneralSubtree({ base: new x.GeneralName({ uniformResourceIdentifier: u }) })),
      );
    return extension(
      x.id_ce_nameConstraints,
      true,
      new x.NameConstraints({
        ...(permittedUris.length > 0 ? { permittedSubtrees: subtrees(permittedUris) } : {}),
        ...(excludedUris.length > 0 ? { excludedSubtrees: subtrees(excludedUris) } : {}),
      }),
    );
  },
  /** Any extension, from its OID and DER value. */
  raw(extnID: string, critical: boolean, valueDer: Uint8Array): Extension {
    const x = asn1X509();
    const a = asn1Schema();
    return new x.Extension({ extnID, critical, extnValue: new a.OctetString(valueDer) });
  },
};

export interface CertificateTemplate {
  readonly subject: Name;
  /** The issuer's name; the subject for a self-signed certificate. */
  readonly issuer: Name;
  readonly publicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Extension[];
  readonly hash?: SignatureHash;
  readonly serial?: Buffer;
}

function signatureAlgorithm(key: KeyObject, hash: SignatureHash): AlgorithmIdentifier {
  const x = asn1X509();
  switch (key.asymmetricKeyType) {
    case 'ec':
      return new x.AlgorithmIdentifier({ algorithm: EC_SIGNATURES[hash] });
    case 'rsa':
      return new x.AlgorithmIdentifier({ algorithm: RSA_SIGNATURES[hash], parameters: DER_NULL });
    case 'ed25519':
      return new x.AlgorithmIdentifier({ algorithm: ED25519 });
    default:
      throw new Error(`cannot sign with a ${key.asymmetricKeyType} key`);
  }
}

function defaultHash(key: KeyObject): SignatureHash {
  return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : 'sha256';
}

/** A positive 128-bit serial number (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
  return serial;
}

/** Builds and signs a certificate; returns its DER. */
export function buildCertificate(t: CertificateTemplate): Buffer {
  const x = asn1X509();
  const a = asn1Schema();
  const hash = t.hash ?? defaultHash(t.signingKey);
  const algorithm = signatureAlgorithm(t.signingKey, hash);
  const tbs = new x.TBSCertificate({
    version: x.Version.v3,
    serialNumber: new Uint8Array(t.serial ?? randomSerial()).buffer,
    signature: algorithm,
    issuer: t.issuer,
    validity: new x.Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject: t.subject,
    subjectPublicKeyInfo: a.AsnConvert.parse(
      t.publicKey.export({ format: 'der', type: 'spki' }),
      x.SubjectPublicKeyInfo,
    ),
    extensions: new x.Extensions([...t.extensions]),
  });
  const tbsDer = Buffer.from(a.AsnConvert.serialize(tbs));
  const signature = sign(t.signingKey.asymmetricKeyType === 'ed25519' ? null : hash, tbsDer, t.signingKey);
  const certificate = new x.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return Buffer.from(a.AsnConvert.serialize(certificate));
}
