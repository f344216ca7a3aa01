// Real certificates of any shape for x509 tests, built and signed with the project's own builder.
import { type KeyObject, X509Certificate } from 'node:crypto';
import { type Extension, KeyUsageFlags, type Name } from '@peculiar/asn1-x509';
import { generateKey, type KeyType, type LocalCa, localCaInternals } from '../../src/identity/local-ca.js';
import { buildCertificate, buildName, ext, type NameSpec } from '../../src/x509/build.js';

export const HOUR = 3_600_000;

/** Who signs: a name and a key. */
export interface Signer {
  readonly name: Name;
  readonly key: KeyObject;
  readonly publicKey: KeyObject;
}

/** A built certificate: its DER, parsed form, and the key pair behind it. */
export interface Built {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  readonly key: KeyObject;
  readonly publicKey: KeyObject;
  /** This certificate as a signer of further certificates. */
  readonly signer: Signer;
}

function built(der: Buffer, name: Name, keys: { privateKey: KeyObject; publicKey: KeyObject }): Built {
  return {
    der,
    x509: new X509Certificate(der),
    key: keys.privateKey,
    publicKey: keys.publicKey,
    signer: { name, key: keys.privateKey, publicKey: keys.publicKey },
  };
}

/** The active root of a local CA, as a signer (its key is internal to the CA). */
export function rootSigner(ca: LocalCa): Signer {
  const { root, rootKey } = localCaInternals(ca).active();
  if (rootKey === undefined) throw new Error('this CA has no root key');
  return { name: root.subjectName, key: rootKey, publicKey: root.publicKey };
}

type Keys = { privateKey: KeyObject; publicKey: KeyObject };

export interface CaSpec {
  readonly pathLen?: number;
  readonly notBefore?: number;
  readonly notAfter?: number;
  /** Extra extensions (name constraints, say). */
  readonly extensions?: readonly Extension[];
}

/** A CA certificate (cA=true, keyCertSign) named `O=sidecarless test, CN=<cn>`; self-signed without `issuer`. */
export function makeCa(cn: string, issuer?: Signer, spec: CaSpec = {}): Built {
  const keys = generateKey('ec-p256');
  const name = buildName([
    ['O', 'sidecarless test'],
    ['CN', cn],
  ]);
  const now = Date.now();
  const der = buildCertificate({
    subject: name,
    issuer: issuer?.name ?? name,
    publicKey: keys.publicKey,
    signingKey: issuer?.key ?? keys.privateKey,
    notBefore: new Date(spec.notBefore ?? now - HOUR),
    notAfter: new Date(spec.notAfter ?? now + 24 * HOUR),
    extensions: [
      ext.basicConstraints(true, spec.pathLen),
      ext.keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
      ext.subjectKeyIdentifier(keys.publicKey),
      ...(spec.extensions ?? []),
    ],
  });
  return built(der, name, keys);
}

export interface LeafSpec {
  /** URI SANs (default none). */
  readonly uris?: readonly string[];
  readonly keyType?: KeyType;
  /** An existing key pair to certify. */
  readonly keys?: Keys;
  /** extendedKeyUsage OIDs; `null` leaves the extension out (default serverAuth + clientAuth). */
  readonly eku?: readonly string[] | null;
  readonly subject?: NameSpec;
  readonly notBefore?: number;
  readonly notAfter?: number;
  /** Replaces the SAN built from `uris`. */
  readonly san?: Extension;
  readonly extensions?: readonly Extension[];
}

/** A leaf (cA=false, digitalSignature) signed by `issuer`. */
export function makeLeaf(issuer: Signer, spec: LeafSpec = {}): Built {
  const keys = spec.keys ?? generateKey(spec.keyType ?? 'ec-p256');
  const name = buildName(spec.subject ?? [['O', 'sidecarless test']]);
  const now = Date.now();
  const extensions = [ext.basicConstraints(false), ext.keyUsage(KeyUsageFlags.digitalSignature)];
  if (spec.eku !== null) extensions.push(ext.extKeyUsage(spec.eku));
  if (spec.san !== undefined) extensions.push(spec.san);
  else if ((spec.uris ?? []).length > 0) extensions.push(ext.subjectAltName({ uris: spec.uris ?? [] }));
  extensions.push(...(spec.extensions ?? []));
  const der = buildCertificate({
    subject: name,
    issuer: issuer.name,
    publicKey: keys.publicKey,
    signingKey: issuer.key,
    notBefore: new Date(spec.notBefore ?? now - 60_000),
    notAfter: new Date(spec.notAfter ?? now + HOUR),
    extensions,
  });
  return built(der, name, keys);
}

/** Normalised hex serial (uppercase, no leading zeros) for comparing with error labels. */
export function serialOf(cert: X509Certificate): string {
  return cert.serialNumber.toUpperCase().replace(/^0+/, '');
}
