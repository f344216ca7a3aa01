// The DER reader that parses certificates on the server path (src/x509/der.ts, general-name.ts,
// certificate.ts) against @peculiar/asn1-x509, the parser it replaced: on every certificate the
// test CA, the bad-SVID factory, hand-built names and constraints and the openssl CLI produce,
// both must read the same fields; on mutated certificates, whatever the reader accepts the
// reference accepts too, with the same fields (the reader may only be stricter).
import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  type Extension,
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  KeyUsage,
  type Name,
  NameConstraints,
  OtherName,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLocalCa, isSidecarlessError } from '../../src/index.js';
import { type BadSvidKind, badSvidKinds, createTestCa } from '../../src/testing/index.js';
import { buildName, ext } from '../../src/x509/build.js';
// The reference reader shares the list of processed extensions (a policy, not parsing).
import { clearCertificateMemo, inspectCertificate, KNOWN_EXTENSIONS } from '../../src/x509/certificate.js';
import {
  DerError,
  encodeElement,
  encodeOid,
  encodeTime,
  readBitFlags,
  readElement,
  readOid,
  readOnly,
  readSmallInteger,
  readTime,
  TAG,
} from '../../src/x509/der.js';
import { ipToString } from '../../src/x509/general-name.js';
import { makeCa, makeLeaf } from '../helpers/certs.js';
import { useOpensslDir } from '../helpers/openssl.js';
import { skipWithout } from '../helpers/programs.js';

function rdnsOf(name: Name) {
  return name.map((rdn) => rdn.map((atv) => ({ type: atv.type, value: atv.value.toString() })));
}

function generalNameOf(name: GeneralName) {
  if (name.uniformResourceIdentifier !== undefined)
    return { form: 'uri', value: name.uniformResourceIdentifier };
  if (name.dNSName !== undefined) return { form: 'dns', value: name.dNSName };
  if (name.iPAddress !== undefined) return { form: 'ip', value: name.iPAddress };
  if (name.rfc822Name !== undefined) return { form: 'email', value: name.rfc822Name };
  if (name.directoryName !== undefined) return { form: 'dir', name: rdnsOf(name.directoryName) };
  return { form: 'other' };
}

/** What the parser before src/x509/der.ts read of a certificate, with @peculiar/asn1-x509. */
function reference(der: Buffer) {
  const cert = AsnConvert.parse(der, Certificate);
  const tbs = cert.tbsCertificate;
  const out = {
    version: tbs.version,
    serial: Buffer.from(tbs.serialNumber).toString('hex').toUpperCase(),
    sameAlgorithms:
      cert.signatureAlgorithm.algorithm === tbs.signature.algorithm &&
      Buffer.from(cert.signatureAlgorithm.parameters ?? new ArrayBuffer(0)).equals(
        Buffer.from(tbs.signature.parameters ?? new ArrayBuffer(0)),
      ),
    signatureAlgorithm: cert.signatureAlgorithm.algorithm,
    notBefore: tbs.validity.notBefore.getTime().getTime(),
    notAfter: tbs.validity.notAfter.getTime().getTime(),
    subjectRdns: rdnsOf(tbs.subject),
    basicConstraints: undefined as { cA: boolean; pathLen: number | undefined } | undefined,
    keyUsage: undefined as number | undefined,
    extKeyUsage: undefined as string[] | undefined,
    uris: [] as string[],
    dnsNames: [] as string[],
    ipAddresses: [] as string[],
    emails: [] as string[],
    otherNames: 0,
    nameConstraints: undefined as unknown,
    unknownCriticalExtensions: [] as string[],
  };
  const seen = new Set<string>();
  for (const e of tbs.extensions ?? []) {
    if (seen.has(e.extnID)) throw new Error('duplicate extension');
    seen.add(e.extnID);
    if (!KNOWN_EXTENSIONS.has(e.extnID)) {
      if (e.critical) out.unknownCriticalExtensions.push(e.extnID);
      continue;
    }
    const v = new Uint8Array(e.extnValue.buffer, e.extnValue.byteOffset, e.extnValue.byteLength);
    if (e.extnID === id_ce_basicConstraints) {
      const bc = AsnConvert.parse(v, BasicConstraints);
      out.basicConstraints = { cA: bc.cA, pathLen: bc.pathLenConstraint };
    } else if (e.extnID === id_ce_keyUsage) out.keyUsage = AsnConvert.parse(v, KeyUsage).toNumber();
    else if (e.extnID === id_ce_extKeyUsage) out.extKeyUsage = [...AsnConvert.parse(v, ExtendedKeyUsage)];
    else if (e.extnID === id_ce_nameConstraints) {
      const nc = AsnConvert.parse(v, NameConstraints);
      const subtrees = (list: GeneralSubtrees | undefined) =>
        (list ?? []).map((s) => ({
          base: generalNameOf(s.base),
          hasBounds: s.minimum !== 0 || s.maximum !== undefined,
        }));
      out.nameConstraints = {
        permitted: subtrees(nc.permittedSubtrees),
        excluded: subtrees(nc.excludedSubtrees),
      };
    } else if (e.extnID === id_ce_subjectAltName) {
      for (const name of AsnConvert.parse(v, SubjectAlternativeName)) {
        const g = generalNameOf(name);
        if (g.form === 'uri') out.uris.push(g.value as string);
        else if (g.form === 'dns') out.dnsNames.push(g.value as string);
        else if (g.form === 'ip') out.ipAddresses.push(g.value as string);
        else if (g.form === 'email') out.emails.push(g.value as string);
        else out.otherNames++;
      }
    }
  }
  return out;
}

/** The same fields, as the DER reader read them. */
function ours(der: Buffer) {
  const info = inspectCertificate(der);
  return {
    version: 2,
    serial: info.serial,
    sameAlgorithms: true,
    signatureAlgorithm: info.signatureAlgorithm,
    notBefore: info.notBefore,
    notAfter: info.notAfter,
    subjectRdns: info.subjectRdns,
    basicConstraints: info.basicConstraints,
    keyUsage: info.keyUsage,
    extKeyUsage: info.extKeyUsage,
    uris: info.uris,
    dnsNames: info.dnsNames,
    ipAddresses: info.ipAddresses,
    emails: info.emails,
    otherNames: info.otherNames,
    nameConstraints: info.nameConstraints,
    unknownCriticalExtensions: info.unknownCriticalExtensions,
  };
}

// asn1js spells an OID arc too large for a number as {hex of its bytes}: both sides show such an
// arc as *, the reader's decimal arcs of 2^53 and above too.
const plain = (v: unknown) =>
  JSON.parse(
    JSON.stringify(v, (_k, x) => (x === undefined ? null : x))
      .replace(/\{[0-9a-f]+\}/g, '*')
      .replace(/\{\* - 80\}/g, '*')
      .replace(/(?<=\.)\d{16,}(?=[."])/g, (arc) =>
        BigInt(arc) > BigInt(Number.MAX_SAFE_INTEGER) ? '*' : arc,
      ),
  );

function expectSameFields(der: Buffer): void {
  expect(plain(ours(der))).toEqual(plain(reference(der)));
  // subjectName, decoded on first use with the ASN.1 library, is the subject byte for byte.
  const info = inspectCertificate(der);
  expect(Buffer.from(AsnConvert.serialize(info.subjectName))).toEqual(
    Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.subject)),
  );
}

const san = (names: readonly GeneralName[]): Extension =>
  ext.raw(
    id_ce_subjectAltName,
    false,
    new Uint8Array(AsnConvert.serialize(new SubjectAlternativeName([...names]))),
  );

function constraints(
  permitted: readonly (GeneralName | GeneralSubtree)[],
  excluded: readonly (GeneralName | GeneralSubtree)[] = [],
): Extension {
  const subtrees = (list: readonly (GeneralName | GeneralSubtree)[]) =>
    new GeneralSubtrees(list.map((s) => (s instanceof GeneralSubtree ? s : new GeneralSubtree({ base: s }))));
  const nc = new NameConstraints({
    ...(permitted.length > 0 ? { permittedSubtrees: subtrees(permitted) } : {}),
    ...(excluded.length > 0 ? { excludedSubtrees: subtrees(excluded) } : {}),
  });
  return ext.raw(id_ce_nameConstraints, true, new Uint8Array(AsnConvert.serialize(nc)));
}

/** Certificates of every shape the project builds, DER. */
function corpus(): Buffer[] {
  const ders: Buffer[] = [];
  const ca = createTestCa({ trustDomain: 'example.org' });
  for (const kind of Object.keys(badSvidKinds) as BadSvidKind[]) {
    const bad = ca.issueBad(kind);
    ders.push(...bad.certificates.map((c) => c.raw));
    for (const bundle of bad.bundles.bundles()) ders.push(...bundle.authorities.map((c) => c.raw));
  }
  for (const keyType of ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const) {
    const local = createLocalCa({ trustDomain: 'cluster.local', intermediate: true, keyType });
    const svid = local.issue('/ns/demo/sa/web');
    ders.push(...svid.certificates.map((c) => c.raw));
    ders.push(...local.bundle().authorities.map((c) => c.raw));
  }
  const root = makeCa('der root', undefined, {
    pathLen: 3,
    extensions: [
      constraints(
        [
          new GeneralName({ uniformResourceIdentifier: 'cluster.local' }),
          new GeneralName({ dNSName: '.example.org' }),
          new GeneralName({ iPAddress: '10.0.0.0/8' }),
          new GeneralName({ iPAddress: '2001:db8::/32' }),
          new GeneralName({ rfc822Name: 'example.org' }),
          new GeneralName({ directoryName: buildName([['O', 'sidecarless test']]) }),
        ],
        [
          new GeneralName({ iPAddress: '0.0.0.0/0' }),
          new GeneralSubtree({ base: new GeneralName({ dNSName: 'a.example.org' }), minimum: 1, maximum: 4 }),
          new GeneralName({ registeredID: '1.2.3.4' }),
        ],
      ),
    ],
  });
  ders.push(root.der);
  const signer = root.signer;
  ders.push(
    makeLeaf(signer, {
      subject: [
        ['C', 'FR'],
        ['O', 'Ünïcode Org'],
        ['OU', 'a  b'],
        ['CN', 'leaf'],
        ['2.5.4.5', '12345'],
      ],
      san: san([
        new GeneralName({ uniformResourceIdentifier: 'spiffe://cluster.local/a' }),
        new GeneralName({ dNSName: 'a.example.org' }),
        new GeneralName({ iPAddress: '10.1.2.3' }),
        new GeneralName({ iPAddress: '2001:db8:0:0:1:0:0:1' }),
        new GeneralName({ iPAddress: '::1' }),
        new GeneralName({ rfc822Name: 'a@example.org' }),
        new GeneralName({
          otherName: new OtherName({
            typeId: '1.3.6.1.4.1.311.20.2.3',
            value: new Uint8Array([0x0c, 0x01, 0x61]).buffer,
          }),
        }),
        new GeneralName({ registeredID: '1.2.840.113549' }),
        new GeneralName({ directoryName: buildName([['CN', 'dir']]) }),
      ]),
      extensions: [ext.raw('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))],
      eku: ['1.3.6.1.5.5.7.3.2', '2.25.329800735698586629295641978511506172918'],
    }).der,
    makeLeaf(signer, { subject: [], uris: ['spiffe://cluster.local/empty-subject'], eku: null }).der,
    // GeneralizedTime from 2050 on.
    makeLeaf(signer, { uris: ['spiffe://cluster.local/late'], notAfter: Date.UTC(2051, 0, 2, 3, 4, 5) }).der,
  );
  // Over MAX_CERTIFICATE_BYTES (the id-too-long kind): refused before any parsing.
  return ders.filter((der) => der.length <= 16 * 1024);
}

describe('the DER certificate reader against @peculiar/asn1-x509', () => {
  const ders = corpus();

  it(`reads the same fields on ${ders.length} certificates of the test CA, the bad-SVID kinds, constraints and names`, () => {
    expect(ders.length).toBeGreaterThan(60);
    for (const der of ders) expectSameFields(der);
    // The corpus reaches what the comparison is about.
    const infos = ders.map((d) => inspectCertificate(d));
    expect(infos.some((i) => i.nameConstraints?.excluded.some((s) => s.hasBounds))).toBe(true);
    expect(infos.some((i) => i.otherNames >= 3 && i.ipAddresses.includes('2001:db8::1:0:0:1'))).toBe(true);
    expect(infos.some((i) => i.unknownCriticalExtensions.length > 0)).toBe(true);
    expect(infos.some((i) => i.notAfter === Date.UTC(2051, 0, 2, 3, 4, 5))).toBe(true);
    expect(infos.some((i) => i.subjectRdns.length === 0)).toBe(true);
  });

  describe.skipIf(skipWithout('openssl'))('certificates the openssl CLI issues', () => {
    const ossl = useOpensslDir();
    it('reads the same fields', () => {
      ossl.write(
        'ext.cnf',
        [
          '[v3]',
          'basicConstraints=critical,CA:TRUE,pathlen:0',
          'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
          'nameConstraints=critical,permitted;URI:cluster.local,permitted;IP:192.168.0.0/255.255.0.0,excluded;email:.bad.example,permitted;dirName:dir_sect',
          'subjectAltName=URI:spiffe://cluster.local/x,DNS:x.example,IP:192.168.1.1,email:x@example.org,otherName:1.2.3.4;UTF8:hello',
          'extendedKeyUsage=serverAuth,clientAuth,codeSigning',
          'certificatePolicies=1.2.3.4.5',
          '[dir_sect]',
          'O=sidecarless',
          'CN=dir',
        ].join('\n'),
      );
      for (const [i, key] of [
        ['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
        ['rsa', ['-newkey', 'rsa:2048']],
        ['ed', ['-newkey', 'ed25519']],
      ] as const) {
        ossl.run(
          'req',
          '-x509',
          ...key,
          '-nodes',
          '-keyout',
          `${i}.key`,
          '-out',
          `${i}.pem`,
          '-days',
          '30',
          '-subj',
          '/C=US/O=Open SSL/OU=x+CN=multi valued',
          '-config',
          'ext.cnf',
          '-extensions',
          'v3',
        );
        const der = new X509Certificate(ossl.read(`${i}.pem`)).raw;
        expectSameFields(der);
        expect(inspectCertificate(der).nameConstraints?.permitted.length).toBe(3);
        expect(inspectCertificate(der).subjectRdns[2]?.length).toBe(2);
      }
    });
  });

  it('accepts no mutated certificate the reference refuses, and reads the same fields of those it accepts', () => {
    const seeds = [ders[0], ders.at(-3), ders.find((d) => inspectCertificate(d).nameConstraints)] as Buffer[];
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(
          fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        (seed, edits) => {
          let der = Buffer.from(seed);
          for (const [at, byte, op] of edits) {
            const i = at % der.length;
            if (op === 'set') der[i] = byte;
            else if (op === 'cut') der = Buffer.concat([der.subarray(0, i), der.subarray(i + 1)]);
            else der = Buffer.concat([der.subarray(0, i), Buffer.from([byte]), der.subarray(i)]);
          }
          let read: ReturnType<typeof ours>;
          try {
            read = ours(der);
          } catch (err) {
            if (!isSidecarlessError(err)) throw err;
            return;
          }
          accepted++;
          expect(plain(read)).toEqual(plain(reference(der)));
        },
      ),
      {
        numRuns: Number(process.env.DER_FUZZ_RUNS ?? 3000),
        seed: process.env.DER_FUZZ_SEED === undefined ? 14 : Number(process.env.DER_FUZZ_SEED),
      },
    );
    // Mutations of the signature, the key or a value's bytes keep a certificate readable.
    expect(accepted).toBeGreaterThan(100);
    clearCertificateMemo();
  });
});

describe('src/x509/der.ts', () => {
  const refused: [string, string][] = [
    ['indefinite length', '3080'],
    ['length with a leading zero', '30820005'],
    ['long form under 128', `308105${'00'.repeat(5)}`],
    ['length past the end', '3003020101'.slice(0, 8)],
    ['multi-byte tag', '1f2101'],
    ['end-of-contents', '0000'],
    ['truncated', '30'],
  ];
  it.each(refused)('refuses %s', (_name, hex) => {
    expect(() => readOnly(Buffer.from(hex, 'hex'))).toThrow(DerError);
  });

  it('refuses trailing bytes, non-minimal integers and OIDs, bad times and BIT STRINGs', () => {
    expect(() => readOnly(Buffer.from('05000500', 'hex'))).toThrow(/trailing/);
    expect(() => readSmallInteger(readOnly(Buffer.from('02020001', 'hex')))).toThrow(/minimal/);
    expect(() => readSmallInteger(readOnly(Buffer.from('0202ff80', 'hex')))).toThrow(/minimal/);
    expect(readSmallInteger(readOnly(Buffer.from('0202ff7f', 'hex')))).toBe(-129);
    expect(() => readOid(readOnly(Buffer.from('0603808101', 'hex')))).toThrow(/leading zero/);
    expect(() => readOid(readOnly(Buffer.from('060181', 'hex')))).toThrow(/truncated/);
    for (const [tag, text] of [
      [TAG.utcTime, '2601011200Z'],
      [TAG.utcTime, '260101120000+0100'],
      [TAG.utcTime, '261301120000Z'],
      [TAG.utcTime, '260230120000Z'],
      [TAG.generalizedTime, '20260101120000.5Z'],
      [TAG.generalizedTime, '260101120000Z'],
      [TAG.octetString, '260101120000Z'],
    ] as const) {
      expect(() => readTime(readElement(encodeElement(tag, Buffer.from(text)), 0))).toThrow(DerError);
    }
    expect(readTime(readOnly(encodeElement(TAG.utcTime, Buffer.from('491231235959Z'))))).toBe(
      Date.UTC(2049, 11, 31, 23, 59, 59),
    );
    expect(readTime(readOnly(encodeElement(TAG.utcTime, Buffer.from('500101000000Z'))))).toBe(
      Date.UTC(1950, 0, 1),
    );
    expect(() => readBitFlags(readOnly(Buffer.from('030108', 'hex')))).toThrow(/unused/);
    expect(() => readBitFlags(readOnly(Buffer.from('03020880', 'hex')))).toThrow(/unused/);
  });

  it('reads keyUsage bits as KeyUsage.toNumber() does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 511 }), (flags) => {
        const der = Buffer.from(AsnConvert.serialize(new KeyUsage(flags)));
        expect(readBitFlags(readOnly(der))).toBe(AsnConvert.parse(der, KeyUsage).toNumber());
      }),
    );
    // No bit set: 0 (toNumber() gives NaN; either way no flag tests true).
    expect(readBitFlags(readOnly(Buffer.from('030100', 'hex')))).toBe(0);
  });

  it('writes and reads OIDs, arcs of any size, and times on both sides of 2050', () => {
    for (const oid of [
      '2.5.29.19',
      '0.9.2342.19200300.100.1.25',
      '2.25.329800735698586629295641978511506172918',
      '1.2.840.113549.1.1.11',
      '2.999.3',
    ]) {
      expect(readOid(readOnly(encodeOid(oid)))).toBe(oid);
    }
    for (const ms of [
      Date.UTC(1950, 0, 1),
      Date.UTC(2049, 11, 31, 23, 59, 59),
      Date.UTC(2050, 0, 1),
      Date.UTC(2126, 5, 7, 8, 9, 10),
    ]) {
      expect(readTime(readOnly(encodeTime(new Date(ms))))).toBe(ms);
    }
  });

  it('shows IP addresses and masks as @peculiar/asn1-x509 does', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 4, maxLength: 4 }),
          fc.uint8Array({ minLength: 16, maxLength: 16 }),
          fc
            .array(fc.constantFrom(0, 1, 0xff), { minLength: 16, maxLength: 16 })
            .map((a) => Uint8Array.from(a)),
          fc.uint8Array({ minLength: 8, maxLength: 8 }),
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.uint8Array({ minLength: 0, maxLength: 40 }),
        ),
        (bytes) => {
          const asIp = AsnConvert.parse(encodeElement(0x87, bytes), GeneralName);
          expect(ipToString(Buffer.from(bytes))).toBe(asIp.iPAddress);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
