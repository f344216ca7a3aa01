import { describe, expect, it } from 'vitest';
import { createLocalCa, verifyPeerChain, isSidecarlessError } from '../../src/index.js';
import { badSvidKinds, createTestCa, type BadSvidKind } from '../../src/testing/index.js';

describe('smoke', () => {
  it('issues and verifies', () => {
    const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
    const svid = ca.issue('/ns/demo/sa/x');
    const r = verifyPeerChain(svid.certificates, ca.bundles());
    expect(r.id.toString()).toBe('spiffe://cluster.local/ns/demo/sa/x');
    expect(r.verifiedChain).toHaveLength(3);
  });
  const ca = createTestCa();
  for (const kind of Object.keys(badSvidKinds) as BadSvidKind[]) {
    it(kind, () => {
      const bad = ca.issueBad(kind);
      let code: string | undefined;
      try { verifyPeerChain(bad.certificates, bad.bundles); } catch (e) { if (isSidecarlessError(e)) code = e.code; else throw e; }
      expect(code).toBe(bad.code);
    });
  }
});
