import type { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  type KeyType,
  MAX_CERTIFICATE_BYTES,
  MAX_CHAIN_LENGTH,
  verifyPeerChain,
} from '../../src/index.js';
import { type BadSvidKind, badSvidKinds, createTestCa } from '../../src/testing/index.js';
import { HOUR, makeCa, makeLeaf, rootSigner, serialOf } from '../helpers/certs.js';
import { expectCode } from '../helpers/expect-code.js';

const TD = 'cluster.local';
const PATH = '/ns/test/sa/bad';
const LABEL = /^subject "[^"]*", serial [0-9A-F]+$/;

// Kinds refused before any certificate is parsed cannot name one; they name the limit instead.
const refusedBeforeParse: Partial<Record<BadSvidKind, string>> = {
  'chain-too-long': `the limit is ${MAX_CHAIN_LENGTH}`,
  'certificate-too-large': `the limit is ${MAX_CERTIFICATE_BYTES}`,
};

describe('verifyPeerChain refuses every bad SVID kind', () => {
  const ca = createTestCa({ trustDomain: TD });

  for (const kind of Object.keys(badSvidKinds) as BadSvidKind[]) {
    it(`${kind}: ${badSvidKinds[kind].code}`, () => {
      const bad = ca.issueBad(kind, PATH);
      expect(bad.code).toBe(badSvidKinds[kind].code);

      // Control, same CA and path: a good SVID passes, also against the scenario's bundles when
      // they trust this CA for its trust domain.
      const good = ca.issue(PATH);
      expect(verifyPeerChain(good.certificates, ca.bundles()).id.toString()).toBe(`spiffe://${TD}${PATH}`);
      if (bad.bundles.get(TD)?.equals(ca.bundle())) {
        expect(verifyPeerChain(good.certificates, bad.bundles).id.equals(good.id)).toBe(true);
      }

      const err = expectCode(() => verifyPeerChain(bad.certificates, bad.bundles), badSvidKinds[kind].code);
      const limit = refusedBeforeParse[kind];
      if (limit !== undefined) {
        expect(err.message).toContain(limit);
      } else {
        const label = err.detail.certificate;
        expect(label, err.message).toMatch(LABEL);
        expect(err.message).toContain(label);
        // The certificate named is one of the scenario's, not an invented one.
        const scenario = [...bad.certificates, ...bad.bundles.bundles().flatMap((b) => b.authorities)];
        expect(scenario.map(serialOf)).toContain(label?.replace(/^.*serial /, '').replace(/^0+/, ''));
      }

      // The same chain as DER bytes (Buffer and plain Uint8Array) gives the same verdict.
      expectCode(
        () =>
          verifyPeerChain(
            bad.certificates.map((c) => c.raw),
            bad.bundles,
          ),
        bad.code,
      );
      const bytes = bad.certificates.map((c) => new Uint8Array(c.raw));
      expectCode(() => verifyPeerChain(bytes, bad.bundles), bad.code);
    });
  }
});

describe('verifyPeerChain accepts valid SVIDs', () => {
  const keyTypes: KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];
  for (const intermediate of [false, true]) {
    const ca = createLocalCa({ trustDomain: TD, intermediate });
    const length = intermediate ? 3 : 2;
    for (const keyType of keyTypes) {
      it(`${keyType} leaf, ${intermediate ? 'with' : 'without'} intermediate`, () => {
        const svid = ca.issue('/ns/demo/sa/web', { keyType });
        expect(svid.leaf.publicKey.asymmetricKeyType).toBe(keyType.replace(/-.*/, ''));
        const result = verifyPeerChain(svid.certificates, ca.bundles());
        expect(result.id.toString()).toBe(`spiffe://${TD}/ns/demo/sa/web`);
        expect(result.verifiedChain).toHaveLength(length);
        expect(result.verifiedChain[0]?.raw.equals(svid.leaf.raw)).toBe(true);
        expect(ca.bundle().contains(result.verifiedChain[length - 1] as X509Certificate)).toBe(true);
        expect(result.notAfter.getTime()).toBe(svid.notAfter.getTime());
        expect(Object.isFrozen(result)).toBe(true);
        // Control in the same setup: another CA of the same trust domain is not trusted.
        const other = createLocalCa({ trustDomain: TD, intermediate });
        expectCode(() => verifyPeerChain(svid.certificates, other.bundles()), 'ERR_SVID_UNTRUSTED');
      });
    }

    it(`accepts the root at the end of the presented chain (${intermediate ? 'with' : 'without'} intermediate)`, () => {
      const svid = ca.issue('/ns/demo/sa/web');
      const root = ca.bundle().authorities[0] as X509Certificate;
      const result = verifyPeerChain([...svid.certificates, root], ca.bundles());
      expect(result.verifiedChain).toHaveLength(length);
      expect(result.verifiedChain[length - 1]?.raw.equals(root.raw)).toBe(true);
    });
  }

  it('reports the earliest notAfter on the path, not the leaf', () => {
    const ca = createLocalCa({ trustDomain: TD });
    const now = Date.now();
    const intermediate = makeCa('short-lived intermediate', rootSigner(ca), { notAfter: now + HOUR / 2 });
    const leaf = makeLeaf(intermediate.signer, { uris: [`spiffe://${TD}/x`], notAfter: now + HOUR });
    const result = verifyPeerChain([leaf.der, intermediate.der], ca.bundles());
    expect(result.notAfter.getTime()).toBe(new Date(intermediate.x509.validTo).getTime());
    expect(result.notAfter.getTime()).toBeLessThan(new Date(leaf.x509.validTo).getTime());
  });

  it('accepts with a BundleSet of several trust domains, each peer against its own bundle', () => {
    const ours = createLocalCa({ trustDomain: TD });
    const a = createLocalCa({ trustDomain: 'a.example' });
    const b = createLocalCa({ trustDomain: 'b.example', intermediate: true });
    const set = BundleSet.of(ours.bundle(), a.bundle(), b.bundle());
    for (const ca of [ours, a, b]) {
      const svid = ca.issue('/svc');
      expect(verifyPeerChain(svid.certificates, set).id.trustDomain.name).toBe(ca.trustDomain.name);
      expect(verifyPeerChain(svid.certificates, ca.bundle()).id.equals(svid.id)).toBe(true);
    }
  });
});

describe('verifyPeerChain across trust domains', () => {
  const a = createLocalCa({ trustDomain: 'a.example' });
  const b = createLocalCa({ trustDomain: 'b.example' });
  const both = BundleSet.of(a.bundle(), b.bundle());

  it("refuses a leaf claiming a.example signed by b.example's CA, though B is trusted", () => {
    const forged = makeLeaf(rootSigner(b), { uris: ['spiffe://a.example/x'] });
    const err = expectCode(() => verifyPeerChain([forged.der], both), 'ERR_SVID_UNTRUSTED');
    expect(err.detail.trustDomain).toBe('a.example');
    expect(err.detail.peer).toBe('spiffe://a.example/x');
    // Controls: B's own leaves, built the same way and issued by B, are accepted.
    const honest = makeLeaf(rootSigner(b), { uris: ['spiffe://b.example/x'] });
    expect(verifyPeerChain([honest.der], both).id.toString()).toBe('spiffe://b.example/x');
    expect(verifyPeerChain(b.issue('/x').certificates, both).id.toString()).toBe('spiffe://b.example/x');
  });

  it('refuses a peer of a trust domain without a bundle (ERR_SVID_NO_BUNDLE)', () => {
    const svid = a.issue('/x');
    expect(verifyPeerChain(svid.certificates, a.bundle()).id.equals(svid.id)).toBe(true);
    const err = expectCode(() => verifyPeerChain(svid.certificates, b.bundles()), 'ERR_SVID_NO_BUNDLE');
    expect(err.detail.trustDomain).toBe('a.example');
    expectCode(() => verifyPeerChain(svid.certificates, b.bundle()), 'ERR_SVID_NO_BUNDLE');
    expectCode(() => verifyPeerChain(svid.certificates, BundleSet.empty()), 'ERR_SVID_NO_BUNDLE');
  });
});

describe('verifyPeerChain options', () => {
  const ca = createLocalCa({ trustDomain: TD });
  const svid = ca.issue('/ns/demo/sa/web');

  it('checks validity at `now`', () => {
    const now = Date.now();
    expect(verifyPeerChain(svid.certificates, ca.bundles(), { now }).id.equals(svid.id)).toBe(true);
    expect(verifyPeerChain(svid.certificates, ca.bundles(), { now: new Date(now) }).id).toBeDefined();
    const expired = expectCode(
      () => verifyPeerChain(svid.certificates, ca.bundles(), { now: now + 2 * HOUR }),
      'ERR_SVID_EXPIRED',
    );
    expect(expired.detail.index).toBe(0);
    expectCode(
      () => verifyPeerChain(svid.certificates, ca.bundles(), { now: new Date(now - HOUR) }),
      'ERR_SVID_NOT_YET_VALID',
    );
  });

  it('refuses an invalid `now` before looking at the chain', () => {
    for (const now of [Number.NaN, Number.POSITIVE_INFINITY, new Date('not a date')]) {
      const err = expectCode(
        () => verifyPeerChain(svid.certificates, ca.bundles(), { now }),
        'ERR_OPTION_INVALID',
      );
      expect(err.detail.field).toBe('now');
    }
    expectCode(() => verifyPeerChain([], ca.bundles(), { now: Number.NaN }), 'ERR_OPTION_INVALID');
  });

  it('checks extendedKeyUsage against `usage`', () => {
    const serverOnly = makeLeaf(rootSigner(ca), { uris: [`spiffe://${TD}/s`], eku: ['1.3.6.1.5.5.7.3.1'] });
    const err = expectCode(
      () => verifyPeerChain([serverOnly.der], ca.bundles(), { usage: 'client' }),
      'ERR_SVID_EXT_KEY_USAGE',
    );
    expect(err.message).toContain('clientAuth');
    expect(err.detail.certificate).toMatch(LABEL);
    expect(verifyPeerChain([serverOnly.der], ca.bundles(), { usage: 'server' }).id.path).toBe('/s');
    expect(verifyPeerChain([serverOnly.der], ca.bundles()).id.path).toBe('/s');

    const clientOnly = makeLeaf(rootSigner(ca), { uris: [`spiffe://${TD}/c`], eku: ['1.3.6.1.5.5.7.3.2'] });
    expectCode(
      () => verifyPeerChain([clientOnly.der], ca.bundles(), { usage: 'server' }),
      'ERR_SVID_EXT_KEY_USAGE',
    );
    expect(verifyPeerChain([clientOnly.der], ca.bundles(), { usage: 'client' }).id.path).toBe('/c');

    // RFC 5280 §4.2.1.12: no extendedKeyUsage means any use; anyExtendedKeyUsage too.
    const noEku = makeLeaf(rootSigner(ca), { uris: [`spiffe://${TD}/n`], eku: null });
    const anyEku = makeLeaf(rootSigner(ca), { uris: [`spiffe://${TD}/a`], eku: ['2.5.29.37.0'] });
    for (const leaf of [noEku, anyEku]) {
      for (const usage of ['client', 'server'] as const) {
        expect(verifyPeerChain([leaf.der], ca.bundles(), { usage }).id.trustDomain.name).toBe(TD);
      }
    }
  });
});
