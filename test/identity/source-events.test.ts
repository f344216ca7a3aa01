import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdentityPublisher } from '../../src/identity/publisher.js';
import { ExpiryGuard, type IdentitySourceEvents, SourceEvents } from '../../src/identity/source-events.js';
import { createLocalCa, SidecarlessError } from '../../src/index.js';

const error = (message: string) => new SidecarlessError('ERR_WORKLOAD_API_UNAVAILABLE', message, {});

describe('SourceEvents', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('calls listeners in order; on() returns the remover, off() removes too', () => {
    const events = new SourceEvents<IdentitySourceEvents>();
    const seen: string[] = [];
    const stop = events.on('error', (err) => seen.push(`a ${err.message}`));
    const b = (err: SidecarlessError) => seen.push(`b ${err.message}`);
    events.on('error', b);
    events.emit('error', error('one'));
    stop();
    events.emit('error', error('two'));
    events.off('error', b);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    events.emit('error', error('three'));
    expect(seen).toEqual(['a one', 'b one', 'b two']);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('turns an error nobody listens to into one process warning per distinct message, never a throw', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const events = new SourceEvents<IdentitySourceEvents>();
    expect(() => {
      events.emit('error', error('agent down'));
      events.emit('error', error('agent down'));
      events.emit('error', error('agent still down'));
    }).not.toThrow();
    expect(warn.mock.calls).toEqual([
      ['agent down', { type: 'SidecarlessWarning', code: 'ERR_WORKLOAD_API_UNAVAILABLE' }],
      ['agent still down', { type: 'SidecarlessWarning', code: 'ERR_WORKLOAD_API_UNAVAILABLE' }],
    ]);
    // Other events without listeners are simply dropped.
    events.emit('retry', { attempt: 1, delay: 10, status: 'UNAVAILABLE (14): x' });
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('runs every listener even when one throws, and rethrows it asynchronously', async () => {
    const events = new SourceEvents<IdentitySourceEvents>();
    const seen: number[] = [];
    events.on('retry', () => {
      throw new Error('listener bug');
    });
    events.on('retry', (info) => seen.push(info.attempt));
    // Captured with our own handler in place of vitest's, which are put back after.
    const previous = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    let uncaught: unknown;
    try {
      const surfaced = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
      events.emit('retry', { attempt: 3, delay: 10, status: 'x' });
      expect(seen).toEqual([3]);
      uncaught = await surfaced;
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const listener of previous) process.on('uncaughtException', listener);
    }
    expect((uncaught as Error).message).toBe('listener bug');
  });

  it('refuses a listener that is not a function', () => {
    const events = new SourceEvents<IdentitySourceEvents>();
    expect(() => events.on('update', 'nope' as never)).toThrow(TypeError);
  });
});

describe('ExpiryGuard', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('withdraws the identity when its SVID expires, even if the wall clock lags the timer', async () => {
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    try {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const publisher = new IdentityPublisher(() => 'nothing yet');
      const reasons: string[] = [];
      const guard = new ExpiryGuard(publisher, (reason) => reasons.push(reason));
      const svid = ca.issue('/web', { ttl: 60_000 });
      guard.arm(publisher.publish([svid], ca.bundles()));
      const left = svid.notAfter.getTime() - Date.now();
      // The wall clock steps back 5 s (NTP): when the timer fires, Date.now() says "not yet".
      vi.setSystemTime(Date.now() - 5_000);
      vi.advanceTimersByTime(left + 1);
      expect(reasons).toEqual([]);
      expect(publisher.current().svid).toBe(svid);
      vi.advanceTimersByTime(5_001);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toContain('spiffe://cluster.local/web expired');
      expect(() => publisher.current()).toThrow(/expired/);
      guard.cancel();
    } finally {
      vi.useRealTimers();
      await ca.close();
    }
  });
});
