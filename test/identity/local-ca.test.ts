import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  KeyUsageFlags,
} from '@peculiar/asn1-x509';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  type IdentitySource,
  type KeyType,
  type LocalCa,
  type LocalCaOptions,
  SpiffeId,
  TrustDomain,
  verifyPeerChain,
  type WorkloadIdentity,
  X509Bundle,
  type X509Svid,
} from '../../src/index.js';
import { inspectCertificate } from '../../src/x509/certificate.js';
import { expectCode, thrownBy } from '../helpers/expect-code.js';
import { makePluginCas, opensslVerify, type PluginCas } from '../helpers/plugin-ca.js';

const TD = 'cluster.local';
const PATH = '/ns/demo/sa/boards';
const ID = `spiffe://${TD}${PATH}`;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** CAs created by a test, closed after it. */
const cas: LocalCa[] = [];
function newCa(options: Partial<LocalCaOptions> = {}): LocalCa {
  const ca = createLocalCa({ trustDomain: TD, ...options });
  cas.push(ca);
  return ca;
}
afterEach(async () => {
  await Promise.all(cas.splice(0).map((ca) => ca.close()));
});

/** The criticality of each extension of a certificate, by OID. */
function criticality(cert: X509Certificate): Map<string, boolean> {
  const parsed = AsnConvert.parse(cert.raw, Certificate);
  return new Map((parsed.tbsCertificate.extensions ?? []).map((e) => [e.extnID, e.critical]));
}

/** Records every update of a source. */
function record(source: IdentitySource): { updates: WorkloadIdentity[]; stop: () => void } {
  const updates: WorkloadIdentity[] = [];
  const stop = source.subscribe((identity) => updates.push(identity));
  return { updates, stop };
}

function verifies(svid: X509Svid, bundles: BundleSet | X509Bundle): boolean {
  try {
    verifyPeerChain(svid.certificates, bundles);
    return true;
  } catch {
    return false;
  }
}

function rootsOf(bundles: BundleSet): string[] {
  return (bundles.get(TD)?.authorities ?? []).map((c) => c.fingerprint256);
}

describe('createLocalCa: issue()', () => {
  it('refuses options that are not a plain object (a KeyObject has no keys of its own)', () => {
    const ca = newCa({});
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const bad of [privateKey, Buffer.from('x'), new Date(), 'ttl']) {
      expectCode(() => ca.issue(PATH, bad as never), 'ERR_OPTION_INVALID');
      expectCode(() => ca.identity(PATH, bad as never), 'ERR_OPTION_INVALID');
    }
    expect(ca.issue(PATH, {}).id.toString()).toBe(ID);
  });

  const keyTypes: [KeyType | undefined, string, (svid: X509Svid) => void][] = [
    [
      undefined,
      'EC P-256 (default)',
      (s) => expect(s.privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1'),
    ],
    ['ec-p384', 'EC P-384', (s) => expect(s.privateKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1')],
    ['rsa-2048', 'RSA 2048', (s) => expect(s.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048)],
    ['ed25519', 'Ed25519', (s) => expect(s.privateKey.asymmetricKeyType).toBe('ed25519')],
  ];

  for (const intermediate of [false, true]) {
    for (const [keyType, name, checkKey] of keyTypes) {
      it(`issues ${name} leaves${intermediate ? ' under an intermediate' : ''} that verify and follow the profile exactly`, () => {
        const ca = newCa({ intermediate });
        const svid = ca.issue(PATH, keyType === undefined ? {} : { keyType });
        checkKey(svid);
        expect(svid.id.toString()).toBe(ID);
        expect(svid.certificates).toHaveLength(intermediate ? 2 : 1);
        const result = verifyPeerChain(svid.certificates, ca.bundles(), { usage: 'client' });
        expect(result.id.toString()).toBe(ID);
        expect(verifyPeerChain(svid.certificates, ca.bundle(), { usage: 'server' }).id.toString()).toBe(ID);
        expect(result.verifiedChain).toHaveLength(intermediate ? 3 : 2);
        expect(ca.bundle().contains(result.verifiedChain.at(-1) as X509Certificate)).toBe(true);
        if (intermediate) {
          const [leaf, int] = svid.certificates as [X509Certificate, X509Certificate];
          expect(leaf.checkIssued(int)).toBe(true);
          expect(ca.bundle().contains(int)).toBe(false);
          expect(int.ca).toBe(true);
        }

        // X509-SVID §4: the leaf profile, exactly.
        const leaf = inspectCertificate(svid.leaf);
        const critical = criticality(svid.leaf);
        expect(leaf.basicConstraints).toEqual({ cA: false, pathLen: undefined });
        expect(critical.get(id_ce_basicConstraints)).toBe(true);
        const rsa = keyType === 'rsa-2048';
        expect(leaf.keyUsage).toBe(
          rsa
            ? KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment
            : KeyUsageFlags.digitalSignature,
        );
        expect(critical.get(id_ce_keyUsage)).toBe(true);
        expect([...(leaf.extKeyUsage ?? [])].sort()).toEqual([SERVER_AUTH, CLIENT_AUTH].sort());
        expect(critical.get(id_ce_extKeyUsage)).toBe(false);
        expect(leaf.uris).toEqual([ID]);
        expect(critical.get(id_ce_subjectAltName)).toBe(false);
        expect(leaf.dnsNames).toEqual([]);
        expect(leaf.ipAddresses).toEqual([]);
        expect(leaf.emails).toEqual([]);
        expect(leaf.otherNames).toBe(0);
        expect(leaf.unknownCriticalExtensions).toEqual([]);
        expect(leaf.selfIssued).toBe(false);
        expect(leaf.notBefore).toBeLessThanOrEqual(Date.now());
      });
    }
  }

  it('issues leaves that `openssl verify -purpose sslclient` and `sslserver` accept', () => {
    for (const intermediate of [false, true]) {
      const ca = newCa({ intermediate });
      const svid = ca.issue(PATH);
      const [leafPem, ...intPems] = svid.certificates.map((c) => c.toString());
      for (const purpose of ['sslclient', 'sslserver']) {
        const out = opensslVerify(leafPem as string, intPems.join(''), ca.bundle().toPem(), [
          '-x509_strict',
          '-purpose',
          purpose,
        ]);
        expect(out).toMatch(/: OK/);
      }
      // Control: openssl refuses the leaf against another CA's root.
      const other = newCa({ intermediate });
      expect(() => opensslVerify(leafPem as string, intPems.join(''), other.bundle().toPem())).toThrow(
        /openssl verify failed/,
      );
    }
  });

  it('takes a SPIFFE ID string or a SpiffeId of its trust domain', () => {
    const ca = newCa();
    expect(ca.issue(ID).id.toString()).toBe(ID);
    expect(ca.issue(SpiffeId.parse(ID)).id.toString()).toBe(ID);
    expect(ca.trustDomain).toBeInstanceOf(TrustDomain);
    expect(ca.trustDomain.name).toBe(TD);
    expect(createLocalCa({ trustDomain: TrustDomain.parse('x.example') }).trustDomain.name).toBe('x.example');
    // A TrustDomain of another copy of the package is checked again from its name.
    const foreign = { name: 'y.example' } as unknown as TrustDomain;
    expect(createLocalCa({ trustDomain: foreign }).trustDomain).toBeInstanceOf(TrustDomain);
    thrownBy(
      () => createLocalCa({ trustDomain: { name: 'Y.example' } as unknown as TrustDomain }),
      'ERR_TRUST_DOMAIN_INVALID',
    );
  });

  it('refuses an ID of another trust domain with ERR_OPTION_INVALID', () => {
    const ca = newCa();
    for (const other of [
      'spiffe://other.example/ns/demo/sa/boards',
      SpiffeId.parse('spiffe://evil.local/x'),
    ]) {
      const err = thrownBy(() => ca.issue(other), 'ERR_OPTION_INVALID');
      expect(err.detail.field).toBe('pathOrId');
      expect(err.message).toContain(TD);
    }
  });

  it('refuses a bad path with ERR_SPIFFE_ID_INVALID', () => {
    const ca = newCa();
    for (const path of [
      'ns/demo',
      '/ns//demo',
      '/ns/../demo',
      '/ns/demo/',
      '/ns/d%41mo',
      '/a b',
      'spiffe://cluster.local/x?y',
    ]) {
      thrownBy(() => ca.issue(path), 'ERR_SPIFFE_ID_INVALID');
    }
    thrownBy(() => ca.issue(42 as unknown as string), 'ERR_SPIFFE_ID_INVALID');
  });

  it("refuses the trust domain's own ID (a leaf needs a path)", () => {
    const ca = newCa();
    thrownBy(() => ca.issue(''), 'ERR_OPTION_INVALID');
    thrownBy(() => ca.issue(`spiffe://${TD}`), 'ERR_OPTION_INVALID');
  });

  it('refuses unknown and malformed options, naming the field', () => {
    const ca = newCa();
    const cases: [() => unknown, string][] = [
      [() => createLocalCa({ trustDomain: TD, ttll: 5 } as LocalCaOptions), 'ttll'],
      [() => createLocalCa({} as LocalCaOptions), 'trustDomain'],
      [() => createLocalCa({ trustDomain: TD, ttl: 0 }), 'ttl'],
      [() => createLocalCa({ trustDomain: TD, ttl: -5 }), 'ttl'],
      [() => createLocalCa({ trustDomain: TD, ttl: Number.NaN }), 'ttl'],
      [() => createLocalCa({ trustDomain: TD, ttl: '1h' as unknown as number }), 'ttl'],
      [() => createLocalCa({ trustDomain: TD, rootTtl: Number.POSITIVE_INFINITY }), 'rootTtl'],
      [() => createLocalCa({ trustDomain: TD, keyType: 'dsa' as KeyType }), 'keyType'],
      [() => createLocalCa({ trustDomain: TD, intermediate: 'yes' as unknown as boolean }), 'intermediate'],
      [() => createLocalCa({ trustDomain: TD, intermediate: null as unknown as boolean }), 'intermediate'],
      [() => createLocalCa({ trustDomain: Buffer.from(TD) as never }), 'trustDomain'],
      [() => createLocalCa({ trustDomain: 42 as never }), 'trustDomain'],
      [() => ca.issue(PATH, { ttl: 0 }), 'ttl'],
      [() => ca.issue(PATH, { keyType: 'rsa-1024' as KeyType }), 'keyType'],
      [() => ca.issue(PATH, { lifetime: 5 } as object), 'lifetime'],
      [() => ca.identity(PATH, { renew: 0.5 } as object), 'renew'],
    ];
    for (const [fn, field] of cases) {
      const err = thrownBy(fn, 'ERR_OPTION_INVALID');
      expect(err.detail.field).toBe(field);
    }
    thrownBy(() => createLocalCa(null as unknown as LocalCaOptions), 'ERR_OPTION_INVALID');
  });

  it('refuses an invalid trust domain', () => {
    thrownBy(() => createLocalCa({ trustDomain: 'Cluster.Local' }), 'ERR_TRUST_DOMAIN_INVALID');
    thrownBy(() => createLocalCa({ trustDomain: 'spiffe://cluster.local/x' }), 'ERR_TRUST_DOMAIN_INVALID');
  });

  it('honours ttl: from issue(), from the CA, and the 1 hour default', () => {
    const ca = newCa({ ttl: 10 * MINUTE });
    const check = (svid: X509Svid, ttl: number, before: number) => {
      // Certificate times have whole seconds.
      expect(svid.notAfter.getTime() - before).toBeGreaterThanOrEqual(ttl - 1_000);
      expect(svid.notAfter.getTime() - before).toBeLessThanOrEqual(ttl + 1_000);
    };
    let before = Date.now();
    check(ca.issue(PATH, { ttl: 5 * MINUTE }), 5 * MINUTE, before);
    before = Date.now();
    check(ca.issue(PATH), 10 * MINUTE, before);
    before = Date.now();
    check(newCa().issue(PATH), HOUR, before);
  });

  it('never issues a certificate that is already expired, however short the ttl', () => {
    const ca = newCa();
    for (let i = 0; i < 5; i++) {
      const before = Date.now();
      const svid = ca.issue(PATH, { ttl: 1 });
      expect(svid.notAfter.getTime()).toBeGreaterThanOrEqual(before + 1);
      expect(verifyPeerChain(svid.certificates, ca.bundles(), { now: before }).id.toString()).toBe(ID);
    }
  });

  for (const intermediate of [false, true]) {
    it(`clamps ttl to the lifetime of the root${intermediate ? ' and intermediate' : ''}`, () => {
      const before = Date.now();
      const ca = newCa({ rootTtl: 30_000, intermediate });
      const svid = ca.issue(PATH, { ttl: HOUR });
      const root = inspectCertificate(ca.bundle().authorities[0] as X509Certificate);
      expect(root.notAfter).toBeLessThanOrEqual(before + 30_000 + 1_000);
      expect(svid.notAfter.getTime()).toBe(root.notAfter);
      for (const cert of svid.certificates)
        expect(inspectCertificate(cert).notAfter).toBeLessThanOrEqual(root.notAfter);
      expect(verifies(svid, ca.bundles())).toBe(true);
    });
  }

  it('refuses to issue once its root has expired (ERR_SVID_AUTHORITY_EXPIRED)', async () => {
    const ca = newCa({ rootTtl: 1 });
    const root = inspectCertificate(ca.bundle().authorities[0] as X509Certificate);
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(root.notAfter), {
      timeout: 2_000,
      interval: 5,
    });
    thrownBy(() => ca.issue(PATH), 'ERR_SVID_AUTHORITY_EXPIRED');
    thrownBy(() => ca.identity(PATH), 'ERR_SVID_AUTHORITY_EXPIRED');
  });

  it('inspect() shows the trust domain and counts, nothing more', () => {
    const ca = newCa();
    ca.identity(PATH);
    expect(inspect(ca)).toBe(`LocalCa(${TD}, 1 root(s), 1 identities)`);
  });
});

describe('createLocalCa: identity()', () => {
  it('ready() resolves with the first SVID, verified against the bundles it carries', async () => {
    const ca = newCa();
    const source = ca.identity(PATH);
    const identity = await source.ready({ timeout: 1_000 });
    expect(identity.generation).toBe(1);
    expect(identity.svid.id.toString()).toBe(ID);
    expect(identity.svids).toEqual([identity.svid]);
    expect(source.current()).toBe(identity);
    expect(identity.bundles.get(TD)?.equals(ca.bundle())).toBe(true);
    expect(verifies(identity.svid, identity.bundles)).toBe(true);
    expect(inspect(source)).toContain(ID);
  });

  it('takes keyType and hint', () => {
    const ca = newCa();
    const svid = ca.identity(PATH, { keyType: 'rsa-2048', hint: 'internal' }).current().svid;
    expect(svid.privateKey.asymmetricKeyType).toBe('rsa');
    expect(svid.hint).toBe('internal');
  });

  it('re-issues the SVID at half its lifetime by default (generations 2, 3 with new serials)', async () => {
    const ca = newCa();
    const source = ca.identity(PATH, { ttl: 400 });
    const first = source.current();
    const { updates } = record(source);
    await vi.waitFor(() => expect(updates.length).toBeGreaterThanOrEqual(2), {
      timeout: 5_000,
      interval: 20,
    });
    const [second, third] = updates as [WorkloadIdentity, WorkloadIdentity];
    expect([second.generation, third.generation]).toEqual([2, 3]);
    const serials = [first, second, third].map((i) => i.svid.leaf.serialNumber);
    expect(new Set(serials).size).toBe(3);
    for (const update of [second, third]) {
      expect(update.svid.id.toString()).toBe(ID);
      expect(verifyPeerChain(update.svid.certificates, update.bundles).id.toString()).toBe(ID);
    }
    // Each one was published before the previous one expired.
    expect(second.svid.notBefore.getTime()).toBeLessThan(first.svid.notAfter.getTime());
  });

  it('refuses renewAt outside (0, 1)', () => {
    const ca = newCa();
    for (const renewAt of [0, 1, 1.5, -0.1, Number.NaN, '0.5']) {
      const err = thrownBy(() => ca.identity(PATH, { renewAt: renewAt as number }), 'ERR_OPTION_INVALID');
      expect(err.detail.field).toBe('renewAt');
    }
    expect(ca.identity(PATH, { renewAt: 0.9 }).current().generation).toBe(1);
  });

  it('refuses an ID of another trust domain', () => {
    const ca = newCa();
    thrownBy(() => ca.identity('spiffe://other.example/x'), 'ERR_OPTION_INVALID');
    thrownBy(() => ca.identity('x'), 'ERR_SPIFFE_ID_INVALID');
  });

  it('adds federatedBundles to its bundles', () => {
    const ca = newCa();
    const partner = newCa({ trustDomain: 'partner.example' });
    const partnerSvid = partner.issue('/ns/x/sa/api');
    const plain = ca.identity(PATH).current();
    thrownBy(() => verifyPeerChain(partnerSvid.certificates, plain.bundles), 'ERR_SVID_NO_BUNDLE');
    const federated = ca.identity(PATH, { federatedBundles: [partner.bundle()] }).current();
    expect(federated.bundles.trustDomains().map((td) => td.name)).toEqual([TD, 'partner.example']);
    expect(verifyPeerChain(partnerSvid.certificates, federated.bundles).id.toString()).toBe(
      'spiffe://partner.example/ns/x/sa/api',
    );
  });

  it("refuses its own trust domain's bundle as a federated bundle, and non-bundles", () => {
    const ca = newCa();
    const sameName = newCa();
    for (const federatedBundles of [[sameName.bundle()], [ca.bundle()], ['partner.example'], 'x']) {
      const err = thrownBy(
        () => ca.identity(PATH, { federatedBundles: federatedBundles as X509Bundle[] }),
        'ERR_OPTION_INVALID',
      );
      expect(err.detail.field).toBe('federatedBundles');
    }
  });

  it('close() stops it: current() throws, no more updates, idempotent, asyncDispose', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const ca = newCa();
      const source = ca.identity(PATH, { ttl: 10 * MINUTE });
      const listener = vi.fn();
      source.subscribe(listener);
      // The renewal, and the expiry warnings of the SVID and of the CA's root.
      expect(vi.getTimerCount()).toBe(3);
      await source.close();
      await source.close();
      expect(vi.getTimerCount()).toBe(0);
      thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
      vi.advanceTimersByTime(HOUR);
      expect(listener).not.toHaveBeenCalled();
      const disposed = ca.identity(PATH);
      await disposed[Symbol.asyncDispose]();
      thrownBy(() => disposed.current(), 'ERR_NO_IDENTITY');
      expect(inspect(ca)).toBe(`LocalCa(${TD}, 1 root(s), 0 identities)`);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails closed when its CA expires, and recovers after rotateRoot()', async () => {
    const ca = newCa({ rootTtl: 1_500 });
    const source = ca.identity(PATH);
    const received: { identity: WorkloadIdentity; at: number }[] = [];
    source.subscribe((identity) => received.push({ identity, at: Date.now() }));
    await vi.waitFor(() => expect(() => source.current()).toThrow(), { timeout: 5_000, interval: 20 });
    thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
    // Still none a while later: the failed renewals are retried, the expired SVID is not reused.
    await new Promise((resolve) => setTimeout(resolve, 100));
    thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
    const beforeRotation = received.length;
    ca.rotateRoot();
    const recovered = source.current();
    expect(verifies(recovered.svid, recovered.bundles)).toBe(true);
    expect(received.length).toBeGreaterThan(beforeRotation);
    expect(received.at(-1)?.identity).toBe(recovered);
    // Every update a subscriber was handed was valid when it was handed over (a few ms of slack
    // for the clock ticking between the source's check and the listener's).
    for (const { identity, at } of received) {
      expect(() =>
        verifyPeerChain(identity.svid.certificates, identity.bundles, { now: at - 5 }),
      ).not.toThrow();
    }
  });

  it('keeps no timer that holds the process open', () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const ca = newCa();
    ca.identity(PATH, { ttl: 10 * MINUTE });
    ca.issue('/one-off', { ttl: 10 * MINUTE });
    ca.rotateRoot();
    expect(timers()).toBe(before);
  });
});

describe('createLocalCa: rotateRoot()', () => {
  it('publishes the new root to everyone before any SVID signed by it: no outage', async () => {
    const ca = newCa();
    const names = ['a', 'b', 'c'];
    const sources = new Map(names.map((n) => [n, ca.identity(`/ns/demo/sa/${n}`)]));
    const latest = new Map<string, WorkloadIdentity>();
    for (const [name, source] of sources) latest.set(name, source.current());
    const oldRoots = rootsOf(ca.bundles());
    expect(oldRoots).toHaveLength(1);
    const oldOnly = ca.bundles();

    const updates: { name: string; identity: WorkloadIdentity }[] = [];
    const outages: string[] = [];
    for (const [name, source] of sources) {
      source.subscribe((identity) => {
        updates.push({ name, identity });
        latest.set(name, identity);
        // At every published update, every identity's SVID verifies against every other's bundles.
        for (const [x, ix] of latest) {
          for (const [y, iy] of latest) {
            if (!verifies(ix.svid, iy.bundles)) outages.push(`after update ${updates.length}: ${x} -> ${y}`);
          }
        }
      });
    }

    ca.rotateRoot();
    expect(outages).toEqual([]);

    const newRoots = rootsOf(ca.bundles());
    expect(newRoots).toHaveLength(1);
    expect(newRoots[0]).not.toBe(oldRoots[0]);
    const newOnly = ca.bundles();
    for (const name of names) {
      const seen = updates.filter((u) => u.name === name).map((u) => u.identity);
      expect(seen.length).toBeGreaterThanOrEqual(3);
      // First: the bundle has both roots, the SVID is still the old-root one.
      const [both, reissued, ...rest] = seen as [WorkloadIdentity, WorkloadIdentity, ...WorkloadIdentity[]];
      expect(rootsOf(both.bundles).sort()).toEqual([...oldRoots, ...newRoots].sort());
      expect(verifies(both.svid, oldOnly)).toBe(true);
      // Then: an SVID signed by the new root (still with both roots trusted).
      expect(reissued.svid.leaf.serialNumber).not.toBe(both.svid.leaf.serialNumber);
      expect(verifies(reissued.svid, oldOnly)).toBe(false);
      expect(verifies(reissued.svid, newOnly)).toBe(true);
      expect(rootsOf(reissued.bundles)).toHaveLength(2);
      // Finally the old root is dropped once nobody uses it.
      const last = seen.at(-1) as WorkloadIdentity;
      expect(rootsOf(last.bundles)).toEqual(newRoots);
      expect(rest.length).toBeLessThanOrEqual(1);
      const generations = seen.map((i) => i.generation);
      expect(generations).toEqual(generations.map((_, i) => i + 2));
      expect(sources.get(name)?.current()).toBe(last);
    }
  });

  it('keeps the old root in the bundle while a one-off SVID issued under it is valid', async () => {
    const ca = newCa();
    const source = ca.identity(PATH);
    const { updates } = record(source);
    const oneOff = ca.issue('/ns/batch/sa/job', { ttl: 500 });
    const oldRoot = rootsOf(ca.bundles());
    ca.rotateRoot();
    expect(ca.bundle().authorities).toHaveLength(2);
    expect(rootsOf(ca.bundles())).toContain(oldRoot[0]);
    // The identity moved to the new root, and still trusts the one-off SVID's root.
    const now = source.current();
    expect(
      verifies(
        now.svid,
        BundleSet.of(X509Bundle.fromCertificates(TD, ca.bundle().authorities[1] as X509Certificate)),
      ),
    ).toBe(true);
    expect(verifies(oneOff, now.bundles)).toBe(true);

    await vi.waitFor(() => expect(ca.bundle().authorities).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expect(Date.now()).toBeGreaterThan(oneOff.notAfter.getTime());
    expect(rootsOf(ca.bundles())).not.toContain(oldRoot[0]);
    // The identity was told.
    expect(rootsOf(source.current().bundles)).toEqual(rootsOf(ca.bundles()));
    expect(rootsOf((updates.at(-1) as WorkloadIdentity).bundles)).toHaveLength(1);
  });

  it('rotates an intermediate CA too', () => {
    const ca = newCa({ intermediate: true });
    const source = ca.identity(PATH);
    const before = source.current().svid;
    ca.rotateRoot();
    const after = source.current().svid;
    expect(after.certificates).toHaveLength(2);
    expect(after.certificates[1]?.fingerprint256).not.toBe(before.certificates[1]?.fingerprint256);
    expect(verifies(after, ca.bundles())).toBe(true);
    expect(verifies(before, ca.bundles())).toBe(false);
  });
});

describe('createLocalCa: plug-in CA (Istio cacerts)', () => {
  let pki: PluginCas;
  beforeAll(() => {
    pki = makePluginCas();
  });

  it('issues under a given intermediate; leaves chain to the given root', () => {
    const ca = newCa({
      root: { certificate: pki.root.certificate },
      intermediate: { certificate: pki.intermediate.certificate, key: pki.intermediate.key },
    });
    const svid = ca.issue(PATH);
    expect(svid.certificates).toHaveLength(2);
    expect(svid.certificates[1]?.raw.equals(new X509Certificate(pki.intermediate.certificate).raw)).toBe(
      true,
    );
    const bundle = X509Bundle.parse(TD, pki.root.certificate);
    expect(ca.bundle().equals(bundle)).toBe(true);
    expect(verifyPeerChain(svid.certificates, bundle).id.toString()).toBe(ID);
    const [leafPem, intPem] = svid.certificates.map((c) => c.toString());
    expect(
      opensslVerify(leafPem as string, intPem as string, pki.root.certificate, ['-purpose', 'sslclient']),
    ).toMatch(/: OK/);
    // Identities work too.
    expect(verifies(ca.identity(PATH).current().svid, bundle)).toBe(true);
  });

  it("refuses rotateRoot(): a self-made root must not replace the operator's root", () => {
    const ca = newCa({
      root: { certificate: pki.root.certificate },
      intermediate: { certificate: pki.intermediate.certificate, key: pki.intermediate.key },
    });
    const before = ca.bundle();
    const err = expectCode(() => ca.rotateRoot(), 'ERR_OPTION_INVALID');
    expect(err.detail.field).toBe('root');
    expect(ca.bundle().equals(before)).toBe(true);
    // Control: a CA with generated roots rotates.
    const own = newCa({});
    own.issue(PATH); // a live leaf keeps the old root in the bundle
    own.rotateRoot();
    expect(own.bundle().authorities).toHaveLength(2);
  });

  it('drops the root from an intermediate chain file that carries it (cert-chain.pem)', () => {
    const ca = newCa({
      root: { certificate: pki.root.certificate },
      intermediate: {
        certificate: pki.intermediate.certificate + pki.root.certificate,
        key: pki.intermediate.key,
      },
    });
    expect(ca.issue(PATH).certificates).toHaveLength(2);
  });

  it('issues under a given root with its key (no intermediate)', () => {
    const ca = newCa({ root: { certificate: pki.root.certificate, key: pki.root.key } });
    const svid = ca.issue(PATH);
    expect(svid.certificates).toHaveLength(1);
    expect(verifyPeerChain(svid.certificates, X509Bundle.parse(TD, pki.root.certificate)).id.toString()).toBe(
      ID,
    );
  });

  it('refuses a key that does not match (ERR_KEY_MISMATCH)', () => {
    let err = thrownBy(
      () =>
        createLocalCa({
          trustDomain: TD,
          root: { certificate: pki.root.certificate, key: pki.otherRoot.key },
        }),
      'ERR_KEY_MISMATCH',
    );
    expect(err.detail.field).toBe('root.key');
    err = thrownBy(
      () =>
        createLocalCa({
          trustDomain: TD,
          root: { certificate: pki.root.certificate },
          intermediate: { certificate: pki.intermediate.certificate, key: pki.root.key },
        }),
      'ERR_KEY_MISMATCH',
    );
    expect(err.detail.field).toBe('intermediate.key');
  });

  it('refuses an intermediate the root did not issue (ERR_SVID_CHAIN_ORDER)', () => {
    const err = thrownBy(
      () =>
        createLocalCa({
          trustDomain: TD,
          root: { certificate: pki.root.certificate },
          intermediate: {
            certificate: pki.foreignIntermediate.certificate,
            key: pki.foreignIntermediate.key,
          },
        }),
      'ERR_SVID_CHAIN_ORDER',
    );
    expect(err.detail.field).toBe('intermediate.certificate');
  });

  it('refuses a root or intermediate that is not a CA (ERR_SVID_SIGNER_*)', () => {
    const asRoot = thrownBy(() =>
      createLocalCa({ trustDomain: TD, root: { certificate: pki.notCa.certificate, key: pki.notCa.key } }),
    );
    expect(asRoot.code).toMatch(/^ERR_SVID_SIGNER_/);
    const asIntermediate = thrownBy(() =>
      createLocalCa({
        trustDomain: TD,
        root: { certificate: pki.root.certificate },
        intermediate: { certificate: pki.notCa.certificate, key: pki.notCa.key },
      }),
    );
    expect(asIntermediate.code).toMatch(/^ERR_SVID_SIGNER_/);
  });

  it('refuses an intermediate without the root that issued it (it would be ignored)', () => {
    const err = thrownBy(
      () =>
        createLocalCa({
          trustDomain: TD,
          intermediate: { certificate: pki.intermediate.certificate, key: pki.intermediate.key },
        }),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe('root');
  });

  it('refuses a root without a key and no intermediate, a generated intermediate, and two roots', () => {
    expect(
      thrownBy(
        () => createLocalCa({ trustDomain: TD, root: { certificate: pki.root.certificate } }),
        'ERR_OPTION_INVALID',
      ).detail.field,
    ).toBe('root.key');
    thrownBy(
      () =>
        createLocalCa({
          trustDomain: TD,
          root: { certificate: pki.root.certificate, key: pki.root.key },
          intermediate: true,
        }),
      'ERR_OPTION_INVALID',
    );
    expect(
      thrownBy(
        () =>
          createLocalCa({
            trustDomain: TD,
            root: { certificate: pki.root.certificate + pki.otherRoot.certificate, key: pki.root.key },
          }),
        'ERR_CERTIFICATE_INVALID',
      ).message,
    ).toContain('root.certificate');
    thrownBy(() => createLocalCa({ trustDomain: TD, root: 'root.pem' as never }), 'ERR_OPTION_INVALID');
  });
});

describe('createLocalCa: close()', () => {
  it('stops every identity and refuses further use with ERR_SOURCE_CLOSED', async () => {
    const ca = createLocalCa({ trustDomain: TD });
    const a = ca.identity('/a', { ttl: 400 });
    const b = ca.identity('/b', { ttl: 400 });
    const listener = vi.fn();
    a.subscribe(listener);
    await ca.close();
    await ca.close();
    thrownBy(() => a.current(), 'ERR_NO_IDENTITY');
    thrownBy(() => b.current(), 'ERR_NO_IDENTITY');
    thrownBy(() => ca.issue('/c'), 'ERR_SOURCE_CLOSED');
    thrownBy(() => ca.identity('/c'), 'ERR_SOURCE_CLOSED');
    thrownBy(() => ca.rotateRoot(), 'ERR_SOURCE_CLOSED');
    expect(listener).not.toHaveBeenCalled();
    // The bundle stays readable: peers may still need to verify against it.
    expect(ca.bundle().authorities).toHaveLength(1);
  });

  it('leaves no timer behind, even with an old root kept for a one-off SVID', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const ca = createLocalCa({ trustDomain: TD });
      ca.identity('/a', { ttl: 10 * MINUTE });
      ca.issue('/one-off', { ttl: 10 * MINUTE });
      ca.rotateRoot();
      expect(vi.getTimerCount()).toBeGreaterThan(0);
      await ca.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('Symbol.asyncDispose closes it', async () => {
    const ca = createLocalCa({ trustDomain: TD });
    const source = ca.identity('/a');
    await ca[Symbol.asyncDispose]();
    thrownBy(() => source.current(), 'ERR_NO_IDENTITY');
    thrownBy(() => ca.issue('/a'), 'ERR_SOURCE_CLOSED');
  });
});

afterAll(() => {
  vi.useRealTimers();
});
