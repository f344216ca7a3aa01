import { describe, expect, it, vi } from 'vitest';
import { workloadApiBundles } from '../../src/identity/workload-api-bundles.js';
import { type BundleSet, createLocalCa, verifyPeerChain } from '../../src/index.js';
import { expectCode, rejectionOf } from '../helpers/expect-code.js';
import { afterFile, nextUpdate, record, sleep, startFake, track } from '../helpers/identity-sources.js';

const FAST = { initialDelay: 10, maxDelay: 50 };

describe('workloadApiBundles', () => {
  it('serves the bundles of the trust domain and federated ones, following every change', async () => {
    const fake = await startFake();
    const partner = createLocalCa({ trustDomain: 'partner.example' });
    afterFile(() => partner.close());
    const source = track(workloadApiBundles({ address: fake.address, retry: FAST }));
    const events = record<BundleSet>(source);
    const bundles = await source.ready({ timeout: 5_000 });
    expect(bundles.trustDomains().map((td) => td.name)).toEqual(['cluster.local']);
    expect(bundles.get('cluster.local')?.equals(fake.ca.bundle())).toBe(true);
    expect(source.current()).toBe(bundles);
    const ours = fake.svids()[0];
    expect(ours && verifyPeerChain(ours.certificates, source.current()).id.toString()).toContain(
      'cluster.local',
    );

    let next = nextUpdate(source);
    fake.setFederated('partner.example', partner.bundle());
    expect((await next).has('partner.example')).toBe(true);
    expect(verifyPeerChain(partner.issue('/api').certificates, source.current()).id.toString()).toBe(
      'spiffe://partner.example/api',
    );
    next = nextUpdate(source);
    fake.setFederated('partner.example', null);
    expect((await next).has('partner.example')).toBe(false);
    expect(events.updates).toHaveLength(3);
    expect(fake.calls().FetchX509Bundles).toBe(1);
  });

  it.each(['not-protobuf', 'no-bundles', 'bundles-bad-key', 'bundles-garbage'] as const)(
    'discards a %s message and keeps the last good bundles',
    async (kind) => {
      const fake = await startFake();
      const source = track(workloadApiBundles({ address: fake.address, retry: FAST }));
      const events = record<BundleSet>(source);
      const good = await source.ready({ timeout: 5_000 });
      expect(fake.sendMalformed(kind)).toBe(1);
      await vi.waitFor(() => expect(events.errors).toHaveLength(1));
      expect(events.errors[0]?.code).toBe('ERR_WORKLOAD_API_RESPONSE_INVALID');
      expect(events.errors[0]?.message).toMatch(/^Workload API X509BundlesResponse discarded: /);
      expect(source.current()).toBe(good);
    },
  );

  it('does not send SVID-stream kinds on the bundles stream', async () => {
    const fake = await startFake();
    const source = track(workloadApiBundles({ address: fake.address, retry: FAST }));
    record<BundleSet>(source);
    await source.ready({ timeout: 5_000 });
    expect(fake.sendMalformed('id-mismatch')).toBe(0);
    expect(fake.sendMalformed('not-protobuf')).toBe(1);
  });

  it('withdraws the bundles on PERMISSION_DENIED (verify nothing), and recovers', async () => {
    const fake = await startFake();
    const source = track(workloadApiBundles({ address: fake.address, retry: FAST }));
    const events = record<BundleSet>(source);
    await source.ready({ timeout: 5_000 });
    fake.deny();
    await vi.waitFor(() => expect(events.withdrawn).toHaveLength(1));
    expectCode(() => source.current(), 'ERR_NO_IDENTITY');
    const next = nextUpdate(source);
    fake.serve();
    await next;
    expect(source.current().has('cluster.local')).toBe(true);
  });

  it('does not retry UNIMPLEMENTED, and names the address on a timeout', async () => {
    const fake = await startFake();
    fake.fail('UNIMPLEMENTED');
    const source = track(workloadApiBundles({ address: fake.address, retry: FAST }));
    record<BundleSet>(source);
    await rejectionOf(source.ready({ timeout: 5_000 }), 'ERR_WORKLOAD_API_FAILED');
    await sleep(100);
    expect(fake.calls().FetchX509Bundles).toBe(1);

    fake.fail('UNAVAILABLE');
    const retried = track(workloadApiBundles({ address: fake.address, retry: FAST }));
    record<BundleSet>(retried);
    const err = await rejectionOf(retried.ready({ timeout: 200 }), 'ERR_WORKLOAD_API_UNAVAILABLE');
    expect(err.message).toMatch(
      /^no X\.509 bundles from the Workload API at unix:.* after 200 ms: last gRPC status UNAVAILABLE/,
    );
  });

  it('closes idempotently', async () => {
    const fake = await startFake();
    const source = workloadApiBundles({ address: fake.address, retry: FAST });
    await source.ready({ timeout: 5_000 });
    await source.close();
    await source.close();
    await vi.waitFor(() => expect(fake.openStreams()).toBe(0));
    expectCode(() => source.current(), 'ERR_NO_IDENTITY');
  });
});
