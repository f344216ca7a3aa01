import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath, normalizeRequestTarget } from '../../src/authz/normalize.js';
import { type AuthorizationPolicyOptions, authorize, createAuthorizationPolicy } from '../../src/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { check, typedOnly } from './settings.js';

const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const OPS = 'spiffe://cluster.local/ns/ops/sa/admin';

const method = fc.constantFrom('GET', 'get', 'POST', 'DELETE', 'G ET', '', 'PURGE', '*', 'GET ');
const pathPattern = fc.constantFrom(
  '/',
  '/a',
  '/a/',
  '/a/*',
  '/a/**',
  '/a/b',
  '/a*',
  '*',
  '/*',
  '//a',
  '/a/../b',
  '/a/./b',
  '/%2Fa',
  '/%61',
  '/A',
  'a',
  '/a b',
  '/a?x=1',
  '/a#f',
  '/a;p',
  '/\u00e9',
  '/a/*/b',
  '/**',
  '',
);
const key = fc.oneof(
  pathPattern,
  fc.tuple(method, pathPattern).map(([m, p]) => `${m} ${p}`),
  fc.string({ maxLength: 12 }),
);
const matcher = fc.oneof(
  fc.constantFrom(
    UI,
    OPS,
    '*',
    'unauthenticated',
    'spiffe://cluster.local/*',
    'spiffe://cluster.local/ns/*/sa/app-ui',
    'spiffe://cluster.local/ns/**',
    'cluster.local/ns/demo/sa/app-ui',
    'spiffe://Cluster.local/x',
    'spiffe://cluster.local/ns/../x',
    'spiffe://',
    '',
    '**',
    'spiffe://cluster.local/ns/*x/sa',
  ),
  fc.string({ maxLength: 16 }),
  fc.constant((peer: { id: unknown }) => peer.id !== null),
  fc.integer(),
  fc.constant(null),
);
const value = fc.oneof(matcher, fc.array(matcher, { maxLength: 3 }));
const map = fc.dictionary(key, value, { maxKeys: 5 });
const peer = fc.constantFrom(
  fakePeer(UI),
  fakePeer(OPS),
  fakePeer(null),
  fakePeer('spiffe://partner.example/x'),
);
const requestPath = fc.oneof(
  pathPattern,
  fc.string({ maxLength: 20 }).map((s) => `/${s}`),
  fc.string({ maxLength: 10 }),
);

describe('fuzz: authorization map compilation', () => {
  it('compiles or refuses with a typed error; a compiled policy decides any request without throwing', () => {
    let compiled = 0;
    check(
      'authz-compile',
      fc.property(
        map,
        fc.option(map, { nil: undefined }),
        fc.array(fc.tuple(peer, method, requestPath), { maxLength: 4 }),
        (allow, deny, requests) => {
          const result = typedOnly(() =>
            createAuthorizationPolicy({ authorize: allow, deny } as unknown as AuthorizationPolicyOptions),
          );
          if (!result.ok) {
            expect(['ERR_POLICY_INVALID', 'ERR_OPTION_INVALID', 'ERR_SPIFFE_ID_INVALID']).toContain(
              result.code,
            );
            return;
          }
          compiled++;
          for (const [p, m, path] of requests) {
            const decision = typedOnly(() => authorize(result.value, p, { method: m, path }));
            expect(decision.ok).toBe(true);
            if (decision.ok) expect(typeof decision.value.allowed).toBe('boolean');
          }
        },
      ),
      1_500,
    );
    expect(compiled).toBeGreaterThan(40);
  });
});

// A clean path and the ways a client can spell the same path: percent-encoded unreserved characters
// (RFC 3986 §2.3, any hex case), "." and "x/.." segments, doubled slashes.
const segment = fc.stringMatching(/^[a-z0-9._~-]{1,6}$/).filter((s) => s !== '.' && s !== '..');
const clean = fc.array(segment, { minLength: 0, maxLength: 4 }).map((s) => `/${s.join('/')}`);

function encode(text: string, mask: readonly boolean[], upper: readonly boolean[]): string {
  return [...text]
    .map((c, i) => {
      if (!mask[i % mask.length]) return c;
      const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
      return `%${upper[i % upper.length] ? hex.toUpperCase() : hex}`;
    })
    .join('');
}

const spelling = fc
  .tuple(
    clean,
    fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    fc.array(fc.constantFrom('none', 'dot', 'updown', 'double'), { minLength: 1, maxLength: 6 }),
  )
  .map(([path, mask, upper, noise]) => {
    const segments = path.split('/').slice(1);
    const parts: string[] = [];
    segments.forEach((s, i) => {
      const n = noise[i % noise.length];
      if (n === 'dot') parts.push(i % 2 === 0 ? '.' : '%2e');
      if (n === 'updown') parts.push(`zz${i}`, i % 2 === 0 ? '..' : '%2E%2e');
      if (n === 'double') parts.push('');
      parts.push(encode(s, mask, upper));
    });
    return { clean: path, raw: `/${parts.join('/')}` };
  });

describe('fuzz: path normalisation', () => {
  const policy = createAuthorizationPolicy({
    authorize: { '/a/*': UI, '/a/b': OPS, 'GET /a/b/c': UI, '/x/*': OPS, '/0': UI, '*': 'unauthenticated' },
    deny: { '/a/b/*': 'spiffe://cluster.local/ns/demo/*' },
  });

  // Oracle: the raw spelling means its clean path (RFC 3986 equivalence), so a normalised path never
  // matches a rule that the raw spelling's meaning would have missed: same path, same deciding rule.
  it('a normalised path is the clean path its raw spelling means, and is decided by the same rule', () => {
    let normalised = 0;
    check(
      'path-normalise-equivalent',
      fc.property(spelling, peer, fc.constantFrom('GET', 'POST'), ({ clean, raw }, p, m) => {
        const result = normalizePath(raw);
        if (typeof result !== 'string') return; // refused as ambiguous: fails closed, never matches
        normalised++;
        expect(result, raw).toBe(clean);
        const viaRaw = authorize(policy, p, { method: m, path: raw });
        const viaClean = authorize(policy, p, { method: m, path: clean });
        expect({ rule: viaRaw.rule, allowed: viaRaw.allowed }).toEqual({
          rule: viaClean.rule,
          allowed: viaClean.allowed,
        });
      }),
      3_000,
    );
    expect(normalised).toBeGreaterThan(1_000);
  });

  it('any request-target: never throws; a normalised path starts with "/" and normalises to itself', () => {
    const any = fc.oneof(
      fc.string({ maxLength: 30 }).map((s) => `/${s}`),
      fc
        .array(
          fc.constantFrom(
            '/',
            '.',
            '..',
            '%',
            '%2',
            '%2e',
            '%2F',
            '%5C',
            '%00',
            'a',
            '?',
            '#',
            ';',
            '\\',
            '%C4%B0',
            '%25',
          ),
          { maxLength: 10 },
        )
        .map((p) => `/${p.join('')}`),
      fc.string({ maxLength: 10 }),
    );
    check(
      'path-normalise-any',
      fc.property(any, (raw) => {
        const result = typedOnly(() => normalizeRequestTarget('GET', raw));
        expect(result.ok).toBe(true);
        if (result.ok && result.value.ok) {
          expect(result.value.path.startsWith('/')).toBe(true);
          expect(normalizePath(result.value.path)).toBe(result.value.path);
        }
      }),
      3_000,
    );
  });
});
