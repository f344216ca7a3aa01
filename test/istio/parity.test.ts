// Runs the decision-parity table (parity-cases.ts) through fromIstio() and authorize().
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { authorize, isSidecarlessError } from '../../src/index.js';
import { fromIstio, resolveMode } from '../../src/istio/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { ALL_CASES, contextOf, type ParityCase, type ParityRequest, peerId } from './parity-cases.js';

const deviations = readFileSync(new URL('../../docs/istio.md', import.meta.url), 'utf8');

function decide(c: ParityCase, r: ParityRequest) {
  const ctx = contextOf(c);
  const { authorize: policy } = fromIstio(c.yaml, ctx, c.options);
  const peer = fakePeer(
    r.peer === null
      ? { remoteAddress: r.ip ?? '127.0.0.1' }
      : { id: peerId(r.peer), remoteAddress: r.ip ?? '127.0.0.1' },
  );
  const port = r.port === null ? undefined : (r.port ?? ctx.port);
  return authorize(policy, peer, {
    method: r.method ?? 'GET',
    path: r.path ?? '/',
    host: r.host ?? 'httpbin.foo',
    ...(port === undefined ? {} : { port }),
    ...(r.sni === undefined ? {} : { sni: r.sni }),
  });
}

describe('the parity table itself', () => {
  it('has at least 60 cases, 20 of them reproducing Istio documentation examples', () => {
    expect(ALL_CASES.length).toBeGreaterThanOrEqual(60);
    expect(ALL_CASES.filter((c) => c.doc).length).toBeGreaterThanOrEqual(20);
    expect(new Set(ALL_CASES.map((c) => c.id)).size).toBe(ALL_CASES.length);
  });

  it('cites an Istio page and a rule for every case, and only deviations docs/istio.md lists', () => {
    for (const c of ALL_CASES) {
      expect(c.cite, c.id).toMatch(/^https:\/\/istio\.io\//);
      expect(c.rule.length, c.id).toBeGreaterThan(10);
      if (c.deviation !== undefined)
        expect(deviations, `${c.id} cites ${c.deviation}`).toContain(`id="${c.deviation}"`);
      // A case asserts something: a mode, a refusal, or requests.
      expect(c.mode !== undefined || c.refused !== undefined || (c.requests?.length ?? 0) > 0, c.id).toBe(
        true,
      );
    }
  });

  it('covers every deviation docs/istio.md lists', () => {
    const listed = [...deviations.matchAll(/id="([a-z-]+)"/g)].map((m) => m[1]);
    expect(listed.length).toBeGreaterThan(5);
    for (const id of listed)
      expect(
        ALL_CASES.some((c) => c.deviation === id),
        `a case cites ${id}`,
      ).toBe(true);
  });
});

describe.each(ALL_CASES.map((c) => [`${c.id} ${c.name}`, c] as const))('%s', (_name, c) => {
  if (c.refused !== undefined) {
    const refused = c.refused;
    it(`is refused with ${refused.code}, naming the object and field`, () => {
      let thrown: unknown;
      try {
        fromIstio(c.yaml, contextOf(c), c.options);
      } catch (err) {
        thrown = err;
      }
      expect(isSidecarlessError(thrown), String(thrown)).toBe(true);
      if (!isSidecarlessError(thrown)) return;
      expect(thrown.code, thrown.message).toBe(refused.code);
      expect(thrown.detail.field, thrown.message).toContain(refused.field);
      // The message names the object as "Kind namespace/name" and the field path.
      expect(thrown.message).toMatch(
        /^(AuthorizationPolicy|PeerAuthentication|Policy|MeshPolicy) [a-z0-9().-]+\/[a-z0-9.-]+[: ]/,
      );
      const path = refused.field.includes(':') ? refused.field.split(':')[1] : refused.field;
      if (path !== undefined && !path.includes('/')) expect(thrown.message).toContain(path);
    });
    return;
  }
  if (c.mode !== undefined) {
    it(`resolves mode ${c.mode}`, () => {
      const r = resolveMode(c.yaml, contextOf(c));
      expect(r.mode).toBe(c.mode);
      expect(r.libraryDefault).toBe('STRICT');
      if (c.decidedBy !== undefined) expect(r.decidedBy).toBe(c.decidedBy);
      expect(fromIstio(c.yaml, contextOf(c), c.options).mode).toBe(c.mode);
    });
  }
  for (const [i, r] of (c.requests ?? []).entries()) {
    const label = `${r.method ?? 'GET'} ${r.path ?? '/'} from ${r.peer ?? 'a plaintext peer'}${r.port === undefined ? '' : ` on port ${r.port}`} → ${r.want}`;
    it(`request ${i + 1}: ${label}`, () => {
      const d = decide(c, r);
      if (r.want === 'bad_request') {
        expect(d.reason).toBe('bad_request');
        expect(d.allowed).toBe(false);
        return;
      }
      expect(d.verdict, JSON.stringify(d)).toBe(r.want);
      expect(d.allowed).toBe(r.want === 'allow');
      if (r.reason !== undefined) expect(d.reason).toBe(r.reason);
      if (r.rule !== undefined) expect(d.rule ?? '').toContain(r.rule);
      expect(d.audit ?? []).toEqual(r.audit ?? []);
    });
  }
});
