// The empty CRL a server's TLS context carries (src/tls/material.ts), written by src/x509/crl.ts
// with the DER writer: read back by @peculiar/asn1-x509 and by the openssl CLI, its signature
// verified, and given to a real TLS context.

import { generateKeyPairSync, verify } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList, Version } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { noMatchCrlPem } from '../../src/tls/material.js';
import { buildEmptyCrlDer } from '../../src/x509/crl.js';
import { decodePem } from '../../src/x509/pem.js';
import { useOpensslDir } from '../helpers/openssl.js';
import { skipWithout } from '../helpers/programs.js';

describe('the empty CRL, written in DER', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const thisUpdate = new Date(Date.UTC(2026, 11, 7, 9, 0, 0));
  const nextUpdate = new Date(Date.UTC(2126, 11, 7, 9, 0, 0));
  const der = buildEmptyCrlDer(
    [
      ['O', 'sidecarless'],
      ['CN', 'no CRL issuer é'],
    ],
    privateKey,
    thisUpdate,
    nextUpdate,
  );

  it('is a v2 CertificateList with the issuer, the times and no entries, signed by the key', () => {
    const crl = AsnConvert.parse(der, CertificateList);
    const tbs = crl.tbsCertList;
    expect(tbs.version).toBe(Version.v2);
    expect(tbs.signature.algorithm).toBe('1.2.840.10045.4.3.2');
    expect(crl.signatureAlgorithm.algorithm).toBe('1.2.840.10045.4.3.2');
    expect(tbs.issuer.map((rdn) => rdn.map((a) => [a.type, a.value.toString()]))).toEqual([
      [['2.5.4.10', 'sidecarless']],
      [['2.5.4.3', 'no CRL issuer é']],
    ]);
    // UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §5.1.2.4).
    expect(tbs.thisUpdate.utcTime?.getTime()).toBe(thisUpdate.getTime());
    expect(tbs.nextUpdate?.generalTime?.getTime()).toBe(nextUpdate.getTime());
    expect(tbs.revokedCertificates ?? []).toEqual([]);
    expect(tbs.crlExtensions).toBeUndefined();
    // The bytes signed are the TBS as written.
    const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
    expect(der.includes(tbsDer)).toBe(true);
    expect(verify('sha256', tbsDer, publicKey, Buffer.from(crl.signature))).toBe(true);
    expect(Buffer.from(AsnConvert.serialize(crl))).toEqual(der);
  });

  it('is what a server context is given, and OpenSSL loads it', () => {
    const pem = noMatchCrlPem();
    expect(decodePem(pem, 'crl').map((b) => b.label)).toEqual(['X509 CRL']);
    expect(() => createSecureContext({ crl: pem })).not.toThrow();
    expect(() => createSecureContext({ crl: 'not a crl' })).toThrow();
  });

  describe.skipIf(skipWithout('openssl'))('the openssl CLI', () => {
    const ossl = useOpensslDir();
    it('reads it', () => {
      ossl.write('crl.der', der);
      const text = ossl.run('crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-text');
      expect(text).toMatch(/Version 2/);
      expect(text).toMatch(/Issuer: O ?= ?sidecarless, CN ?= ?no CRL issuer/);
      expect(text).toMatch(/Last Update: Dec {2}7 09:00:00 2026 GMT/);
      expect(text).toMatch(/Next Update: Dec {2}7 09:00:00 2126 GMT/);
      expect(text).toMatch(/No Revoked Certificates/);
    });
  });
});
