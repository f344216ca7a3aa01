import { inspect } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import {
  type WorkloadApiIdentityOptions,
  workloadApiIdentity,
} from '../../src/identity/workload-api-identity.js';
import { createLocalCa, verifyPeerChain } from '../../src/index.js';
import { expectCode, rejectionOf } from '../helpers/expect-code.js';
import { afterFile, nextUpdate, record, sleep, startFake, track } from '../helpers/identity-sources.js';
import { assertNoKeyMaterial } from '../helpers/key-material.js';

const FAST = { initialDelay: 10, maxDelay: 50 };
const WEB = '/ns/demo/sa/web';

function open(address: string, options: Omit<WorkloadApiIdentityOptions, 'address'> = {}) {
  return track(workloadApiIdentity({ address, retry: FAST, ...options }));
}

describe('workloadApiIdentity: serving', () => {
  it('resolves ready() with the first SVID, verified against the bundle of its trust domain', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = open(fake.address);
    const identity = await source.ready({ timeout: 5_000 });
    expect(identity.svid.id.toString()).toBe(`spiffe://cluster.local${WEB}`);
    expect(identity.svid.leaf.serialNumber).toBe(fake.svids()[0]?.leaf.serialNumber);
    expect(identity.generation).toBe(1);
    expect(identity.bundles.trustDomains().map((td) => td.name)).toEqual(['cluster.local']);
    expect(verifyPeerChain(identity.svid.certificates, identity.bundles).id.equals(identity.svid.id)).toBe(
      true,
    );
    expect(source.current()).toBe(identity);
    expect(fake.openStreams()).toBe(1);
  });

  it('works over loopback TCP as well', async () => {
    const fake = await startFake({ transport: 'tcp', trustDomain: 'example.org', svids: ['/tcp'] });
    expect(fake.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const { svid } = await open(fake.address).ready({ timeout: 5_000 });
    expect(svid.id.toString()).toBe('spiffe://example.org/tcp');
  });

  it('takes SPIFFE_ENDPOINT_SOCKET when no address is given', async () => {
    const fake = await startFake({ svids: [WEB] });
    vi.stubEnv('SPIFFE_ENDPOINT_SOCKET', fake.address);
    try {
      const source = track(workloadApiIdentity({ retry: FAST }));
      await expect(source.ready({ timeout: 5_000 })).resolves.toMatchObject({ generation: 1 });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('applies a rotation pushed on the stream: subscribers and `update` get the new SVID', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = open(fake.address);
    const events = record(source);
    const first = await source.ready({ timeout: 5_000 });
    const next = nextUpdate(source);
    const [rotated] = fake.rotate();
    const identity = await next;
    expect(identity.generation).toBe(first.generation + 1);
    expect(identity.svid.leaf.serialNumber).toBe(rotated?.leaf.serialNumber);
    expect(identity.svid.leaf.serialNumber).not.toBe(first.svid.leaf.serialNumber);
    expect(source.current()).toBe(identity);
    expect(events.updates).toEqual([first, identity]);
    expect(events.errors).toEqual([]);
  });

  it('follows a root rotation of the CA: trust first, then the new SVID', async () => {
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    afterFile(() => ca.close());
    const fake = await startFake({ ca, svids: [WEB] });
    const source = open(fake.address);
    await source.ready({ timeout: 5_000 });
    ca.rotateRoot();
    const next = nextUpdate(source);
    fake.rotate();
    const identity = await next;
    expect(identity.bundles.get('cluster.local')?.authorities).toHaveLength(2);
    expect(verifyPeerChain(identity.svid.certificates, identity.bundles).id.toString()).toContain(WEB);
  });

  it('never shows key material in inspect() or events', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = open(fake.address);
    const events = record(source);
    const identity = await source.ready({ timeout: 5_000 });
    fake.sendMalformed('id-mismatch');
    await vi.waitFor(() => expect(events.errors).toHaveLength(1));
    const text = [
      inspect(source),
      inspect(identity, { depth: 5 }),
      JSON.stringify(identity.svid),
      inspect(events, { depth: 8 }),
    ];
    assertNoKeyMaterial(text.join('\n'), [identity.svid.privateKey]);
    expect(inspect(source)).toMatch(
      /^WorkloadApiIdentity\(unix:\/\/\/.*agent\.sock, spiffe:\/\/cluster\.local\/ns\/demo\/sa\/web, generation 1\)$/,
    );
  });
});

describe('workloadApiIdentity: several SVIDs and pick', () => {
  const specs = [
    WEB,
    { path: '/ns/demo/sa/admin', hint: 'admin' },
    { path: '/ns/demo/sa/other', hint: 'admin' },
  ];

  it('presents the first SVID by default and keeps the others, in order', async () => {
    const fake = await startFake({ svids: specs });
    const { svid, svids } = await open(fake.address).ready({ timeout: 5_000 });
    expect(svid.id.path).toBe(WEB);
    expect(svids.map((s) => s.id.path)).toEqual([WEB, '/ns/demo/sa/admin', '/ns/demo/sa/other']);
    expect(svids[1]?.hint).toBe('admin');
  });

  it('picks by hint (the first of a duplicate hint wins) and by SPIFFE ID', async () => {
    const fake = await startFake({ svids: specs });
    const byHint = await open(fake.address, { pick: { hint: 'admin' } }).ready({ timeout: 5_000 });
    expect(byHint.svid.id.path).toBe('/ns/demo/sa/admin');
    expect(byHint.svids.map((s) => s.id.path)).toEqual(['/ns/demo/sa/admin', WEB, '/ns/demo/sa/other']);
    const byId = await open(fake.address, { pick: { id: 'spiffe://cluster.local/ns/demo/sa/other' } }).ready({
      timeout: 5_000,
    });
    expect(byId.svid.id.path).toBe('/ns/demo/sa/other');
  });

  it('waits for a picked SVID that is not served, and reports why', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = open(fake.address, { pick: { hint: 'missing' } });
    const events = record(source);
    const err = await rejectionOf(source.ready({ timeout: 300 }), 'ERR_TIMEOUT');
    expect(err.message).toContain('does not send the SVID with hint "missing"');
    expect(events.errors[0]?.code).toBe('ERR_NO_IDENTITY');
    const next = nextUpdate(source);
    fake.setSvids([WEB, { path: '/ns/demo/sa/late', hint: 'missing' }]);
    expect((await next).svid.id.path).toBe('/ns/demo/sa/late');
  });

  it('withdraws the identity when a later message no longer holds the picked SVID (redaction)', async () => {
    const fake = await startFake({ svids: specs });
    const source = open(fake.address, { pick: { id: 'spiffe://cluster.local/ns/demo/sa/admin' } });
    const events = record(source);
    await source.ready({ timeout: 5_000 });
    fake.setSvids([WEB]);
    await vi.waitFor(() => expect(events.withdrawn).toHaveLength(1));
    expect(expectCode(() => source.current(), 'ERR_NO_IDENTITY').message).toContain('/ns/demo/sa/admin');
    const next = nextUpdate(source);
    fake.setSvids(specs);
    expect((await next).svid.id.path).toBe('/ns/demo/sa/admin');
    expect(source.current().svid.id.path).toBe('/ns/demo/sa/admin');
  });
});

describe('workloadApiIdentity: federated bundles', () => {
  it('adds, replaces and removes federated bundles; an empty map drops them all', async () => {
    const fake = await startFake({ svids: [WEB] });
    const partner = createLocalCa({ trustDomain: 'partner.example' });
    const other = createLocalCa({ trustDomain: 'other.example' });
    const partner2 = createLocalCa({ trustDomain: 'partner.example' });
    afterFile(() => Promise.all([partner.close(), other.close(), partner2.close()]));
    const source = open(fake.address);
    await source.ready({ timeout: 5_000 });
    const names = () =>
      source
        .current()
        .bundles.trustDomains()
        .map((td) => td.name)
        .sort();

    let next = nextUpdate(source);
    fake.setFederated('partner.example', partner.bundle());
    await next;
    next = nextUpdate(source);
    fake.setFederated('spiffe://other.example', other.bundle());
    await next;
    expect(names()).toEqual(['cluster.local', 'other.example', 'partner.example']);
    // Each federated bundle anchors its own trust domain only.
    const partnerSvid = partner.issue('/api');
    expect(verifyPeerChain(partnerSvid.certificates, source.current().bundles).id.toString()).toBe(
      'spiffe://partner.example/api',
    );

    next = nextUpdate(source);
    fake.setFederated('partner.example', partner2.bundle());
    await next;
    expect(source.current().bundles.get('partner.example')?.equals(partner2.bundle())).toBe(true);
    expectCode(
      () => verifyPeerChain(partnerSvid.certificates, source.current().bundles),
      'ERR_SVID_UNTRUSTED',
    );

    next = nextUpdate(source);
    fake.setFederated('partner.example', null);
    await next;
    expect(names()).toEqual(['cluster.local', 'other.example']);
    next = nextUpdate(source);
    fake.setFederated('other.example', null);
    await next;
    // The message's federated_bundles map is empty: every federated bundle is gone.
    expect(names()).toEqual(['cluster.local']);
  });
});

describe('workloadApiIdentity: close', () => {
  it('is idempotent, ends the stream, stops retrying, and works with await using', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = workloadApiIdentity({ address: fake.address, retry: FAST });
    await source.ready({ timeout: 5_000 });
    await source.close();
    await source.close();
    await vi.waitFor(() => expect(fake.openStreams()).toBe(0));
    expectCode(() => source.current(), 'ERR_NO_IDENTITY');
    await rejectionOf(source.ready(), 'ERR_SOURCE_CLOSED');
    const calls = fake.calls().FetchX509SVID;
    fake.endStream();
    await sleep(100);
    expect(fake.calls().FetchX509SVID).toBe(calls);

    {
      await using disposable = workloadApiIdentity({ address: fake.address, retry: FAST });
      await disposable.ready({ timeout: 5_000 });
    }
    await vi.waitFor(() => expect(fake.openStreams()).toBe(0));
  });

  it('rejects a pending ready() when closed', async () => {
    const fake = await startFake({ svids: [WEB] });
    fake.delayFirstResponse(10_000);
    const source = workloadApiIdentity({ address: fake.address, retry: FAST });
    const pending = source.ready({ timeout: 5_000 });
    await source.close();
    await rejectionOf(pending, 'ERR_SOURCE_CLOSED');
    fake.delayFirstResponse(0);
  });
});
