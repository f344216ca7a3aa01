// Expiry warnings: short-lived certificates from the test CA, fake timers for the clock, and a
// file source whose rotation fails for real.
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdentityPublisher } from '../../src/identity/publisher.js';
import {
  channels,
  type ExpiringEvent,
  fileIdentity,
  SidecarlessError,
  staticIdentity,
} from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { svidFiles, writeAtomic } from '../helpers/identity-files.js';
import { onCleanup } from '../helpers/server.js';

const SECOND = 1_000;

/** Collects what the expiring channel publishes. */
function onChannel(): ExpiringEvent[] {
  const seen: ExpiringEvent[] = [];
  const listener = (message: unknown) => seen.push(message as ExpiringEvent);
  diagnostics.subscribe(channels.sourceExpiring, listener);
  onCleanup(() => diagnostics.unsubscribe(channels.sourceExpiring, listener));
  return seen;
}

/** When `share` of a certificate's lifetime is left. */
function warnAt(notBefore: Date, notAfter: Date, share: number): number {
  return notAfter.getTime() - share * (notAfter.getTime() - notBefore.getTime());
}

afterEach(() => {
  vi.useRealTimers();
});

describe('expiring', () => {
  it('fires once when the SVID has less than 20 % of its lifetime left (the default)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const ca = createTestCa({ ttl: 100 * SECOND });
    onCleanup(() => ca.close());
    const svid = ca.issue('/ns/demo/sa/job');
    const seen = onChannel();
    const source = staticIdentity({ svid, bundles: ca.bundle() });
    onCleanup(() => source.close());
    const at = warnAt(svid.notBefore, svid.notAfter, 0.2);
    vi.advanceTimersByTime(at - Date.now() - 50);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(seen).toHaveLength(1);
    const event = seen[0] as ExpiringEvent;
    expect(event).toMatchObject({
      source: 'staticIdentity spiffe://cluster.local/ns/demo/sa/job',
      kind: 'svid',
      id: 'spiffe://cluster.local/ns/demo/sa/job',
      serial: svid.leaf.serialNumber,
      subject: svid.leaf.subject,
      notAfter: svid.notAfter,
      reason: 'lifetime',
    });
    expect(event.remaining).toBeGreaterThan(0.19);
    expect(event.remaining).toBeLessThanOrEqual(0.2);
    // Once: not again while the same certificate stays.
    vi.advanceTimersByTime(10 * SECOND);
    expect(seen).toHaveLength(1);
  });

  it('takes the share from expiryWarning, and warns about a bundle authority too', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // The CA backdates notBefore by a minute (clock skew): lifetimes are 60 s longer than the TTL.
    const ca = createTestCa({ ttl: 100 * SECOND, rootTtl: 150 * SECOND });
    onCleanup(() => ca.close());
    const svid = ca.issue('/ns/demo/sa/job');
    const root = ca.bundle().authorities[0];
    if (root === undefined) expect.fail('the test CA has no root');
    const seen = onChannel();
    const source = staticIdentity({ svid, bundles: ca.bundle(), expiryWarning: 0.3 });
    onCleanup(() => source.close());
    vi.advanceTimersByTime(warnAt(svid.notBefore, svid.notAfter, 0.3) - Date.now() - 50);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(seen.map((e) => e.kind)).toEqual(['svid']);
    const rootAt = warnAt(new Date(root.validFrom), new Date(root.validTo), 0.3);
    vi.advanceTimersByTime(rootAt - Date.now() + 10);
    // Before the SVID expires: a withdrawn identity is no longer warned about.
    expect(Date.now()).toBeLessThan(svid.notAfter.getTime());
    expect(seen.map((e) => e.kind)).toEqual(['svid', 'authority']);
    expect(seen[1]).toMatchObject({
      id: 'spiffe://cluster.local',
      serial: root.serialNumber,
      subject: root.subject,
      reason: 'lifetime',
    });
    expect(() => staticIdentity({ svid, bundles: ca.bundle(), expiryWarning: 1.5 })).toThrow(/expiryWarning/);
  });

  it('a renewed SVID is not warned about until it, too, nears its end', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const ca = createTestCa({ ttl: 100 * SECOND });
    onCleanup(() => ca.close());
    const events: ExpiringEvent[] = [];
    const publisher = new IdentityPublisher(() => 'none', {
      source: 'test',
      events: {
        emit: (name: string, value: unknown) => name === 'expiring' && events.push(value as ExpiringEvent),
      },
    });
    onCleanup(() => publisher.close());
    const first = ca.issue('/a');
    publisher.publish([first], ca.bundles());
    vi.advanceTimersByTime(50 * SECOND); // half way: renewed, as SPIRE does
    const second = ca.issue('/a');
    publisher.publish([second], ca.bundles());
    vi.advanceTimersByTime(warnAt(first.notBefore, first.notAfter, 0.2) - Date.now() + 10);
    expect(events).toEqual([]); // the first SVID's warning time passed, but it is gone
    vi.advanceTimersByTime(warnAt(second.notBefore, second.notAfter, 0.2) - Date.now() + 10);
    expect(events.map((e) => e.serial)).toEqual([second.leaf.serialNumber]);
    // An error after the warning: the source failed to rotate it.
    publisher.error(new SidecarlessError('ERR_FILE_UNREADABLE', 'cannot read', { file: '/x' }));
    expect(events.map((e) => e.reason)).toEqual(['lifetime', 'rotation-failed']);
    publisher.error(new SidecarlessError('ERR_FILE_UNREADABLE', 'cannot read', { file: '/x' }));
    expect(events).toHaveLength(2); // once per certificate
  });

  it('a file source whose files go bad near expiry reports rotation-failed', async () => {
    const ca = createTestCa({ ttl: 4 * SECOND });
    onCleanup(() => ca.close());
    const dir = mkdtempSync(join(tmpdir(), 'sidecarless-expiry-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const files = svidFiles(ca.issue('/ns/demo/sa/files'), ca.bundle());
    for (const [name, data] of Object.entries(files)) writeAtomic(join(dir, `${name}.pem`), data);
    const source = fileIdentity({
      certChain: join(dir, 'certChain.pem'),
      key: join(dir, 'key.pem'),
      bundle: join(dir, 'bundle.pem'),
      expiryWarning: 0.95, // warn 0.2 s after issue: no long sleeps
      watch: false,
      pollInterval: 50,
    });
    onCleanup(() => source.close());
    const events: ExpiringEvent[] = [];
    const errors: string[] = [];
    source.on('expiring', (event) => events.push(event));
    source.on('error', (err) => errors.push(err.code));
    await source.ready({ timeout: 2_000 });
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({
      kind: 'svid',
      reason: 'lifetime',
      id: 'spiffe://cluster.local/ns/demo/sa/files',
    });
    writeAtomic(join(dir, 'certChain.pem'), 'not a certificate');
    await until(() => events.length === 2);
    expect(events[1]).toMatchObject({ kind: 'svid', reason: 'rotation-failed' });
    expect(errors.length).toBeGreaterThan(0);
  });
});

async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) expect.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
