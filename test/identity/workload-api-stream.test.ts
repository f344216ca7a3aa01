import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { workloadApiIdentity } from '../../src/identity/workload-api-identity.js';
import { backoffDelay } from '../../src/identity/workload-api-stream.js';
import { expectCode, rejectionOf } from '../helpers/expect-code.js';
import { nextUpdate, record, sleep, startFake, tempDir, track } from '../helpers/identity-sources.js';

const FAST = { initialDelay: 10, maxDelay: 50 };
const WEB = '/ns/demo/sa/web';

describe('backoffDelay: capped exponential backoff with jitter', () => {
  const retry = { initialDelay: 100, maxDelay: 1_000 };
  const cases = [
    { attempt: 1, base: 100 },
    { attempt: 2, base: 200 },
    { attempt: 3, base: 400 },
    { attempt: 4, base: 800 },
    { attempt: 5, base: 1_000 },
    { attempt: 60, base: 1_000 },
    { attempt: 10_000, base: 1_000 },
  ];
  it.each(cases)('attempt $attempt draws from [base/2, base] with base $base', ({ attempt, base }) => {
    expect(backoffDelay(attempt, retry, 0)).toBe(base / 2);
    expect(backoffDelay(attempt, retry, 0.999_999)).toBe(base);
    for (let i = 0; i < 20; i++) {
      const delay = backoffDelay(attempt, retry, Math.random());
      expect(delay).toBeGreaterThanOrEqual(base / 2);
      expect(delay).toBeLessThanOrEqual(base);
    }
  });
});

describe('workloadApiIdentity: stream failures', () => {
  it('retries UNAVAILABLE with growing, capped, jittered delays and resets after a good message', async () => {
    const fake = await startFake({ svids: [WEB] });
    const retry = { initialDelay: 10, maxDelay: 40 };
    const source = track(workloadApiIdentity({ address: fake.address, retry }));
    const events = record(source);
    const first = await source.ready({ timeout: 5_000 });
    fake.unavailable();
    await vi.waitFor(() => expect(events.retries.length).toBeGreaterThanOrEqual(6), { timeout: 5_000 });
    // The identity is not withdrawn by an unavailable agent: it stays until it expires.
    expect(source.current()).toBe(first);
    expect(events.withdrawn).toEqual([]);
    const failures = events.retries.slice(0, 6);
    failures.forEach((info, i) => {
      const base = Math.min(40, 10 * 2 ** i);
      expect(info.attempt).toBe(i + 1);
      expect(info.delay).toBeGreaterThanOrEqual(base / 2);
      expect(info.delay).toBeLessThanOrEqual(base);
      expect(info.status).toMatch(/^UNAVAILABLE \(14\)/);
    });
    expect(events.errors.every((e) => e.code === 'ERR_WORKLOAD_API_UNAVAILABLE')).toBe(true);
    expect(events.errors[0]?.message).toContain(fake.address);

    const next = nextUpdate(source);
    fake.serve();
    await next;
    const before = events.retries.length;
    fake.endStream();
    await vi.waitFor(() => expect(events.retries.length).toBe(before + 1));
    expect(events.retries[before]?.attempt).toBe(1);
    expect(events.retries[before]?.status).toBe('OK (0): the server ended the stream');
  });

  it('calls again at once after the server ends the stream, keeping the identity', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    const events = record(source);
    const first = await source.ready({ timeout: 5_000 });
    const next = nextUpdate(source);
    expect(fake.endStream()).toBe(1);
    expect(source.current()).toBe(first);
    await next;
    expect(fake.calls().FetchX509SVID).toBe(2);
    expect(events.errors).toEqual([]);
  });

  it('withdraws the identity on PERMISSION_DENIED after it was served, until a new SVID arrives', async () => {
    const fake = await startFake({ svids: [WEB] });
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    const events = record(source);
    await source.ready({ timeout: 5_000 });
    fake.deny();
    await vi.waitFor(() => expect(events.withdrawn).toHaveLength(1));
    expect(events.withdrawn[0]?.code).toBe('ERR_NO_IDENTITY');
    expect(events.withdrawn[0]?.message).toContain('PERMISSION_DENIED (7)');
    const err = expectCode(() => source.current(), 'ERR_NO_IDENTITY');
    expect(err.message).toContain('PERMISSION_DENIED');
    // Still denied: it keeps calling with backoff, and stays withdrawn.
    await vi.waitFor(() => expect(fake.calls().FetchX509SVID).toBeGreaterThanOrEqual(3));
    expectCode(() => source.current(), 'ERR_NO_IDENTITY');
    const timedOut = await rejectionOf(source.ready({ timeout: 100 }), 'ERR_WORKLOAD_API_UNAVAILABLE');
    expect(timedOut.message).toContain('PERMISSION_DENIED');
    expect(timedOut.message).toContain('identity withdrawn');

    const next = nextUpdate(source);
    fake.serve();
    const back = await next;
    expect(source.current()).toBe(back);
    expect(back.generation).toBe(2);
  });

  it('does not withdraw anything on PERMISSION_DENIED before an identity, and serves once allowed', async () => {
    const fake = await startFake({ svids: [WEB] });
    fake.deny();
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    const events = record(source);
    const ready = source.ready({ timeout: 5_000 });
    await vi.waitFor(() => expect(events.retries.length).toBeGreaterThanOrEqual(2));
    expect(events.withdrawn).toEqual([]);
    fake.serve();
    await expect(ready).resolves.toMatchObject({ generation: 1 });
  });

  it.each(['INVALID_ARGUMENT', 'UNIMPLEMENTED'] as const)(
    'does not retry %s: ready() rejects with ERR_WORKLOAD_API_FAILED',
    async (status) => {
      const fake = await startFake({ svids: [WEB] });
      fake.fail(status);
      const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
      const events = record(source);
      const err = await rejectionOf(source.ready({ timeout: 5_000 }), 'ERR_WORKLOAD_API_FAILED');
      expect(err.message).toContain(fake.address);
      expect(err.message).toContain(status);
      expect(err.message).toContain('not retried');
      await rejectionOf(source.ready(), 'ERR_WORKLOAD_API_FAILED');
      await sleep(150);
      expect(fake.calls().FetchX509SVID).toBe(1);
      expect(events.retries).toEqual([]);
      expect(events.errors.map((e) => e.code)).toEqual(['ERR_WORKLOAD_API_FAILED']);
    },
  );

  it('retries other statuses (INTERNAL) like UNAVAILABLE', async () => {
    const fake = await startFake({ svids: [WEB] });
    fake.fail('INTERNAL');
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    const ready = source.ready({ timeout: 5_000 });
    await vi.waitFor(() => expect(fake.calls().FetchX509SVID).toBeGreaterThanOrEqual(2));
    fake.serve();
    await expect(ready).resolves.toMatchObject({ generation: 1 });
  });
});

describe('workloadApiIdentity: ready() is bounded and says why', () => {
  it('names the address and the last gRPC status when nothing listens', async () => {
    const address = `unix://${join(tempDir(), 'missing.sock')}`;
    const source = track(workloadApiIdentity({ address, retry: FAST }));
    const err = await rejectionOf(source.ready({ timeout: 300 }), 'ERR_WORKLOAD_API_UNAVAILABLE');
    expect(err.message).toMatch(
      /^no X509-SVID from the Workload API at unix:\/\/\/.*missing\.sock after 300 ms: last gRPC status UNAVAILABLE \(14\)/,
    );
    expect(err.message).toMatch(/\d+ call\(s\)/);
    expectCode(() => source.current(), 'ERR_NO_IDENTITY');
  });

  it('says the call is open when the agent accepted it but sent nothing', async () => {
    const fake = await startFake({ svids: [WEB] });
    fake.delayFirstResponse(600);
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    const err = await rejectionOf(source.ready({ timeout: 200 }), 'ERR_TIMEOUT');
    expect(err.message).toContain(fake.address);
    expect(err.message).toContain('no gRPC status yet (the call is open');
    // The delayed first message still arrives.
    await expect(source.ready({ timeout: 5_000 })).resolves.toMatchObject({ generation: 1 });
  });

  it('names the last discarded message when every message was invalid', async () => {
    const fake = await startFake({ svids: [WEB] });
    fake.delayFirstResponse(5_000);
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    await vi.waitFor(() => expect(fake.openStreams()).toBe(1));
    fake.sendMalformed('missing-key');
    const err = await rejectionOf(source.ready({ timeout: 300 }), 'ERR_WORKLOAD_API_RESPONSE_INVALID');
    expect(err.message).toContain('svids[0].x509_svid_key is required');
    expect(err.cause).toBeDefined();
  });

  it('stops waiting on abort, with ERR_ABORTED', async () => {
    const address = `unix://${join(tempDir(), 'missing.sock')}`;
    const source = track(workloadApiIdentity({ address, retry: FAST }));
    const controller = new AbortController();
    const pending = source.ready({ signal: controller.signal });
    controller.abort();
    await rejectionOf(pending, 'ERR_ABORTED');
  });
});

describe('workloadApiIdentity: expiry', () => {
  it('withdraws an SVID that expires without a rotation', async () => {
    const fake = await startFake({ svids: [WEB], ttl: 1_000 });
    const source = track(workloadApiIdentity({ address: fake.address, retry: FAST }));
    const events = record(source);
    const { svid } = await source.ready({ timeout: 5_000 });
    expect(svid.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(2_000);
    await vi.waitFor(() => expect(events.withdrawn).toHaveLength(1), { timeout: 4_000 });
    expect(expectCode(() => source.current(), 'ERR_NO_IDENTITY').message).toContain('expired');
    const next = nextUpdate(source);
    fake.rotate();
    await next;
    expect(source.current().svid.notAfter.getTime()).toBeGreaterThan(Date.now());
  });
});
