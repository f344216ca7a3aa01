import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  type FileIdentityOptions,
  fileIdentity,
  fileIdentityPresets,
} from '../../src/identity/file-identity.js';
import type { WorkloadIdentity } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { KubernetesVolume, svidFiles, writeAtomic } from '../helpers/identity-files.js';
import { afterFile, nextUpdate, record, sleep, tempDir, track } from '../helpers/identity-sources.js';

const ca = createTestCa();
afterFile(() => ca.close());
const WEB = '/ns/demo/sa/web';
const ISTIO = fileIdentityPresets.istio;
const CSI = fileIdentityPresets['cert-manager'];

function open(options: FileIdentityOptions) {
  const source = track(fileIdentity(options));
  return { source, events: record(source) };
}

/** The internal counters of a file identity, for the "no polling" checks. */
function internals(source: object): { watchMode: string; loads: number } {
  return source as unknown as { watchMode: string; loads: number };
}

function writeIstio(dir: string, write: (path: string, data: string) => void = writeFileSync) {
  const svid = ca.issue(WEB);
  const files = svidFiles(svid, ca.bundle());
  write(join(dir, ISTIO.bundle), files.bundle);
  write(join(dir, ISTIO.key), files.key);
  write(join(dir, ISTIO.certChain), files.certChain);
  return svid;
}

/** Every published identity's key matches its certificate: no mismatched pair ever became current. */
function expectConsistent(updates: readonly WorkloadIdentity[]) {
  for (const { svid } of updates) {
    const key = svid.privateKey.export({ format: 'der', type: 'pkcs8' });
    expect(key.length).toBeGreaterThan(0);
    expect(svid.leaf.checkPrivateKey(svid.privateKey)).toBe(true);
  }
}

describe.each([
  { mode: 'watch', watch: true },
  { mode: 'poll', watch: false },
])('fileIdentity ($mode): rotations', ({ mode, watch }) => {
  const base = { watch, pollInterval: 25 };

  it('picks up files replaced by atomic renames', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source, events } = open({ ...base, preset: 'istio', dir });
    const first = await source.ready({ timeout: 5_000 });
    expect(internals(source).watchMode).toBe(mode);
    const next = nextUpdate(source);
    const svid = writeIstio(dir, writeAtomic);
    const identity = await next;
    expect(identity.svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    expect(identity.generation).toBe(first.generation + 1);
    await vi.waitFor(() => expect(source.current().svid.leaf.serialNumber).toBe(svid.leaf.serialNumber));
    expect(events.errors).toEqual([]);
    expectConsistent(events.updates);
  });

  it("survives Kubernetes' ..data symlink swap, with exactly that layout", async () => {
    const dir = tempDir();
    const volume = new KubernetesVolume(dir);
    const toVolume = (svid = ca.issue(WEB)) => {
      const files = svidFiles(svid, ca.bundle());
      volume.write({ [CSI.certChain]: files.certChain, [CSI.key]: files.key, [CSI.bundle]: files.bundle });
      return svid;
    };
    const original = toVolume();
    const { source, events } = open({ ...base, preset: 'cert-manager', dir });
    expect((await source.ready({ timeout: 5_000 })).svid.leaf.serialNumber).toBe(original.leaf.serialNumber);
    for (let round = 0; round < 3; round++) {
      const next = nextUpdate(source);
      const svid = toVolume();
      expect((await next).svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    }
    expect(events.updates).toHaveLength(4);
    expect(events.errors).toEqual([]);
  });

  it('never publishes a mismatched pair when the certificate is written before the key', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source, events } = open({ ...base, preset: 'istio', dir });
    const first = await source.ready({ timeout: 5_000 });
    const svid = ca.issue(WEB);
    const files = svidFiles(svid, ca.bundle());
    const next = nextUpdate(source);
    writeFileSync(join(dir, ISTIO.certChain), files.certChain);
    await sleep(60);
    // The new certificate with the old key: read, refused, the last good identity stays.
    expect(source.current()).toBe(first);
    writeFileSync(join(dir, ISTIO.key), files.key);
    expect((await next).svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    expect(events.updates).toHaveLength(2);
    expect(events.errors).toEqual([]);
    expectConsistent(events.updates);
  });

  it('never publishes a mismatched pair when the key is written before the certificate', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source, events } = open({ ...base, preset: 'istio', dir });
    const first = await source.ready({ timeout: 5_000 });
    const svid = ca.issue(WEB);
    const files = svidFiles(svid, ca.bundle());
    const next = nextUpdate(source);
    writeFileSync(join(dir, ISTIO.key), files.key);
    await sleep(60);
    expect(source.current()).toBe(first);
    writeFileSync(join(dir, ISTIO.certChain), files.certChain);
    expect((await next).svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    expect(events.errors).toEqual([]);
    expectConsistent(events.updates);
  });

  it('reports a mismatch that lasts, keeps the last good identity, and recovers when the key comes', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source, events } = open({ ...base, preset: 'istio', dir });
    const first = await source.ready({ timeout: 5_000 });
    const svid = ca.issue(WEB);
    const files = svidFiles(svid, ca.bundle());
    writeFileSync(join(dir, ISTIO.certChain), files.certChain);
    await vi.waitFor(() => expect(events.errors.map((e) => e.code)).toEqual(['ERR_KEY_MISMATCH']), {
      timeout: 5_000,
    });
    expect(events.errors[0]?.message).toContain(join(dir, ISTIO.certChain));
    expect(source.current()).toBe(first);
    const next = nextUpdate(source);
    writeFileSync(join(dir, ISTIO.key), files.key);
    expect((await next).svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
  });

  it('keeps the identity while a file is briefly missing (delete, then write)', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source, events } = open({ ...base, preset: 'istio', dir });
    const first = await source.ready({ timeout: 5_000 });
    rmSync(join(dir, ISTIO.key));
    await sleep(50);
    expect(source.current()).toBe(first);
    const next = nextUpdate(source);
    const svid = writeIstio(dir);
    expect((await next).svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    expect(events.errors).toEqual([]);
  });
});

describe('fileIdentity: watching costs nothing while idle', () => {
  it('runs no timer and reads nothing while fs.watch works and nothing changes', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source } = open({ preset: 'istio', dir });
    await source.ready({ timeout: 5_000 });
    await sleep(50);
    const loads = internals(source).loads;
    await sleep(300);
    expect(internals(source).watchMode).toBe('watch');
    expect(internals(source).loads).toBe(loads);
  });

  it('ignores changes to other files in the directory once it has read them (no new generation)', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source, events } = open({ preset: 'istio', dir });
    await source.ready({ timeout: 5_000 });
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    await vi.waitFor(() => expect(internals(source).loads).toBeGreaterThanOrEqual(2));
    await sleep(30);
    expect(events.updates).toHaveLength(1);
  });

  it('falls back to polling when the directory cannot be watched, and says so', async () => {
    const parent = tempDir();
    const dir = join(parent, 'not-yet-mounted');
    const { source, events } = open({ preset: 'istio', dir, pollInterval: 25 });
    expect(internals(source).watchMode).toBe('poll');
    await vi.waitFor(() =>
      expect(events.errors.some((e) => /polling every 25 ms instead/.test(e.message))).toBe(true),
    );
    await expect(source.ready()).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
    // The volume appears later: written elsewhere, then moved into place.
    const staging = join(parent, 'staging');
    mkdirSync(staging);
    const svid = writeIstio(staging);
    renameSync(staging, dir);
    await vi.waitFor(() => expect(source.current().svid.leaf.serialNumber).toBe(svid.leaf.serialNumber), {
      timeout: 5_000,
    });
  });

  it('stops reading after close()', async () => {
    const dir = tempDir();
    writeIstio(dir);
    const { source } = open({ preset: 'istio', dir });
    await source.ready({ timeout: 5_000 });
    await source.close();
    await source.close();
    const loads = internals(source).loads;
    writeIstio(dir);
    await sleep(100);
    expect(internals(source).loads).toBe(loads);
  });
});
