// Trust-anchor hygiene (issue 9 item 6): bad authorities are refused when a bundle is built.
import { generateKeyPairSync, type KeyObject, type X509Certificate } from 'node:crypto';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { X509Bundle } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { buildCertificate, buildName, ext } from '../../src/x509/build.js';

const HOUR = 3_600_000;

function root(spec: { cA?: boolean; ku?: number | 'absent'; rsa1024?: boolean }): Buffer {
  const keys: { privateKey: KeyObject; publicKey: KeyObject } = spec.rsa1024
    ? generateKeyPairSync('rsa', { modulusLength: 1024 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = buildName([['CN', 'hygiene root']]);
  const extensions = [ext.basicConstraints(spec.cA ?? true)];
  if (spec.ku !== 'absent') extensions.push(ext.keyUsage(spec.ku ?? KeyUsageFlags.keyCertSign));
  return buildCertificate({
    subject: name,
    issuer: name,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + HOUR),
    extensions,
  });
}

describe('X509Bundle refuses bad authorities', () => {
  it.each([
    ['without keyUsage', { ku: 'absent' as const }, /no keyUsage/],
    ['with keyUsage lacking keyCertSign', { ku: KeyUsageFlags.digitalSignature }, /without keyCertSign/],
    ['with cA=false', { cA: false }, /not a CA/],
    ['with an RSA-1024 key', { rsa1024: true }, /RSA key of 1024 bits/],
  ])('an authority %s: ERR_BUNDLE_INVALID naming it', (_name, spec, rule) => {
    const der = root(spec);
    for (const build of [() => X509Bundle.fromCertificates('td', der), () => X509Bundle.parse('td', der)]) {
      expect(build).toThrow(
        expect.objectContaining({
          code: 'ERR_BUNDLE_INVALID',
          detail: expect.objectContaining({ index: 0 }),
        }),
      );
      expect(build).toThrow(rule);
    }
  });

  it('an authority with explicit curve parameters: ERR_SVID_EXPLICIT_CURVE', () => {
    const bad = createTestCa().issueBad('intermediate-explicit-curve');
    const intermediate = bad.certificates[1] as X509Certificate;
    expect(() => X509Bundle.fromCertificates('cluster.local', intermediate)).toThrow(
      expect.objectContaining({ code: 'ERR_SVID_EXPLICIT_CURVE' }),
    );
  });

  it('control: a good authority loads', () => {
    expect(X509Bundle.fromCertificates('td', root({})).authorities).toHaveLength(1);
  });
});
