import type { KeyObject } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  type IdentitySource,
  type StaticIdentityOptions,
  staticIdentity,
  X509Svid,
} from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { rejectionOf, thrownBy } from '../helpers/expect-code.js';

const PATH = '/ns/demo/sa/boards';
const ca = createLocalCa({ trustDomain: 'cluster.local' });
const withIntermediate = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const partner = createLocalCa({ trustDomain: 'partner.example' });
const rogue = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(async () => {
  await Promise.all([ca.close(), withIntermediate.close(), partner.close(), rogue.close()]);
});

const pkcs8Pem = (key: KeyObject) => key.export({ format: 'pem', type: 'pkcs8' }) as string;
const pkcs8Der = (key: KeyObject) => key.export({ format: 'der', type: 'pkcs8' });

const sources: IdentitySource[] = [];
/** staticIdentity, closed after the suite. */
function open(options: StaticIdentityOptions): IdentitySource {
  const source = staticIdentity(options);
  sources.push(source);
  return source;
}
afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
});

describe('staticIdentity: accepted inputs', () => {
  it('takes an X509Svid and a BundleSet; current() is generation 1', async () => {
    const svid = ca.issue(PATH);
    const bundles = ca.bundles();
    const source = open({ svid, bundles });
    const identity = source.current();
    expect(identity.svid).toBe(svid);
    expect(identity.svids).toEqual([svid]);
    expect(identity.bundles).toBe(bundles);
    expect(identity.generation).toBe(1);
    expect(Object.isFrozen(identity)).toBe(true);
    expect(Object.isFrozen(identity.svids)).toBe(true);
    await expect(source.ready()).resolves.toBe(identity);
  });

  it('takes a PEM chain and PEM key with one X509Bundle', () => {
    const issued = withIntermediate.issue(PATH);
    const source = open({
      certChain: issued.certChainPem(),
      key: pkcs8Pem(issued.privateKey),
      bundles: withIntermediate.bundle(),
    });
    const { svid, svids, bundles, generation } = source.current();
    expect(svid).toBeInstanceOf(X509Svid);
    expect(svid.id.toString()).toBe(`spiffe://cluster.local${PATH}`);
    expect(svid.certificates.map((c) => c.serialNumber)).toEqual(
      issued.certificates.map((c) => c.serialNumber),
    );
    expect(svid.certificates).toHaveLength(2);
    expect(svids).toEqual([svid]);
    expect(bundles).toBeInstanceOf(BundleSet);
    expect(bundles.get('cluster.local')?.equals(withIntermediate.bundle())).toBe(true);
    expect(generation).toBe(1);
  });

  it('takes PEM bytes for the chain and key', () => {
    const issued = ca.issue(PATH);
    const source = open({
      certChain: Buffer.from(issued.certChainPem()),
      key: Buffer.from(pkcs8Pem(issued.privateKey)),
      bundles: ca.bundles(),
    });
    expect(source.current().svid.leaf.serialNumber).toBe(issued.leaf.serialNumber);
  });

  it('takes concatenated DER and a DER key with a list of X509Bundles (federation)', () => {
    const issued = withIntermediate.issue(PATH);
    const source = open({
      certChain: Buffer.concat(issued.certChainDer()),
      key: pkcs8Der(issued.privateKey),
      bundles: [withIntermediate.bundle(), partner.bundle()],
    });
    const { svid, bundles } = source.current();
    expect(svid.certificates).toHaveLength(2);
    expect(bundles.trustDomains().map((td) => td.name)).toEqual(['cluster.local', 'partner.example']);
  });

  it('takes X509Certificate objects and a KeyObject', () => {
    const issued = ca.issue(PATH, { keyType: 'ed25519' });
    const source = open({ certChain: issued.certificates, key: issued.privateKey, bundles: [ca.bundle()] });
    expect(source.current().svid.privateKey.asymmetricKeyType).toBe('ed25519');
  });

  it('takes an SVID whose trust domain is one of several bundles', () => {
    const svid = partner.issue('/web');
    const source = open({ svid, bundles: BundleSet.of(ca.bundle(), partner.bundle()) });
    expect(source.current().svid.id.trustDomain.name).toBe('partner.example');
  });
});

describe('staticIdentity: the source', () => {
  it('ready() settles at once, without waiting for a timer', async () => {
    const source = open({ svid: ca.issue(PATH), bundles: ca.bundles() });
    let settled = false;
    void source.ready().then(() => {
      settled = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(settled).toBe(true);
  });

  it('is frozen', () => {
    const source = open({ svid: ca.issue(PATH), bundles: ca.bundles() });
    expect(Object.isFrozen(source)).toBe(true);
  });

  it('subscribe() returns an unsubscribe function, and the listener is never called', () => {
    const source = open({ svid: ca.issue(PATH), bundles: ca.bundles() });
    const listener = vi.fn();
    const unsubscribe = source.subscribe(listener);
    expect(typeof unsubscribe).toBe('function');
    expect(unsubscribe()).toBeUndefined();
    unsubscribe();
    expect(listener).not.toHaveBeenCalled();
    expect(source.current().generation).toBe(1);
  });

  it('subscribe() refuses a listener that is not a function', () => {
    const source = open({ svid: ca.issue(PATH), bundles: ca.bundles() });
    const err = thrownBy(() => source.subscribe('nope' as never), 'ERR_OPTION_INVALID');
    expect(err.detail.field).toBe('listener');
  });

  it('close() makes current() throw ERR_NO_IDENTITY and ready() reject; it is idempotent', async () => {
    const source = staticIdentity({ svid: ca.issue(PATH), bundles: ca.bundles() });
    expect(source.current().generation).toBe(1);
    await source.close();
    await source.close();
    const err = thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
    expect(err.message).toMatch(/closed/);
    await rejectionOf(source.ready(), 'ERR_NO_IDENTITY');
  });

  it('Symbol.asyncDispose closes it', async () => {
    const source = staticIdentity({ svid: ca.issue(PATH), bundles: ca.bundles() });
    expect(typeof source[Symbol.asyncDispose]).toBe('function');
    await source[Symbol.asyncDispose]();
    thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
  });

  it('current() throws ERR_NO_IDENTITY once the SVID has expired', async () => {
    const svid = ca.issue(PATH, { ttl: 300 });
    const source = open({ svid, bundles: ca.bundles() });
    expect(source.current().svid).toBe(svid);
    await vi.waitFor(
      () => {
        expect(() => source.current()).toThrow();
      },
      { timeout: 3_000, interval: 50 },
    );
    expect(Date.now()).toBeGreaterThan(svid.notAfter.getTime());
    const err = thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
    expect(err.message).toContain(svid.id.toString());
    expect(err.message).toMatch(/expired/);
    await rejectionOf(source.ready(), 'ERR_NO_IDENTITY');
  });
});

describe('staticIdentity: refusals', () => {
  it('refuses an SVID not anchored in the bundle of its trust domain (same name, other CA)', () => {
    const svid = ca.issue(PATH);
    // Control: the same SVID with its own CA's bundle is accepted.
    expect(() => staticIdentity({ svid, bundles: ca.bundles() })).not.toThrow();
    thrownBy(() => staticIdentity({ svid, bundles: rogue.bundles() }), 'ERR_SVID_UNTRUSTED');
  });

  it("refuses an SVID when only another trust domain's bundle is given", () => {
    const svid = ca.issue(PATH);
    const err = thrownBy(() => staticIdentity({ svid, bundles: partner.bundle() }), 'ERR_SVID_NO_BUNDLE');
    expect(err.detail.trustDomain).toBe('cluster.local');
    thrownBy(() => staticIdentity({ svid, bundles: BundleSet.empty() }), 'ERR_SVID_NO_BUNDLE');
  });

  it('refuses an expired SVID (and accepts a fresh one of the same CA)', () => {
    const testCa = createTestCa();
    const good = testCa.issue(PATH);
    expect(() => staticIdentity({ svid: good, bundles: testCa.bundles() })).not.toThrow();
    const bad = testCa.issueBad('expired');
    thrownBy(
      () => staticIdentity({ certChain: bad.certChainPem(), key: bad.privateKeyPem(), bundles: bad.bundles }),
      'ERR_SVID_EXPIRED',
    );
  });

  it('refuses a chain that breaks the leaf profile', () => {
    const testCa = createTestCa();
    const bad = testCa.issueBad('leaf-is-ca');
    thrownBy(
      () => staticIdentity({ certChain: bad.certChainPem(), key: bad.privateKey, bundles: bad.bundles }),
      'ERR_SVID_LEAF_IS_CA',
    );
  });

  it('refuses a key that does not match the leaf', () => {
    const issued = ca.issue(PATH);
    const other = ca.issue(PATH);
    thrownBy(
      () =>
        staticIdentity({ certChain: issued.certChainPem(), key: other.privateKey, bundles: ca.bundles() }),
      'ERR_KEY_MISMATCH',
    );
  });

  it('refuses both "svid" and "certChain"/"key"', () => {
    const svid = ca.issue(PATH);
    const err = thrownBy(
      () => staticIdentity({ svid, certChain: svid.certChainPem(), bundles: ca.bundles() }),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe('svid');
    thrownBy(
      () => staticIdentity({ svid, key: svid.privateKey, bundles: ca.bundles() }),
      'ERR_OPTION_INVALID',
    );
  });

  it('refuses an unknown option, naming it', () => {
    const svid = ca.issue(PATH);
    const err = thrownBy(
      () => staticIdentity({ svid, bundles: ca.bundles(), bundle: ca.bundle() } as StaticIdentityOptions),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe('bundle');
    expect(err.message).toContain('"bundle"');
  });

  it('refuses missing or malformed bundles', () => {
    const svid = ca.issue(PATH);
    const missing = thrownBy(
      () => staticIdentity({ svid } as unknown as StaticIdentityOptions),
      'ERR_OPTION_INVALID',
    );
    expect(missing.detail.field).toBe('bundles');
    for (const bundles of [null, 'cluster.local', [ca.bundle(), 'x'], ca.bundle().toPem(), {}]) {
      const err = thrownBy(
        () => staticIdentity({ svid, bundles } as unknown as StaticIdentityOptions),
        'ERR_OPTION_INVALID',
      );
      expect(err.detail.field).toBe('bundles');
    }
  });

  it('refuses a missing chain or key, and an svid that is not an X509Svid', () => {
    const issued = ca.issue(PATH);
    const bundles = ca.bundles();
    expect(thrownBy(() => staticIdentity({ bundles }), 'ERR_OPTION_INVALID').detail.field).toBe('certChain');
    expect(
      thrownBy(() => staticIdentity({ certChain: issued.certChainPem(), bundles }), 'ERR_OPTION_INVALID')
        .detail.field,
    ).toBe('key');
    expect(
      thrownBy(() => staticIdentity({ key: issued.privateKey, bundles }), 'ERR_OPTION_INVALID').detail.field,
    ).toBe('certChain');
    expect(
      thrownBy(
        () => staticIdentity({ svid: { id: issued.id } as unknown as X509Svid, bundles }),
        'ERR_OPTION_INVALID',
      ).detail.field,
    ).toBe('svid');
  });

  it('refuses options that are not an object', () => {
    for (const options of [undefined, null, 'svid', [ca.bundle()]]) {
      thrownBy(() => staticIdentity(options as unknown as StaticIdentityOptions), 'ERR_OPTION_INVALID');
    }
  });

  it('refuses a certificate chain that is not a certificate', () => {
    const issued = ca.issue(PATH);
    thrownBy(
      () => staticIdentity({ certChain: 'not pem', key: issued.privateKey, bundles: ca.bundles() }),
      'ERR_PEM_INVALID',
    );
    thrownBy(
      () =>
        staticIdentity({ certChain: Buffer.from([1, 2, 3]), key: issued.privateKey, bundles: ca.bundles() }),
      'ERR_CERTIFICATE_INVALID',
    );
  });
});
