// inferMode is the decision behind `sidecarless check`'s mTLS (MODE) column: every combination
// of what the three probes can see, as a table.
import { describe, expect, it } from 'vitest';
import { inferMode, type ProbeFacts } from '../../src/cli/check-mode.js';

const cases: { name: string; facts: ProbeFacts; mode: string; reason: RegExp }[] = [
  {
    name: 'STRICT: plaintext refused, TLS needs a cert, mTLS accepted',
    facts: { plaintext: false, tlsHandshake: true, tlsWithoutCertificate: false, mtls: true },
    mode: 'STRICT',
    reason: /mTLS is accepted/,
  },
  {
    name: 'STRICT without an identity: inferred from the TLS refusal',
    facts: { plaintext: false, tlsHandshake: true, tlsWithoutCertificate: false, mtls: undefined },
    mode: 'STRICT',
    reason: /no identity/,
  },
  {
    name: 'STRICT refusing our identity',
    facts: { plaintext: false, tlsHandshake: true, tlsWithoutCertificate: false, mtls: false },
    mode: 'STRICT',
    reason: /ours was refused/,
  },
  {
    name: 'PERMISSIVE: both',
    facts: { plaintext: true, tlsHandshake: true, tlsWithoutCertificate: true, mtls: true },
    mode: 'PERMISSIVE',
    reason: /both/,
  },
  {
    name: 'PERMISSIVE without an identity',
    facts: { plaintext: true, tlsHandshake: true, tlsWithoutCertificate: false, mtls: undefined },
    mode: 'PERMISSIVE',
    reason: /both/,
  },
  {
    name: 'DISABLE: plaintext only',
    facts: { plaintext: true, tlsHandshake: false, tlsWithoutCertificate: false, mtls: false },
    mode: 'DISABLE',
    reason: /TLS is not spoken/,
  },
  {
    name: 'DISABLE without an identity',
    facts: { plaintext: true, tlsHandshake: false, tlsWithoutCertificate: false, mtls: undefined },
    mode: 'DISABLE',
    reason: /TLS is not spoken/,
  },
  {
    name: 'a plain TLS server is no mesh mode',
    facts: { plaintext: false, tlsHandshake: true, tlsWithoutCertificate: true, mtls: true },
    mode: 'UNKNOWN',
    reason: /TLS server, not mTLS/,
  },
  {
    name: 'nothing answers',
    facts: { plaintext: false, tlsHandshake: false, tlsWithoutCertificate: false, mtls: false },
    mode: 'UNKNOWN',
    reason: /neither/,
  },
];

describe('inferMode', () => {
  for (const c of cases) {
    it(c.name, () => {
      const verdict = inferMode(c.facts);
      expect(verdict.mode).toBe(c.mode);
      expect(verdict.reason).toMatch(c.reason);
    });
  }
});
