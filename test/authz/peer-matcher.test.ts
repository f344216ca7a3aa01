import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize } from '../../src/authz/authorize.js';
import type { Peer } from '../../src/authz/peer.js';
import { compilePeerMatcher, type PeerMatcher } from '../../src/authz/peer-matcher.js';
import { createAuthorizationPolicy } from '../../src/authz/policy.js';
import { SpiffeId } from '../../src/spiffe/spiffe-id.js';
import { fakePeer } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';
import { PEER_NAMES, PEERS, type PeerName } from './support.js';

function throwing(): boolean {
  throw new Error('matcher bug');
}

// Each matcher form, and exactly the peers it matches (all others must not match).
const ACCEPTED: readonly (readonly [name: string, matcher: PeerMatcher, matches: readonly PeerName[]])[] = [
  ['exact ID', 'spiffe://cluster.local/ns/demo/sa/app-ui', ['ui']],
  ['Istio principal form', 'cluster.local/ns/demo/sa/app-ui', ['ui']],
  ['"*" for one segment', 'spiffe://cluster.local/ns/*/sa/app-ui', ['ui']],
  // A trailing "*" is "any remaining segments" (README, Authorization), so it also takes the deeper ID.
  ['"*" segments in the Istio form', 'cluster.local/ns/*/sa/*', ['ui', 'api', 'ops', 'deep']],
  ['"*" segments, exact length', 'cluster.local/ns/*/sa/*/extra', ['deep']],
  ['trailing "/*": one or more segments', 'spiffe://cluster.local/ns/demo/*', ['ui', 'api', 'deep']],
  ['trailing "/**": the same', 'spiffe://cluster.local/ns/demo/**', ['ui', 'api', 'deep']],
  ['trailing "/*" after a full ID', 'spiffe://cluster.local/ns/demo/sa/app-ui/*', ['deep']],
  ['a trust domain member', 'spiffe://cluster.local/*', ['ui', 'api', 'ops', 'deep']],
  ['a trust domain member, Istio form', 'cluster.local/*', ['ui', 'api', 'ops', 'deep']],
  ['a federated trust domain member', 'spiffe://partner.example/*', ['federated']],
  ['"*": any authenticated peer, federated included', '*', ['ui', 'api', 'ops', 'deep', 'federated']],
  [
    '"unauthenticated": plaintext and TLS without a certificate',
    'unauthenticated',
    ['plaintext', 'tlsNoCert'],
  ],
  ['a function', (peer: Peer) => peer.id?.path === '/ns/ops/sa/admin', ['ops']],
  ['a function seeing the transport', (peer: Peer) => peer.tls && !peer.mtls, ['tlsNoCert']],
  ['a throwing function: no match', throwing, []],
  ['a function returning a truthy non-boolean: no match', (() => 1) as unknown as () => boolean, []],
  [
    'a list: any of them',
    ['spiffe://cluster.local/ns/ops/*', 'unauthenticated'],
    ['ops', 'plaintext', 'tlsNoCert'],
  ],
  ['a list with a throwing function', [throwing, 'cluster.local/ns/demo/sa/api'], ['api']],
];

describe('peer matchers', () => {
  for (const [name, matcher, matches] of ACCEPTED) {
    it(`${name}: matches ${matches.join(', ') || 'nobody'}`, () => {
      const compiled = compilePeerMatcher(matcher, '/x');
      const got = PEER_NAMES.filter((peer) => compiled(PEERS[peer]));
      expect(got).toEqual(matches);
    });

    it(`${name}: decides the same through a policy`, () => {
      const policy = createAuthorizationPolicy({ authorize: { '/x': matcher } });
      const got = PEER_NAMES.filter(
        (peer) => authorize(policy, PEERS[peer], { method: 'GET', path: '/x' }).allowed,
      );
      expect(got).toEqual(matches);
    });
  }

  it('never lets a peer without a certificate match an identity matcher', () => {
    const identityMatchers = ACCEPTED.filter(([, m]) => typeof m === 'string' && m !== 'unauthenticated');
    for (const [, matcher] of identityMatchers) {
      const compiled = compilePeerMatcher(matcher, '/x');
      expect(compiled(PEERS.plaintext)).toBe(false);
      expect(compiled(PEERS.tlsNoCert)).toBe(false);
    }
  });

  it('keeps the source as written, for decisions', () => {
    expect(compilePeerMatcher('cluster.local/ns/a/sa/b', 'k').source).toBe('cluster.local/ns/a/sa/b');
    expect(compilePeerMatcher(['*', 'unauthenticated'], 'k').source).toBe('[*, unauthenticated]');
    expect(
      compilePeerMatcher(function isOps() {
        return true;
      }, 'k').source,
    ).toBe('<function isOps>');
  });

  // Refused at construction, with the key (and list index) as detail.field.
  const REFUSED: readonly (readonly [name: string, matcher: unknown, field: string, index?: number])[] = [
    ['an empty string', '', '/x'],
    ['a bare word', 'admin', '/x'],
    ['a bare trust domain', 'cluster.local', '/x'],
    ['a trust domain ID without a path', 'spiffe://cluster.local', '/x'],
    ['an empty trust domain', 'spiffe:///ns/x', '/x'],
    ['a partial segment wildcard', 'spiffe://cluster.local/ns/de*', '/x'],
    ['a trust domain wildcard', 'spiffe://*.local/ns/x', '/x'],
    ['"**" in the middle', 'spiffe://cluster.local/**/x', '/x'],
    ['an uppercase trust domain', 'spiffe://Cluster.local/ns/x', '/x'],
    ['an empty segment', 'spiffe://cluster.local/ns//x', '/x'],
    ['a dot segment', 'spiffe://cluster.local/ns/../x', '/x'],
    ['another scheme', 'https://cluster.local/ns/x', '/x'],
    ['an uppercase scheme', 'SPIFFE://cluster.local/ns/x', '/x'],
    ['an empty list', [], '/x'],
    ['a number', 42, '/x'],
    ['null', null, '/x'],
    ['an object', { id: 'spiffe://td/x' }, '/x'],
    ['a bad item in a list', ['*', 42], '/x', 1],
    ['a bad string in a list', ['*', 'spiffe://td'], '/x', 1],
  ];
  for (const [name, matcher, field, index] of REFUSED) {
    it(`refuses ${name}, naming the key`, () => {
      const err = expectCode(
        () => createAuthorizationPolicy({ authorize: { '/x': matcher as PeerMatcher } }),
        'ERR_POLICY_INVALID',
      );
      expect(err.detail.field).toBe(field);
      expect(err.detail.index).toBe(index);
      expect(err.message).toMatch(/^authorize: \/x/);
    });
  }

  it('names the deny map in its errors', () => {
    const err = expectCode(
      () => createAuthorizationPolicy({ deny: { '/a/*': 'nonsense' } }),
      'ERR_POLICY_INVALID',
    );
    expect(err.detail.field).toBe('/a/*');
    expect(err.message).toMatch(/^deny: /);
  });

  // The compiled matchers are string and regex tests for speed; this is the rule spelt out on
  // segments, to check them against ("." in a trust domain or segment must stay literal).
  it('matches patterns exactly as the segment-by-segment rule says', () => {
    const reference = (pattern: string, id: SpiffeId): boolean => {
      const full = pattern.startsWith('spiffe://') ? pattern : `spiffe://${pattern}`;
      const tail = /\/\*\*?$/.exec(full);
      const body = tail === null ? full : full.slice(0, tail.index);
      const [td, ...segments] = body.slice('spiffe://'.length).split('/');
      const theirs = id.segments();
      if (id.trustDomain.name !== td) return false;
      if (tail === null ? theirs.length !== segments.length : theirs.length <= segments.length) return false;
      return segments.every((s, i) => s === '*' || s === theirs[i]);
    };
    const segment = fc.constantFrom('a', 'b', 'a.b', 'axb', 'ns', 'x-y');
    const id = fc
      .tuple(fc.constantFrom('td', 'td.x', 'tdax'), fc.array(segment, { minLength: 1, maxLength: 4 }))
      .map(([td, segments]) => SpiffeId.fromSegments(td, ...segments));
    const pattern = fc
      .tuple(
        fc.constantFrom('spiffe://', ''),
        fc.constantFrom('td', 'td.x'),
        fc.array(fc.oneof(segment, fc.constant('*')), { maxLength: 3 }),
        fc.constantFrom('', '/*', '/**'),
      )
      .filter(([, , segments, tail]) => segments.length > 0 || tail !== '')
      .map(([scheme, td, segments, tail]) => `${scheme}${td}${segments.map((s) => `/${s}`).join('')}${tail}`);
    let matched = 0;
    fc.assert(
      fc.property(pattern, id, (p, i) => {
        const want = reference(p, i);
        if (want) matched++;
        expect(compilePeerMatcher(p, '/x')(fakePeer(i)), `${p} vs ${i}`).toBe(want);
      }),
      { numRuns: 4000 },
    );
    expect(matched).toBeGreaterThan(100);
  });
});
