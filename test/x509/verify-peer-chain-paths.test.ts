import { randomBytes, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { createLocalCa, MAX_CHAIN_LENGTH, verifyPeerChain, X509Bundle, X509Svid } from '../../src/index.js';
import { ext } from '../../src/x509/build.js';
import { type Built, makeCa, makeLeaf, rootSigner } from '../helpers/certs.js';
import { expectCode } from '../helpers/expect-code.js';

const TD = 'cluster.local';

describe('verifyPeerChain input shape', () => {
  const ca = createLocalCa({ trustDomain: TD });

  it('refuses an empty chain', () => {
    expectCode(() => verifyPeerChain([], ca.bundles()), 'ERR_SVID_CHAIN_EMPTY');
  });

  it('refuses bytes that are not a certificate, naming their position', () => {
    const good = ca.issue('/x');
    expect(verifyPeerChain(good.certificates, ca.bundles()).id.equals(good.id)).toBe(true);
    for (const garbage of [Buffer.from('not a certificate'), randomBytes(600), Buffer.alloc(0)]) {
      const err = expectCode(() => verifyPeerChain([garbage], ca.bundles()), 'ERR_CERTIFICATE_INVALID');
      expect(err.detail.index).toBe(0);
    }
    const second = expectCode(
      () => verifyPeerChain([good.leaf.raw, Buffer.from('junk')], ca.bundles()),
      'ERR_CERTIFICATE_INVALID',
    );
    expect(second.detail.index).toBe(1);
    // What is neither bytes nor an X509Certificate (a PEM string, say) gets the same code.
    const pem = expectCode(
      () => verifyPeerChain([good.leaf.toString() as unknown as Uint8Array], ca.bundles()),
      'ERR_CERTIFICATE_INVALID',
    );
    expect(pem.message).toContain('DER bytes or an X509Certificate');
    // A certificate followed by trailing bytes is not a certificate either.
    expectCode(
      () => verifyPeerChain([Buffer.concat([good.leaf.raw, Buffer.from([0])])], ca.bundles()),
      'ERR_CERTIFICATE_INVALID',
    );
  });
});

describe('verifyPeerChain subject names', () => {
  it('accepts a leaf with an empty subject (RFC 5280 §4.1.2.6: the SAN is then critical)', () => {
    const ca = createLocalCa({ trustDomain: TD });
    const leaf = makeLeaf(rootSigner(ca), {
      subject: [],
      san: ext.subjectAltName({ uris: [`spiffe://${TD}/anonymous`] }, true),
    });
    // The library's view of the name, not Node's (undefined before 24.22.3, '' since).
    expect(AsnConvert.parse(leaf.der, Certificate).tbsCertificate.subject).toHaveLength(0);
    const result = verifyPeerChain([leaf.der], ca.bundles());
    expect(result.id.path).toBe('/anonymous');
    expect(X509Svid.parse(leaf.der, leaf.key).id.equals(result.id)).toBe(true);
  });
});

describe('verifyPeerChain chain length', () => {
  // One root (no pathLen) and seven intermediates under it, none with a pathLen.
  const ca = createLocalCa({ trustDomain: TD });
  const root = ca.bundle().authorities[0] as X509Certificate;
  const levels: Built[] = [];
  for (let level = 1; level <= 7; level++) {
    levels.push(makeCa(`level ${level}`, levels[level - 2]?.signer ?? rootSigner(ca)));
  }
  const chainOf = (depth: number) => {
    const upper = levels.slice(0, depth);
    const leaf = makeLeaf((upper[upper.length - 1] as Built).signer, { uris: [`spiffe://${TD}/deep`] });
    return [leaf.der, ...upper.map((c) => c.der).reverse()];
  };

  it(`accepts exactly ${MAX_CHAIN_LENGTH} presented certificates (leaf, 6 intermediates, root)`, () => {
    const presented = [...chainOf(6), root.raw];
    expect(presented).toHaveLength(MAX_CHAIN_LENGTH);
    expect(verifyPeerChain(presented, ca.bundles()).verifiedChain).toHaveLength(8);
  });

  it(`accepts ${MAX_CHAIN_LENGTH} presented certificates without the root (a 9-certificate path)`, () => {
    const presented = chainOf(7);
    expect(presented).toHaveLength(MAX_CHAIN_LENGTH);
    expect(verifyPeerChain(presented, ca.bundles()).verifiedChain).toHaveLength(9);
  });

  it(`refuses ${MAX_CHAIN_LENGTH + 1} presented certificates, naming the limit`, () => {
    const presented = [...chainOf(7), root.raw];
    expect(presented).toHaveLength(MAX_CHAIN_LENGTH + 1);
    const err = expectCode(() => verifyPeerChain(presented, ca.bundles()), 'ERR_SVID_CHAIN_TOO_LONG');
    expect(err.message).toContain(`limit is ${MAX_CHAIN_LENGTH}`);
    expect(err.detail.index).toBe(MAX_CHAIN_LENGTH);
    // Refused on the count alone: nine garbage entries get the same answer without a parse.
    const junk = Array.from({ length: MAX_CHAIN_LENGTH + 1 }, () => Buffer.from('junk'));
    expectCode(() => verifyPeerChain(junk, ca.bundles()), 'ERR_SVID_CHAIN_TOO_LONG');
  });
});

describe('verifyPeerChain root rotation', () => {
  it('accepts leaves of both roots of one trust domain, though the roots share a subject name', () => {
    const first = createLocalCa({ trustDomain: TD });
    const second = createLocalCa({ trustDomain: TD, intermediate: true });
    const [rootA, rootB] = [
      first.bundle().authorities[0],
      second.bundle().authorities[0],
    ] as X509Certificate[];
    expect(rootA?.subject).toBe(rootB?.subject);
    const bundle = X509Bundle.fromCertificates(TD, [
      ...first.bundle().authorities,
      ...second.bundle().authorities,
    ]);
    expect(bundle.authorities).toHaveLength(2);
    for (const ca of [first, second]) {
      const svid = ca.issue('/svc');
      expect(verifyPeerChain(svid.certificates, bundle).id.equals(svid.id)).toBe(true);
    }
    // Control: each root alone trusts only its own leaves.
    expectCode(
      () => verifyPeerChain(second.issue('/svc').certificates, first.bundle()),
      'ERR_SVID_UNTRUSTED',
    );
    expectCode(
      () => verifyPeerChain(first.issue('/svc').certificates, second.bundle()),
      'ERR_SVID_UNTRUSTED',
    );
  });

  it("does not trust a presented root that merely shares the trusted root's name", () => {
    const ours = createLocalCa({ trustDomain: TD });
    const impostor = createLocalCa({ trustDomain: TD });
    const impostorRoot = impostor.bundle().authorities[0] as X509Certificate;
    expect(impostorRoot.subject).toBe(ours.bundle().authorities[0]?.subject);
    const svid = impostor.issue('/svc');
    expectCode(
      () => verifyPeerChain([...svid.certificates, impostorRoot], ours.bundles()),
      'ERR_SVID_UNTRUSTED',
    );
    expect(verifyPeerChain([...svid.certificates, impostorRoot], impostor.bundles()).id.equals(svid.id)).toBe(
      true,
    );
  });

  it("accepts SVIDs of the old and the new root after the CA's rotateRoot()", () => {
    const ca = createLocalCa({ trustDomain: TD, intermediate: true });
    const before = ca.issue('/svc');
    ca.rotateRoot();
    const after = ca.issue('/svc');
    expect(ca.bundle().authorities).toHaveLength(2);
    for (const svid of [before, after]) {
      expect(verifyPeerChain(svid.certificates, ca.bundles()).id.equals(svid.id)).toBe(true);
    }
  });
});

describe('verifyPeerChain name constraints', () => {
  const ca = createLocalCa({ trustDomain: TD });
  const leafUnder = (intermediate: Built, id: string) =>
    [makeLeaf(intermediate.signer, { uris: [id] }).der, intermediate.der] as const;

  it('accepts leaves inside a permitted URI subtree and refuses others', () => {
    const constrained = makeCa('permits cluster.local', rootSigner(ca), {
      extensions: [ext.nameConstraints([TD])],
    });
    const ok = verifyPeerChain(leafUnder(constrained, `spiffe://${TD}/x`), ca.bundles());
    expect(ok.id.toString()).toBe(`spiffe://${TD}/x`);
    expect(ok.verifiedChain).toHaveLength(3);
    const err = expectCode(
      () =>
        verifyPeerChain(
          leafUnder(constrained, `spiffe://sub.${TD}/x`),
          ca.bundles().with(X509Bundle.fromCertificates(`sub.${TD}`, ca.bundle().authorities)),
        ),
      'ERR_SVID_NAME_CONSTRAINT',
    );
    expect(err.detail.index).toBe(1);
    expect(err.message).toContain(`spiffe://sub.${TD}/x`);
  });

  it('refuses leaves in an excluded URI subtree', () => {
    const excluding = makeCa('excludes cluster.local', rootSigner(ca), {
      extensions: [ext.nameConstraints([], [TD])],
    });
    expectCode(
      () => verifyPeerChain(leafUnder(excluding, `spiffe://${TD}/x`), ca.bundles()),
      'ERR_SVID_NAME_CONSTRAINT',
    );
    // Control: the same intermediate signs for a trust domain it does not exclude.
    const other = X509Bundle.fromCertificates('other.example', ca.bundle().authorities);
    expect(verifyPeerChain(leafUnder(excluding, 'spiffe://other.example/x'), other).id.path).toBe('/x');
  });

  it('applies a root constraint to every certificate below it, intermediates included', () => {
    const constrainedRoot = makeCa('root permitting cluster.local', undefined, {
      extensions: [ext.nameConstraints([TD])],
    });
    const bundle = X509Bundle.fromCertificates(TD, constrainedRoot.der);
    const intermediate = makeCa('plain intermediate', constrainedRoot.signer);
    expect(verifyPeerChain(leafUnder(intermediate, `spiffe://${TD}/x`), bundle).verifiedChain).toHaveLength(
      3,
    );
    const other = X509Bundle.fromCertificates('other.example', constrainedRoot.der);
    expectCode(
      () => verifyPeerChain(leafUnder(intermediate, 'spiffe://other.example/x'), other),
      'ERR_SVID_NAME_CONSTRAINT',
    );
  });
});
