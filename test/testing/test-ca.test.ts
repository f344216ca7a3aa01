import { createPublicKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { isSidecarlessError, verifyPeerChain, X509Svid } from '../../src/index.js';
import {
  type BadSvidKind,
  badSvidKinds,
  createTestCa,
  type TestCa,
  type TestCaOptions,
} from '../../src/testing/index.js';
import { thrownBy } from '../helpers/expect-code.js';
import { assertNoKeyMaterial } from '../helpers/key-material.js';

const cas: TestCa[] = [];
function newTestCa(options?: TestCaOptions): TestCa {
  const ca = createTestCa(options);
  cas.push(ca);
  return ca;
}
afterAll(async () => {
  await Promise.all(cas.map((ca) => ca.close()));
});

const KINDS = Object.keys(badSvidKinds) as BadSvidKind[];

describe('createTestCa', () => {
  it('defaults to trust domain cluster.local and issues SVIDs that verify', () => {
    const ca = newTestCa();
    expect(ca.trustDomain.name).toBe('cluster.local');
    const svid = ca.issue('/ns/demo/sa/boards');
    expect(verifyPeerChain(svid.certificates, ca.bundles()).id.toString()).toBe(
      'spiffe://cluster.local/ns/demo/sa/boards',
    );
    expect(ca.bundle().trustDomain.name).toBe('cluster.local');
  });

  it('takes the LocalCa options it documents', async () => {
    const ca = newTestCa({ trustDomain: 'example.org', intermediate: true, ttl: 60_000, keyType: 'ec-p384' });
    const svid = ca.issue('/web');
    expect(svid.id.toString()).toBe('spiffe://example.org/web');
    expect(svid.certificates).toHaveLength(2);
    expect(svid.privateKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(svid.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(61_000);
    const identity = ca.identity('/web');
    await expect(identity.ready()).resolves.toMatchObject({ generation: 1 });
    ca.rotateRoot();
    expect(verifyPeerChain(identity.current().svid.certificates, ca.bundles()).id.toString()).toBe(
      'spiffe://example.org/web',
    );
  });

  it('refuses unknown options, including "root"', () => {
    for (const key of ['root', 'trustdomain']) {
      const err = thrownBy(() => createTestCa({ [key]: 'x' } as TestCaOptions), 'ERR_OPTION_INVALID');
      expect(err.detail.field).toBe(key);
    }
    thrownBy(() => createTestCa(null as unknown as TestCaOptions), 'ERR_OPTION_INVALID');
  });

  it('is frozen, inspects as TestCa(…), and closes', async () => {
    const ca = createTestCa();
    expect(Object.isFrozen(ca)).toBe(true);
    expect(inspect(ca)).toBe('TestCa(cluster.local)');
    const identity = ca.identity('/a');
    await ca[Symbol.asyncDispose]();
    thrownBy(() => identity.current(), 'ERR_NO_IDENTITY');
    thrownBy(() => ca.issue('/a'), 'ERR_SOURCE_CLOSED');
  });

  it('issueBad refuses an unknown kind with ERR_OPTION_INVALID', () => {
    const ca = newTestCa();
    for (const kind of ['expird', 'toString', '__proto__', 'constructor', '']) {
      const err = thrownBy(() => ca.issueBad(kind as BadSvidKind), 'ERR_OPTION_INVALID');
      expect(err.detail.field).toBe('kind');
    }
  });
});

describe('createTestCa: issueBad', () => {
  const ca = newTestCa();
  // Control: a good SVID of the same CA passes, so a broken factory cannot fake a refusal.
  const good = ca.issue('/ns/test/sa/good');

  for (const kind of KINDS) {
    it(`${kind}: is refused with its code and usable by node:tls`, () => {
      const bad = ca.issueBad(kind);
      expect(bad.kind).toBe(kind);
      expect(bad.code).toBe(badSvidKinds[kind].code);
      expect(bad.description).toBe(badSvidKinds[kind].description);
      expect(Object.isFrozen(bad)).toBe(true);
      expect(Object.isFrozen(bad.certificates)).toBe(true);

      let code: string | undefined;
      try {
        verifyPeerChain(bad.certificates, bad.bundles);
      } catch (err) {
        if (!isSidecarlessError(err)) throw err;
        code = err.code;
      }
      expect(code).toBe(bad.code);
      if (bad.bundles.get('cluster.local')?.equals(ca.bundle())) {
        expect(verifyPeerChain(good.certificates, bad.bundles).id.equals(good.id)).toBe(true);
      }

      // The PEM forms hold the same chain and the leaf's key.
      const pem = bad.certChainPem();
      const fromPem = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      expect(fromPem.map((p) => new X509Certificate(p).raw.toString('base64'))).toEqual(
        bad.certificates.map((c) => c.raw.toString('base64')),
      );
      const keyPem = bad.privateKeyPem();
      expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(createPublicKey(keyPem).equals(bad.certificates[0]?.publicKey as never)).toBe(true);
      expect(bad.privateKey.type).toBe('private');

      // node:tls takes them (a TLS client or server presenting the bad chain).
      if (bad.privateKey.asymmetricKeyType === 'ec') {
        // OpenSSL 3 refuses to load a SHA-1-signed certificate at its default security level;
        // a test presenting one has to lower it, as this does.
        const ciphers = kind === 'sha1-signature' ? { ciphers: 'DEFAULT:@SECLEVEL=0' } : {};
        expect(() => createSecureContext({ cert: pem, key: keyPem, ...ciphers })).not.toThrow();
      }

      // inspect() never shows the key.
      const shown = inspect(bad, { depth: 10, showHidden: true });
      expect(shown).toBe(`BadSvid(${kind}: ${bad.description}; expect ${bad.code})`);
      assertNoKeyMaterial(shown, [bad.privateKey], `inspect(${kind})`);
      assertNoKeyMaterial(JSON.stringify(bad), [bad.privateKey], `JSON.stringify(${kind})`);
    });
  }

  it('puts the given path in the leaf', () => {
    const bad = ca.issueBad('leaf-is-ca', '/ns/custom/sa/x');
    expect(bad.certificates[0]?.subjectAltName).toBe('URI:spiffe://cluster.local/ns/custom/sa/x');
  });

  it('builds chains under an intermediate CA too', () => {
    const withIntermediate = newTestCa({ intermediate: true });
    for (const kind of ['leaf-is-ca', 'expired', 'chain-order'] as const) {
      const bad = withIntermediate.issueBad(kind);
      expect(() => verifyPeerChain(bad.certificates, bad.bundles)).toThrow(
        expect.objectContaining({ code: bad.code }),
      );
    }
  });

  it('the chain of a profile-breaking kind cannot even be loaded as an SVID', () => {
    const bad = ca.issueBad('leaf-is-ca');
    thrownBy(() => X509Svid.parse(bad.certChainPem(), bad.privateKeyPem()), 'ERR_SVID_LEAF_IS_CA');
  });
});
