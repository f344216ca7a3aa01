import { createPublicKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { AsnConvert } from '@peculiar/asn1-schema';
import { KeyUsageFlags, type Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import {
  type Authority,
  createLocalCa,
  generateKey,
  type LocalCa,
  localCaInternals,
} from '../identity/local-ca.js';
import { buildCertificate, buildName, ext } from '../x509/build.js';
import { X509Bundle } from '../x509/bundle.js';
import { BundleSet } from '../x509/bundle-set.js';
import { encodePem } from '../x509/pem.js';
import { type BadSvidKind, badSvidKinds } from './bad-svid-kinds.js';
import type * as pub from './public-types.js';

/**
 * A chain built to break one rule, for tests: what a peer would present, its key, and the bundles
 * the verifier trusts in that scenario. The private key is never shown by `inspect()`.
 * @example
 * ```ts
 * import tls from 'node:tls';
 * import { createTestCa } from 'sidecarless/testing';
 * const bad = createTestCa().issueBad('expired');
 * // Present it from a TLS client, and expect the server to refuse it with bad.code.
 * const context = tls.createSecureContext({ cert: bad.certChainPem(), key: bad.privateKeyPem() });
 * ```
 */
export interface BadSvid {
  /** Which rule it breaks. */
  readonly kind: BadSvidKind;
  /** The code `verifyPeerChain` must refuse it with. */
  readonly code: pub.ErrorCode;
  /** What is wrong with it. */
  readonly description: string;
  /** The chain as presented, leaf first. */
  readonly certificates: readonly X509Certificate[];
  /** The leaf's private key. */
  readonly privateKey: KeyObject;
  /** The bundles the verifier trusts in this scenario (usually the test CA's). */
  readonly bundles: pub.BundleSet;
  /** The chain as PEM, leaf first, for a TLS client or server. */
  certChainPem(): string;
  /** The leaf's private key as PKCS#8 PEM, for a TLS client or server. */
  privateKeyPem(): string;
}

const HOUR = 3_600_000;

interface Signer {
  readonly name: Name;
  readonly key: KeyObject;
  readonly publicKey: KeyObject;
}

interface LeafSpec {
  uris?: string[];
  dns?: string[];
  bc?: 'absent' | boolean;
  ku?: number | 'absent';
  notBefore?: number;
  notAfter?: number;
  extra?: ReturnType<typeof ext.raw>[];
  hash?: 'sha1';
  keyType?: 'rsa-1024' | 'ec-explicit';
}

/** P-256's ECParameters spelled out (specifiedCurve, SEC 1 §C.2), as `openssl ecparam -param_enc explicit` writes them. */
const P256_EXPLICIT_PARAMETERS = Buffer.from(
  '3081f7020101302c06072a8648ce3d0101022100ffffffff00000001000000000000000000000000ffffffffffffffffffffffff' +
    '305b0420ffffffff00000001000000000000000000000000fffffffffffffffffffffffc04205ac635d8aa3a93e7b3ebbd5576' +
    '9886bc651d06b0cc53b0f63bce3c3e27d2604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e1' +
    '2c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315e' +
    'cecbb6406837bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551020101',
  'hex',
);

/** The same P-256 public key, its SubjectPublicKeyInfo carrying explicit curve parameters. */
function withExplicitCurve(publicKey: KeyObject): KeyObject {
  const spki = AsnConvert.parse(publicKey.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo);
  const params = P256_EXPLICIT_PARAMETERS;
  spki.algorithm.parameters = params.buffer.slice(params.byteOffset, params.byteOffset + params.byteLength);
  return createPublicKey({ key: Buffer.from(AsnConvert.serialize(spki)), format: 'der', type: 'spki' });
}

function makeKeys(type?: 'rsa-1024' | 'ec-explicit'): { privateKey: KeyObject; publicKey: KeyObject } {
  if (type === 'rsa-1024') return generateKeyPairSync('rsa', { modulusLength: 1024 });
  const keys = generateKey('ec-p256');
  return type === 'ec-explicit'
    ? { privateKey: keys.privateKey, publicKey: withExplicitCurve(keys.publicKey) }
    : keys;
}

function signLeaf(signer: Signer, spec: LeafSpec, goodId: string): { der: Buffer; key: KeyObject } {
  const keys = makeKeys(spec.keyType);
  const now = Date.now();
  const extensions = [];
  if (spec.bc !== 'absent') extensions.push(ext.basicConstraints(spec.bc ?? false));
  if (spec.ku !== 'absent') extensions.push(ext.keyUsage(spec.ku ?? KeyUsageFlags.digitalSignature));
  extensions.push(ext.extKeyUsage());
  const uris = spec.uris ?? [goodId];
  if (uris.length > 0 || (spec.dns ?? []).length > 0) {
    extensions.push(ext.subjectAltName({ uris, dns: spec.dns ?? [] }));
  }
  // Real issuers add key identifiers; strict tools (openssl -x509_strict) expect them.
  extensions.push(ext.subjectKeyIdentifier(keys.publicKey), ext.authorityKeyIdentifier(signer.publicKey));
  extensions.push(...(spec.extra ?? []));
  const der = buildCertificate({
    subject: buildName([['O', 'sidecarless test']]),
    issuer: signer.name,
    publicKey: keys.publicKey,
    signingKey: signer.key,
    notBefore: new Date(spec.notBefore ?? now - 60_000),
    notAfter: new Date(spec.notAfter ?? now + HOUR),
    extensions,
    ...(spec.hash === undefined ? {} : { hash: spec.hash }),
  });
  return { der, key: keys.privateKey };
}

interface CaSpec {
  cA?: boolean;
  ku?: number;
  pathLen?: number;
  notAfter?: number;
  permittedUris?: string[];
  keyType?: 'ec-explicit';
}

function signCa(issuer: Signer, cn: string, spec: CaSpec = {}): { der: Buffer; signer: Signer } {
  const keys = makeKeys(spec.keyType);
  const name = buildName([
    ['O', 'sidecarless test'],
    ['CN', cn],
  ]);
  const now = Date.now();
  const extensions = [
    ext.basicConstraints(spec.cA ?? true, spec.pathLen),
    ext.keyUsage(spec.ku ?? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
    ext.subjectKeyIdentifier(keys.publicKey),
  ];
  if (spec.permittedUris !== undefined) extensions.push(ext.nameConstraints(spec.permittedUris));
  const der = buildCertificate({
    subject: name,
    issuer: issuer.name,
    publicKey: keys.publicKey,
    signingKey: issuer.key,
    notBefore: new Date(now - 2 * HOUR),
    notAfter: new Date(spec.notAfter ?? now + 24 * HOUR),
    extensions,
  });
  return { der, signer: { name, key: keys.privateKey, publicKey: keys.publicKey } };
}

/** A self-signed root outside any CA, for the expired-root scenario. */
function selfSignedRoot(cn: string, notAfter: number): { der: Buffer; signer: Signer } {
  const keys = generateKey('ec-p256');
  const name = buildName([
    ['O', 'sidecarless test'],
    ['CN', cn],
  ]);
  const der = buildCertificate({
    subject: name,
    issuer: name,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    notBefore: new Date(notAfter - 48 * HOUR),
    notAfter: new Date(notAfter),
    extensions: [ext.basicConstraints(true), ext.keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)],
  });
  return { der, signer: { name, key: keys.privateKey, publicKey: keys.publicKey } };
}

function rootSigner(authority: Authority): Signer {
  if (authority.rootKey === undefined) throw new Error('the test CA has no root key');
  return { name: authority.root.subjectName, key: authority.rootKey, publicKey: authority.root.publicKey };
}

function tamper(der: Buffer): Buffer {
  const out = Buffer.from(der);
  // The last byte belongs to the signature's s integer: flipping it keeps valid DER.
  out[out.length - 1] = (out[out.length - 1] as number) ^ 0x01;
  return out;
}

/** Builds the chain for one bad kind, signed for real by the test CA (or a rogue one). */
export function buildBadSvid(ca: LocalCa, kind: BadSvidKind, path: string): BadSvid {
  const entry = badSvidKinds[kind];
  if (entry === undefined) throw new Error(`unknown bad SVID kind ${String(kind)}`);
  const td = ca.trustDomain.name;
  const goodId = `spiffe://${td}${path}`;
  const authority = localCaInternals(ca).active();
  const root = rootSigner(authority);
  const now = Date.now();
  let bundles = ca.bundles();
  let chain: Buffer[] = [];
  let key: KeyObject | undefined;

  const leafOnly = (spec: LeafSpec) => {
    const leaf = signLeaf(root, spec, goodId);
    chain = [leaf.der];
    key = leaf.key;
  };
  const underIntermediates = (intermediates: { der: Buffer; signer: Signer }[], spec: LeafSpec = {}) => {
    const signer = (intermediates[intermediates.length - 1] as { signer: Signer }).signer;
    const leaf = signLeaf(signer, spec, goodId);
    chain = [leaf.der, ...intermediates.map((i) => i.der).reverse()];
    key = leaf.key;
  };

  switch (kind) {
    case 'no-uri-san':
      leafOnly({ uris: [] });
      break;
    case 'two-uri-sans':
      leafOnly({ uris: [goodId, `${goodId}-other`] });
      break;
    case 'dns-only-san':
      leafOnly({ uris: [], dns: ['boards.demo.svc.cluster.local'] });
      break;
    case 'non-spiffe-scheme':
      leafOnly({ uris: [`https://${td}${path}`] });
      break;
    case 'uppercase-trust-domain':
      leafOnly({ uris: [`spiffe://${td.toUpperCase()}${path}`] });
      break;
    case 'root-path':
      leafOnly({ uris: [`spiffe://${td}`] });
      break;
    case 'query-in-id':
      leafOnly({ uris: [`${goodId}?admin=true`] });
      break;
    case 'fragment-in-id':
      leafOnly({ uris: [`${goodId}#admin`] });
      break;
    case 'percent-encoded-id':
      leafOnly({ uris: [`spiffe://${td}/ns/%61dmin`] });
      break;
    case 'id-too-long':
      leafOnly({ uris: [`${goodId}/${'a'.repeat(2100)}`] });
      break;
    case 'leaf-is-ca':
      leafOnly({ bc: true });
      break;
    case 'leaf-key-cert-sign':
      leafOnly({ ku: KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign });
      break;
    case 'leaf-crl-sign':
      leafOnly({ ku: KeyUsageFlags.digitalSignature | KeyUsageFlags.cRLSign });
      break;
    case 'no-digital-signature':
      leafOnly({ ku: KeyUsageFlags.keyEncipherment | KeyUsageFlags.keyAgreement });
      break;
    case 'no-key-usage':
      leafOnly({ ku: 'absent' });
      break;
    case 'expired':
      leafOnly({ notBefore: now - 2 * HOUR, notAfter: now - HOUR });
      break;
    case 'not-yet-valid':
      leafOnly({ notBefore: now + HOUR, notAfter: now + 2 * HOUR });
      break;
    case 'wrong-root': {
      const rogue = localCaInternals(createLocalCa({ trustDomain: td })).active();
      const leaf = signLeaf(rootSigner(rogue), {}, goodId);
      chain = [leaf.der];
      key = leaf.key;
      break;
    }
    case 'foreign-trust-domain-ca': {
      const foreignCa = createLocalCa({ trustDomain: `evil-${td}` });
      const leaf = signLeaf(rootSigner(localCaInternals(foreignCa).active()), {}, goodId);
      chain = [leaf.der];
      key = leaf.key;
      // The foreign trust domain is trusted, for its own IDs: a merged pool would accept this.
      bundles = bundles.with(foreignCa.bundle());
      break;
    }
    case 'intermediate-not-ca':
      underIntermediates([signCa(root, 'not a CA', { cA: false })]);
      break;
    case 'intermediate-no-key-cert-sign':
      underIntermediates([
        signCa(root, 'no keyCertSign', { ku: KeyUsageFlags.digitalSignature | KeyUsageFlags.cRLSign }),
      ]);
      break;
    case 'intermediate-expired':
      underIntermediates([signCa(root, 'expired intermediate', { notAfter: now - HOUR })]);
      break;
    case 'root-expired': {
      const expiredRoot = selfSignedRoot(`${td} expired root`, now - HOUR);
      const leaf = signLeaf(expiredRoot.signer, {}, goodId);
      chain = [leaf.der];
      key = leaf.key;
      bundles = BundleSet.of(X509Bundle.fromCertificates(td, expiredRoot.der));
      break;
    }
    case 'path-len-exceeded': {
      const first = signCa(root, 'pathLen 0', { pathLen: 0 });
      underIntermediates([first, signCa(first.signer, 'below pathLen 0')]);
      break;
    }
    case 'name-constraint-violated':
      underIntermediates([signCa(root, 'constrained', { permittedUris: [`other-${td}`] })]);
      break;
    case 'unknown-critical-extension':
      leafOnly({ extra: [ext.raw('1.3.6.1.4.1.55555.1.1', true, new Uint8Array([0x05, 0x00]))] });
      break;
    case 'chain-too-long': {
      const intermediates = [signCa(root, 'level 1')];
      for (let level = 2; level <= 8; level++) {
        const parent = intermediates[intermediates.length - 1] as { signer: Signer };
        intermediates.push(signCa(parent.signer, `level ${level}`));
      }
      underIntermediates(intermediates);
      break;
    }
    case 'sha1-signature':
      leafOnly({ hash: 'sha1' });
      break;
    case 'rsa-1024':
      leafOnly({ keyType: 'rsa-1024' });
      break;
    case 'explicit-curve':
      leafOnly({ keyType: 'ec-explicit' });
      break;
    case 'intermediate-explicit-curve':
      underIntermediates([signCa(root, 'explicit curve', { keyType: 'ec-explicit' })]);
      break;
    case 'chain-order': {
      const upper = signCa(root, 'upper');
      const lower = signCa(upper.signer, 'lower');
      underIntermediates([upper, lower]);
      // Presented upper first: each certificate must be followed by its own issuer.
      chain = [chain[0] as Buffer, upper.der, lower.der];
      break;
    }
    case 'signature-tampered': {
      const intermediate = signCa(root, 'honest intermediate');
      underIntermediates([intermediate]);
      chain = [tamper(chain[0] as Buffer), intermediate.der];
      break;
    }
    case 'certificate-too-large':
      leafOnly({
        extra: [
          ext.raw(
            '1.3.6.1.4.1.55555.1.2',
            false,
            Buffer.concat([Buffer.from([0x04, 0x82, 0x44, 0x00]), Buffer.alloc(0x4400)]),
          ),
        ],
      });
      break;
  }

  if (key === undefined || chain.length === 0) throw new Error(`bad SVID kind ${kind} built nothing`);
  const certificates = Object.freeze(chain.map((der) => new X509Certificate(der)));
  const privateKey = key;
  const bad: BadSvid = {
    kind,
    code: entry.code,
    description: entry.description,
    certificates,
    privateKey,
    bundles,
    certChainPem: () => certificates.map((c) => encodePem('CERTIFICATE', c.raw)).join(''),
    privateKeyPem: () => privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  };
  Object.defineProperty(bad, inspect.custom, {
    value: () => `BadSvid(${kind}: ${entry.description}; expect ${entry.code})`,
  });
  return Object.freeze(bad);
}
