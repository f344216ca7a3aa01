import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BundleSet, createLocalCa, TrustDomain, verifyPeerChain, X509Bundle } from '../../src/index.js';
import { HOUR } from '../helpers/certs.js';
import { expectCode } from '../helpers/expect-code.js';

const ours = createLocalCa({ trustDomain: 'cluster.local' });
const partner = createLocalCa({ trustDomain: 'partner.example', rootTtl: 2 * HOUR });
const third = createLocalCa({ trustDomain: 'third.example' });

describe('BundleSet', () => {
  it('looks bundles up by trust domain name or object', () => {
    const set = BundleSet.of(ours.bundle(), partner.bundle());
    expect(set.size).toBe(2);
    expect(set.get('partner.example')).toBe(partner.bundle());
    expect(set.get(TrustDomain.parse('cluster.local'))).toBe(ours.bundle());
    expect(set.get('third.example')).toBeUndefined();
    expect([
      set.has('cluster.local'),
      set.has(TrustDomain.parse('partner.example')),
      set.has('third.example'),
    ]).toEqual([true, true, false]);
    expect(set.trustDomains().map((td) => td.name)).toEqual(['cluster.local', 'partner.example']);
    expect(set.bundles()).toEqual([ours.bundle(), partner.bundle()]);
    expect(Object.isFrozen(set)).toBe(true);
    expect(inspect(set)).toBe('BundleSet(cluster.local, partner.example)');
  });

  it('refuses two bundles for one trust domain', () => {
    const rival = createLocalCa({ trustDomain: 'cluster.local' });
    const err = expectCode(
      () => BundleSet.of(ours.bundle(), partner.bundle(), rival.bundle()),
      'ERR_BUNDLE_INVALID',
    );
    expect(err.detail).toMatchObject({ index: 2, trustDomain: 'cluster.local' });
    expectCode(() => BundleSet.of(ours.bundle(), ours.bundle()), 'ERR_BUNDLE_INVALID');
  });

  it('refuses what is not a bundle', () => {
    expectCode(() => BundleSet.of({} as X509Bundle), 'ERR_OPTION_INVALID');
    expectCode(() => BundleSet.empty().with(null as unknown as X509Bundle), 'ERR_OPTION_INVALID');
  });

  it('with() adds or replaces without changing the original', () => {
    const set = BundleSet.of(ours.bundle());
    const added = set.with(partner.bundle());
    expect([set.size, added.size]).toEqual([1, 2]);
    expect(set.has('partner.example')).toBe(false);
    const rival = createLocalCa({ trustDomain: 'cluster.local' });
    const both = X509Bundle.fromCertificates('cluster.local', [
      ...ours.bundle().authorities,
      ...rival.bundle().authorities,
    ]);
    const replaced = added.with(both);
    expect(replaced.size).toBe(2);
    expect(replaced.get('cluster.local')?.authorities).toHaveLength(2);
    expect(added.get('cluster.local')?.authorities).toHaveLength(1);
  });

  it('without() removes one trust domain, and is a no-op for an absent one', () => {
    const set = BundleSet.of(ours.bundle(), partner.bundle());
    const less = set.without('partner.example');
    expect(less.trustDomains().map((td) => td.name)).toEqual(['cluster.local']);
    expect(set.size).toBe(2);
    expect(set.without(TrustDomain.parse('cluster.local')).has('cluster.local')).toBe(false);
    expect(set.without('third.example').equals(set)).toBe(true);
  });

  it('earliestNotAfter() is the soonest authority expiry across bundles', () => {
    const partnerRoot = partner.bundle().authorities[0];
    const set = BundleSet.of(ours.bundle(), partner.bundle(), third.bundle());
    expect(set.earliestNotAfter()?.getTime()).toBe(new Date(partnerRoot?.validTo ?? '').getTime());
    expect(set.earliestNotAfter()?.getTime()).toBe(partner.bundle().earliestNotAfter()?.getTime());
    expect(BundleSet.of(ours.bundle()).earliestNotAfter()?.getTime()).toBeGreaterThan(
      Date.now() + 300 * 24 * HOUR,
    );
    expect(BundleSet.empty().earliestNotAfter()).toBeUndefined();
  });

  it('equals() compares trust domains and authorities, not order', () => {
    const ab = BundleSet.of(ours.bundle(), partner.bundle());
    expect(ab.equals(BundleSet.of(partner.bundle(), ours.bundle()))).toBe(true);
    expect(ab.equals(BundleSet.of(ours.bundle()))).toBe(false);
    expect(ab.equals(BundleSet.of(ours.bundle(), third.bundle()))).toBe(false);
    const lookalike = createLocalCa({ trustDomain: 'partner.example' });
    expect(ab.equals(BundleSet.of(ours.bundle(), lookalike.bundle()))).toBe(false);
    expect(BundleSet.empty().equals(BundleSet.empty())).toBe(true);
  });

  it('the empty set trusts nobody', () => {
    expectCode(() => verifyPeerChain(ours.issue('/x').certificates, BundleSet.empty()), 'ERR_SVID_NO_BUNDLE');
    expect(verifyPeerChain(ours.issue('/x').certificates, ours.bundles()).id.path).toBe('/x');
  });
});
