import type { KeyObject, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  createLocalCa,
  type ErrorCode,
  type X509Svid as Svid,
  verifyPeerChain,
  X509Svid,
} from '../../src/index.js';
import { type BadSvidKind, badSvidKinds, createTestCa } from '../../src/testing/index.js';
import { HOUR, makeCa, makeLeaf, rootSigner } from '../helpers/certs.js';
import { expectCode } from '../helpers/expect-code.js';

const TD = 'cluster.local';
const ca = createLocalCa({ trustDomain: TD, intermediate: true });
const svid = ca.issue('/ns/demo/sa/web', { hint: 'internal' });
const fingerprints = (s: Svid) => s.certificates.map((c) => c.fingerprint256);

describe('X509Svid.parse certificate chain forms', () => {
  const [leaf, intermediate] = svid.certificates as [X509Certificate, X509Certificate];
  const forms: [string, Parameters<typeof X509Svid.parse>[0]][] = [
    ['PEM text', svid.certChainPem()],
    ['PEM bytes', Buffer.from(svid.certChainPem())],
    ['concatenated DER', Buffer.concat(svid.certChainDer())],
    ['an array of X509Certificate', [leaf, intermediate]],
    ['an array of DER buffers', svid.certChainDer()],
    ['an array of PEM strings', [leaf.toString(), intermediate.toString()]],
    ['a mixed array', [leaf.raw, intermediate]],
  ];
  for (const [name, chain] of forms) {
    it(`reads ${name}`, () => {
      const parsed = X509Svid.parse(chain, svid.privateKey);
      expect(fingerprints(parsed)).toEqual(fingerprints(svid));
      expect(parsed.id.equals(svid.id)).toBe(true);
    });
  }

  it('reads a leaf alone', () => {
    const single = createLocalCa({ trustDomain: TD }).issue('/solo');
    const parsed = X509Svid.parse(single.leaf.raw, single.privateKey);
    expect(parsed.intermediates).toEqual([]);
    expect(parsed.certificates).toHaveLength(1);
  });

  it('refuses undecodable chains', () => {
    expectCode(() => X509Svid.parse('not pem', svid.privateKey), 'ERR_PEM_INVALID');
    expectCode(() => X509Svid.parse(Buffer.from('not der'), svid.privateKey), 'ERR_CERTIFICATE_INVALID');
    expectCode(() => X509Svid.parse([], svid.privateKey), 'ERR_CERTIFICATE_INVALID');
    const keyInChain =
      svid.certChainPem() + (svid.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const err = expectCode(() => X509Svid.parse(keyInChain, svid.privateKey), 'ERR_PEM_INVALID');
    expect(err.message).toContain('found "PRIVATE KEY"');
    const named = expectCode(
      () => X509Svid.parse('nope', svid.privateKey, { source: 'cert.pem' }),
      'ERR_PEM_INVALID',
    );
    expect(named.message).toContain('cert.pem');
  });
});

describe('X509Svid.parse chain order', () => {
  const upper = makeCa('upper', rootSigner(ca));
  const lower = makeCa('lower', upper.signer);
  const leaf = makeLeaf(lower.signer, { uris: [`spiffe://${TD}/deep`] });

  it('accepts each certificate followed by its issuer (control)', () => {
    const parsed = X509Svid.parse([leaf.der, lower.der, upper.der], leaf.key);
    expect(parsed.intermediates.map((c) => c.subject)).toEqual([lower.x509.subject, upper.x509.subject]);
  });

  it('refuses intermediates in the wrong order, naming the one out of place', () => {
    const err = expectCode(
      () => X509Svid.parse([leaf.der, upper.der, lower.der], leaf.key),
      'ERR_SVID_CHAIN_ORDER',
    );
    expect(err.detail.index).toBe(1);
    expect(err.detail.certificate).toContain(upper.x509.serialNumber.toUpperCase());
  });

  it('refuses a chain given intermediate first', () => {
    const reversed = [...svid.certificates].reverse();
    const err = expectCode(() => X509Svid.parse(reversed, svid.privateKey), 'ERR_SVID_CHAIN_ORDER');
    expect(err.message).toContain('leaf first');
    expectCode(() => X509Svid.parse([upper.der, lower.der, leaf.der], leaf.key), 'ERR_SVID_CHAIN_ORDER');
  });

  it('refuses a certificate that is not the issuer', () => {
    const stranger = makeCa('stranger', rootSigner(ca));
    expectCode(() => X509Svid.parse([leaf.der, stranger.der], leaf.key), 'ERR_SVID_CHAIN_ORDER');
  });
});

describe('X509Svid.parse refuses leaves that break the SVID profile', () => {
  // What X509Svid checks on its own (no bundle, no clock): the leaf profile and the chain shape.
  const profileCodes = new Set<ErrorCode>([
    'ERR_SVID_NO_URI_SAN',
    'ERR_SVID_MULTIPLE_URI_SANS',
    'ERR_SVID_ID_INVALID',
    'ERR_SVID_ID_NO_PATH',
    'ERR_SVID_LEAF_IS_CA',
    'ERR_SVID_NO_KEY_USAGE',
    'ERR_SVID_NO_DIGITAL_SIGNATURE',
    'ERR_SVID_LEAF_KEY_CERT_SIGN',
    'ERR_SVID_LEAF_CRL_SIGN',
    'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION',
    'ERR_SVID_WEAK_KEY',
    'ERR_SVID_CHAIN_ORDER',
    'ERR_SVID_SIGNER_NOT_CA',
    'ERR_SVID_SIGNER_NO_KEY_CERT_SIGN',
    'ERR_SVID_CERTIFICATE_TOO_LARGE',
  ]);
  const testCa = createTestCa({ trustDomain: TD });
  const kinds = (Object.keys(badSvidKinds) as BadSvidKind[]).filter((k) =>
    profileCodes.has(badSvidKinds[k].code),
  );
  for (const kind of kinds) {
    it(`${kind}: ${badSvidKinds[kind].code}`, () => {
      const bad = testCa.issueBad(kind);
      expectCode(() => X509Svid.parse(bad.certChainPem(), bad.privateKeyPem()), bad.code);
      const good = testCa.issue('/ns/test/sa/bad');
      expect(X509Svid.parse(good.certChainPem(), good.privateKey).id.equals(good.id)).toBe(true);
    });
  }
});

describe('X509Svid accessors', () => {
  it('exposes leaf, intermediates, validity and hint', () => {
    const parsed = X509Svid.parse(svid.certChainDer(), svid.privateKey, { hint: 'external' });
    expect(parsed.leaf.raw.equals(svid.leaf.raw)).toBe(true);
    expect(parsed.intermediates.map((c) => c.fingerprint256)).toEqual([svid.certificates[1]?.fingerprint256]);
    expect(parsed.notBefore.getTime()).toBe(new Date(svid.leaf.validFrom).getTime());
    expect(parsed.notAfter.getTime()).toBe(
      Math.min(...svid.certificates.map((c) => new Date(c.validTo).getTime())),
    );
    expect(parsed.hint).toBe('external');
    expect(X509Svid.parse(svid.certChainDer(), svid.privateKey).hint).toBeUndefined();
    expect(svid.hint).toBe('internal');
    expect(parsed.certChainPem()).toBe(svid.certChainPem());
    expect(parsed.certChainDer().map((d) => d.toString('hex'))).toEqual(
      svid.certificates.map((c) => c.raw.toString('hex')),
    );
    expect(Object.isFrozen(parsed) && Object.isFrozen(parsed.certificates)).toBe(true);
    expectCode(
      () => X509Svid.parse(svid.certChainPem(), svid.privateKey, { hint: 7 as unknown as string }),
      'ERR_OPTION_INVALID',
    );
  });

  it('notAfter is the earliest in the chain, not the leaf', () => {
    const shortLived = makeCa('short-lived', rootSigner(ca), { notAfter: Date.now() + HOUR / 2 });
    const leaf = makeLeaf(shortLived.signer, { uris: [`spiffe://${TD}/x`], notAfter: Date.now() + HOUR });
    const parsed = X509Svid.parse([leaf.der, shortLived.der], leaf.key);
    expect(parsed.notAfter.getTime()).toBe(new Date(shortLived.x509.validTo).getTime());
  });

  it('toJSON() is a summary: id, notAfter, serial, hint', () => {
    expect(svid.toJSON()).toEqual({
      id: `spiffe://${TD}/ns/demo/sa/web`,
      notAfter: svid.notAfter.toISOString(),
      serial: svid.leaf.serialNumber,
      hint: 'internal',
    });
    expect(verifyPeerChain(svid.certificates, ca.bundles()).id.equals(svid.id)).toBe(true);
  });
});

describe('X509Svid never shows its private key', () => {
  const keyTypes = ['ec-p256', 'rsa-2048', 'ed25519'] as const;
  for (const keyType of keyTypes) {
    it(`${keyType}: inspect() and JSON.stringify() carry no key material`, () => {
      const s = ca.issue('/ns/demo/sa/secret', { keyType });
      const outputs = [
        inspect(s),
        inspect(s, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
        inspect({ nested: { s } }),
        JSON.stringify(s),
        JSON.stringify({ s }),
        String(Object.keys(s)),
      ];
      expect(outputs[0]).toContain(s.id.toString());
      for (const text of outputs) expectNoKey(text, s.privateKey);
    });
  }
});

function expectNoKey(text: string, key: KeyObject): void {
  const body = (key.export({ format: 'pem', type: 'pkcs8' }) as string).replace(/-----[^-]+-----|\s/g, '');
  const hex = (key.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('hex');
  const d = String((key.export({ format: 'jwk' }) as { d?: string }).d);
  expect(text).not.toContain('PRIVATE KEY');
  expect(text).not.toContain(d.slice(0, 16));
  for (let i = 0; i + 16 <= body.length; i += 8) expect(text).not.toContain(body.slice(i, i + 16));
  for (let i = 0; i + 16 <= hex.length; i += 8)
    expect(text.toLowerCase()).not.toContain(hex.slice(i, i + 16));
}

describe('X509Svid.parse: follow-up rules', () => {
  const ca = createTestCa();

  it('refuses a SHA-1-signed leaf even without intermediates (the issuer is in the bundle)', () => {
    const bad = ca.issueBad('sha1-signature');
    expectCode(() => X509Svid.parse(bad.certificates, bad.privateKey), 'ERR_SVID_WEAK_ALGORITHM');
  });

  it('gives ERR_SVID_CHAIN_TOO_LONG for a chain over the limit, as verifyPeerChain does', () => {
    const bad = ca.issueBad('chain-too-long');
    expectCode(() => X509Svid.parse(bad.certificates, bad.privateKey), 'ERR_SVID_CHAIN_TOO_LONG');
  });

  it('accepts PEM with explanatory text before the first block (OpenSSL subject= lines)', () => {
    const svid = ca.issue('/ns/demo/sa/text');
    const pem = `subject=O = sidecarless\nissuer=O = sidecarless\n${svid.certChainPem()}`;
    expect(X509Svid.parse(pem, svid.privateKey).id.equals(svid.id)).toBe(true);
    expect(X509Svid.parse(Buffer.from(pem), svid.privateKey).id.equals(svid.id)).toBe(true);
  });
});
