import { afterAll, describe, expect, it, vi } from 'vitest';
import { IdentityPublisher, validateIdentityUpdate } from '../../src/identity/publisher.js';
import type { WorkloadIdentity } from '../../src/identity/source.js';
import { createLocalCa } from '../../src/index.js';
import { rejectionOf, thrownBy } from '../helpers/expect-code.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const rogue = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(async () => {
  await Promise.all([ca.close(), rogue.close()]);
});

const MISSING = 'the socket /run/spire/agent.sock did not answer';

function publisher(): IdentityPublisher {
  return new IdentityPublisher(() => MISSING);
}

describe('IdentityPublisher.ready', () => {
  it('rejects with ERR_TIMEOUT naming what is missing', async () => {
    const p = publisher();
    const err = await rejectionOf(p.ready({ timeout: 20 }), 'ERR_TIMEOUT');
    expect(err.message).toContain(MISSING);
    expect(err.message).toContain('20 ms');
  });

  it('names the withdrawal reason in the timeout when the identity was withdrawn', async () => {
    const p = publisher();
    p.publish([ca.issue('/a')], ca.bundles());
    p.withdraw('PERMISSION_DENIED from the Workload API');
    const err = await rejectionOf(p.ready({ timeout: 10 }), 'ERR_TIMEOUT');
    expect(err.message).toContain('PERMISSION_DENIED from the Workload API');
  });

  it('rejects with ERR_ABORTED when the signal aborts, with the reason as cause', async () => {
    const p = publisher();
    const controller = new AbortController();
    const pending = p.ready({ signal: controller.signal, timeout: 10_000 });
    const reason = new Error('shutting down');
    controller.abort(reason);
    const err = await rejectionOf(pending, 'ERR_ABORTED');
    expect(err.cause).toBe(reason);
  });

  it('rejects at once with ERR_ABORTED for a signal already aborted', async () => {
    const p = publisher();
    await rejectionOf(p.ready({ signal: AbortSignal.abort() }), 'ERR_ABORTED');
  });

  it('refuses a bad timeout', async () => {
    const p = publisher();
    for (const timeout of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const err = await rejectionOf(p.ready({ timeout }), 'ERR_OPTION_INVALID');
      expect(err.detail.field).toBe('timeout');
    }
  });

  it('resolves pending waiters on publish, and at once after a publish', async () => {
    const p = publisher();
    const pending = p.ready({ timeout: 5_000 });
    const published = p.publish([ca.issue('/a')], ca.bundles());
    await expect(pending).resolves.toBe(published);
    let settled = false;
    void p.ready({ timeout: 0 }).then(() => {
      settled = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(settled).toBe(true);
  });

  it('a resolved ready() leaves no timer or abort listener behind', async () => {
    vi.useFakeTimers();
    try {
      const p = publisher();
      const controller = new AbortController();
      const pending = p.ready({ signal: controller.signal, timeout: 1_000 });
      expect(vi.getTimerCount()).toBe(1);
      p.publish([ca.issue('/a')], ca.bundles());
      await pending;
      // The expiry warnings' timers stop with close(); a leaked ready() timer would not.
      p.close();
      expect(vi.getTimerCount()).toBe(0);
      controller.abort();
    } finally {
      vi.useRealTimers();
    }
  });

  it('close() rejects pending ready() with ERR_SOURCE_CLOSED, and later ready() too', async () => {
    const p = publisher();
    const pending = p.ready({ timeout: 10_000 });
    p.close();
    p.close();
    await rejectionOf(pending, 'ERR_SOURCE_CLOSED');
    await rejectionOf(p.ready(), 'ERR_SOURCE_CLOSED');
    expect(p.closed).toBe(true);
  });

  it('fail() rejects pending waiters with the given error', async () => {
    const p = publisher();
    const pending = p.ready({ timeout: 10_000 });
    const fatal = new Error('fatal');
    p.fail(fatal);
    await expect(pending).rejects.toBe(fatal);
  });
});

describe('IdentityPublisher.current and publish', () => {
  it('throws ERR_NO_IDENTITY naming what is missing before the first publish', () => {
    const err = thrownBy(() => publisher().current(), 'ERR_NO_IDENTITY');
    expect(err.message).toContain(MISSING);
  });

  it('publishes frozen snapshots with increasing generations', () => {
    const p = publisher();
    const first = ca.issue('/a');
    const second = ca.issue('/b');
    const one = p.publish([first, second], ca.bundles());
    expect(one).toMatchObject({ svid: first, svids: [first, second], generation: 1 });
    expect(Object.isFrozen(one)).toBe(true);
    expect(Object.isFrozen(one.svids)).toBe(true);
    const two = p.publish([second], ca.bundles());
    expect(two.generation).toBe(2);
    expect(p.current()).toBe(two);
    expect(p.peek()).toBe(two);
  });

  it('withdraw() makes current() throw ERR_NO_IDENTITY with the reason, until the next publish', () => {
    const p = publisher();
    p.publish([ca.issue('/a')], ca.bundles());
    p.withdraw('the SVID was removed');
    const err = thrownBy(() => p.current(), 'ERR_NO_IDENTITY');
    expect(err.message).toContain('the SVID was removed');
    expect(p.peek()).toBeUndefined();
    const next = p.publish([ca.issue('/a')], ca.bundles());
    expect(p.current()).toBe(next);
    expect(next.generation).toBe(2);
  });

  it('refuses to publish once closed; current() says it is closed', () => {
    const p = publisher();
    p.publish([ca.issue('/a')], ca.bundles());
    p.close();
    thrownBy(() => p.publish([ca.issue('/a')], ca.bundles()), 'ERR_SOURCE_CLOSED');
    expect(thrownBy(() => p.current(), 'ERR_NO_IDENTITY').message).toMatch(/closed/);
  });
});

describe('IdentityPublisher.subscribe', () => {
  it('calls every listener with each update; unsubscribe stops one', () => {
    const p = publisher();
    const a = vi.fn();
    const b = vi.fn();
    const stopA = p.subscribe(a);
    p.subscribe(b);
    const one = p.publish([ca.issue('/a')], ca.bundles());
    stopA();
    const two = p.publish([ca.issue('/a')], ca.bundles());
    expect(a.mock.calls).toEqual([[one]]);
    expect(b.mock.calls).toEqual([[one], [two]]);
  });

  it('the same listener subscribed twice is called twice, and each unsubscribe removes one', () => {
    const p = publisher();
    const listener = vi.fn();
    const stop1 = p.subscribe(listener);
    p.subscribe(listener);
    p.publish([ca.issue('/a')], ca.bundles());
    expect(listener).toHaveBeenCalledTimes(2);
    stop1();
    p.publish([ca.issue('/a')], ca.bundles());
    expect(listener).toHaveBeenCalledTimes(3);
  });

  it('a throwing subscriber does not stop the others; its error surfaces as an uncaught exception', async () => {
    const p = publisher();
    const boom = new Error('listener bug');
    const seen: WorkloadIdentity[] = [];
    p.subscribe(() => {
      throw boom;
    });
    p.subscribe((identity) => seen.push(identity));
    // The error is rethrown from a microtask, as an EventEmitter listener's would be. Capture it
    // with our own handler in place of vitest's, then put vitest's handlers back.
    const previous = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    let uncaught: unknown;
    try {
      const surfaced = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
      const identity = p.publish([ca.issue('/a')], ca.bundles());
      expect(seen).toEqual([identity]);
      expect(p.current()).toBe(identity);
      uncaught = await surfaced;
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const listener of previous) process.on('uncaughtException', listener);
    }
    expect(uncaught).toBe(boom);
  });

  it('refuses a listener that is not a function', () => {
    thrownBy(() => publisher().subscribe(undefined as never), 'ERR_OPTION_INVALID');
  });

  it('close() drops every listener', () => {
    const p = publisher();
    const listener = vi.fn();
    p.subscribe(listener);
    p.close();
    expect(() => p.publish([ca.issue('/a')], ca.bundles())).toThrow();
    expect(listener).not.toHaveBeenCalled();
  });
});

describe('validateIdentityUpdate', () => {
  it('refuses an empty list of SVIDs', () => {
    const err = thrownBy(() => validateIdentityUpdate([], ca.bundles()), 'ERR_NO_IDENTITY');
    expect(err.message).toMatch(/at least one SVID/);
  });

  it('accepts SVIDs that verify, and refuses the whole update when one does not', () => {
    const good = ca.issue('/a');
    expect(() => validateIdentityUpdate([good], ca.bundles())).not.toThrow();
    thrownBy(() => validateIdentityUpdate([good, rogue.issue('/b')], ca.bundles()), 'ERR_SVID_UNTRUSTED');
  });

  it('checks validity at the given time', () => {
    const svid = ca.issue('/a', { ttl: 60_000 });
    thrownBy(
      () => validateIdentityUpdate([svid], ca.bundles(), svid.notAfter.getTime() + 1),
      'ERR_SVID_EXPIRED',
    );
  });
});
