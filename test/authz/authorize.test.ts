import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize, authorizeNormalized } from '../../src/authz/authorize.js';
import { decisionEvent } from '../../src/authz/decision-event.js';
import { normalizeRequestTarget } from '../../src/authz/normalize.js';
import type { Peer } from '../../src/authz/peer.js';
import { type AuthorizationPolicy, createAuthorizationPolicy } from '../../src/authz/policy.js';
import { createLocalCa } from '../../src/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';
import { PEERS } from './support.js';

const OPS = 'spiffe://cluster.local/ns/ops/*';
const get = (policy: AuthorizationPolicy, peer: Peer, path: string, method = 'GET') =>
  authorize(policy, peer, { method, path });

describe('authorize: the most specific key decides', () => {
  const policy = createAuthorizationPolicy({
    authorize: {
      '/a/b/c': '*',
      'GET /a/b/*': '*',
      '/a/b/*': '*',
      '/a/*': '*',
      'POST /x': '*',
      'HEAD /h/*': '*',
      'GET /h/*': '*',
      'GET *': '*',
      '*': '*',
    },
  });
  const ROWS: readonly (readonly [method: string, path: string, rule: string])[] = [
    ['GET', '/a/b/c', '/a/b/c'], // exact over a method-specific prefix
    ['DELETE', '/a/b/c', '/a/b/c'],
    ['GET', '/a/b/c/', '/a/b/c'], // an exact key covers its trailing "/"
    ['GET', '/A/B/C', '/a/b/c'], // case-insensitive
    ['GET', '/a/b/c/d', 'GET /a/b/*'], // longer prefix over shorter
    ['POST', '/a/b/c/d', '/a/b/*'], // method-specific only for its method
    ['HEAD', '/a/b/d', 'GET /a/b/*'], // GET's rule binds HEAD
    ['GET', '/a/b', 'GET /a/b/*'], // a prefix covers its own path…
    ['GET', '/a/b/', 'GET /a/b/*'], // …and with a trailing "/"
    ['POST', '/a/bc', '/a/*'], // prefixes are whole segments
    ['POST', '/a', '/a/*'],
    ['POST', '/a/x/y/z/w', '/a/*'],
    ['POST', '/x', 'POST /x'],
    ['POST', '/x/', 'POST /x'],
    ['GET', '/x', 'GET *'], // an exact key for another method does not cover GET
    ['PUT', '/x', '*'],
    ['HEAD', '/h/1', 'HEAD /h/*'], // HEAD's own rule over GET's
    ['GET', '/', 'GET *'],
    ['OPTIONS', '/', '*'],
    ['get', '/b', 'GET *'], // methods are matched uppercased, as Express routes them
  ];
  for (const [method, path, rule] of ROWS) {
    it(`${method} ${path} -> ${rule}`, () => {
      const d = get(policy, PEERS.ui, path, method);
      expect(d).toMatchObject({ allowed: true, verdict: 'allow', reason: 'allowed', rule, matcher: '*' });
      expect(d.method).toBe(method.toUpperCase());
    });
  }

  it('walks up paths deeper than any prefix key, and paths of one segment', () => {
    const deep = `/a/b/${'x/'.repeat(200)}y`;
    expect(get(policy, PEERS.ui, deep).rule).toBe('GET /a/b/*');
    const only = createAuthorizationPolicy({ authorize: { '/s/*': '*' } });
    expect(get(only, PEERS.ui, '/s').rule).toBe('/s/*');
    expect(get(only, PEERS.ui, '/s/t/u').rule).toBe('/s/*');
    expect(get(only, PEERS.ui, '/').reason).toBe('no_matching_rule');
    expect(get(only, PEERS.ui, '/st').reason).toBe('no_matching_rule');
  });

  it('lets the deciding key decide alone: a weaker allowing key never rescues a denial', () => {
    const p = createAuthorizationPolicy({ authorize: { '/admin/*': OPS, '*': '*' } });
    expect(get(p, PEERS.ui, '/admin/x')).toMatchObject({
      allowed: false,
      reason: 'peer_not_allowed',
      rule: '/admin/*',
      matcher: OPS,
    });
    expect(get(p, PEERS.ops, '/admin/x')).toMatchObject({ allowed: true, rule: '/admin/*' });
  });
});

describe('authorize: reasons', () => {
  const policy = createAuthorizationPolicy({
    authorize: { '/api/*': 'cluster.local/ns/demo/*', '/healthz': ['*', 'unauthenticated'] },
  });

  it('allowed', () => {
    expect(get(policy, PEERS.ui, '/api/x')).toEqual({
      allowed: true,
      verdict: 'allow',
      reason: 'allowed',
      rule: '/api/*',
      matcher: 'cluster.local/ns/demo/*',
      method: 'GET',
      path: '/api/x',
      mode: 'enforce',
    });
  });

  it('peer_not_allowed', () => {
    expect(get(policy, PEERS.ops, '/api/x')).toMatchObject({ allowed: false, reason: 'peer_not_allowed' });
    expect(get(policy, PEERS.federated, '/api/x')).toMatchObject({
      allowed: false,
      reason: 'peer_not_allowed',
    });
  });

  it('unauthenticated: plaintext, and TLS without a client certificate', () => {
    for (const peer of [PEERS.plaintext, PEERS.tlsNoCert]) {
      expect(get(policy, peer, '/api/x')).toMatchObject({
        allowed: false,
        verdict: 'deny',
        reason: 'unauthenticated',
        rule: '/api/*',
      });
      expect(get(policy, peer, '/healthz')).toMatchObject({ allowed: true, reason: 'allowed' });
    }
  });

  it('no_matching_rule: no key covers the request and there is no default', () => {
    expect(get(policy, PEERS.ui, '/other')).toMatchObject({
      allowed: false,
      verdict: 'deny',
      reason: 'no_matching_rule',
      rule: null,
      matcher: null,
      path: '/other',
    });
    expect(get(policy, PEERS.plaintext, '/other').reason).toBe('no_matching_rule');
  });

  it('no_matching_rule for everything when authorize is left out (fail closed)', () => {
    const empty = createAuthorizationPolicy({ deny: { '/x': 'unauthenticated' } });
    for (const path of ['/', '/a', '/x']) {
      expect(get(empty, PEERS.ui, path)).toMatchObject({ allowed: false, reason: 'no_matching_rule' });
    }
  });

  it('bad_request: carries neither the path nor a rule', () => {
    expect(get(policy, PEERS.ui, '/api%2fx')).toEqual({
      allowed: false,
      verdict: 'deny',
      reason: 'bad_request',
      rule: null,
      matcher: null,
      method: 'GET',
      path: null,
      mode: 'enforce',
    });
    expect(authorize(policy, PEERS.ui, { method: 'G E T', path: '/api/x' })).toMatchObject({
      reason: 'bad_request',
      method: '',
    });
  });
});

describe('authorize: deny before allow', () => {
  const EVIL = 'spiffe://cluster.local/ns/demo/sa/app-ui';
  const policy = createAuthorizationPolicy({
    authorize: { '/a/b/c': EVIL, '/a/*': '*', '*': ['*', 'unauthenticated'] },
    deny: {
      '/a/*': EVIL,
      '/a/b/c': 'spiffe://cluster.local/ns/ops/*',
      'DELETE /d/*': 'cluster.local/ns/demo/*',
      'GET /g': '*',
      '/p/*': 'unauthenticated',
    },
  });

  it('any matching deny rule denies, not only the most specific one', () => {
    // The most specific deny key ("/a/b/c") does not match ui, but "/a/*" does.
    expect(get(policy, PEERS.ui, '/a/b/c')).toMatchObject({
      allowed: false,
      verdict: 'deny',
      reason: 'denied_by_rule',
      rule: '/a/*',
      matcher: EVIL,
    });
    // The most specific matching deny rule is the one reported.
    expect(get(policy, PEERS.ops, '/a/b/c')).toMatchObject({ reason: 'denied_by_rule', rule: '/a/b/c' });
  });

  it('a deny rule wins over an exact allow rule naming the same peer', () => {
    expect(get(policy, PEERS.ui, '/a/b/c').allowed).toBe(false);
    expect(get(policy, PEERS.api, '/a/b/c')).toMatchObject({ reason: 'peer_not_allowed', rule: '/a/b/c' });
    expect(get(policy, PEERS.api, '/a/x')).toMatchObject({ allowed: true, rule: '/a/*' });
  });

  it('method-specific deny rules bind their method (and GET binds HEAD)', () => {
    expect(get(policy, PEERS.api, '/d/1', 'DELETE')).toMatchObject({
      reason: 'denied_by_rule',
      rule: 'DELETE /d/*',
    });
    expect(get(policy, PEERS.api, '/d/1', 'GET')).toMatchObject({ allowed: true, rule: '*' });
    expect(get(policy, PEERS.api, '/g', 'HEAD')).toMatchObject({ reason: 'denied_by_rule', rule: 'GET /g' });
    expect(get(policy, PEERS.api, '/g/', 'GET')).toMatchObject({ reason: 'denied_by_rule', rule: 'GET /g' });
    expect(get(policy, PEERS.api, '/g', 'POST')).toMatchObject({ allowed: true });
  });

  it('"unauthenticated" in a deny map refuses plaintext and certificate-less peers only', () => {
    expect(get(policy, PEERS.plaintext, '/p/x')).toMatchObject({ reason: 'denied_by_rule', rule: '/p/*' });
    expect(get(policy, PEERS.tlsNoCert, '/p/x')).toMatchObject({ reason: 'denied_by_rule' });
    expect(get(policy, PEERS.plaintext, '/q/x')).toMatchObject({ allowed: true });
    expect(get(policy, PEERS.api, '/p/x')).toMatchObject({ allowed: true });
  });

  it('a default deny rule covers every path', () => {
    const p = createAuthorizationPolicy({
      authorize: { '*': '*' },
      deny: { '*': 'spiffe://partner.example/*' },
    });
    expect(get(p, PEERS.federated, '/anything')).toMatchObject({ reason: 'denied_by_rule', rule: '*' });
    expect(get(p, PEERS.ui, '/anything').allowed).toBe(true);
  });

  it('a throwing deny function does not deny (and a throwing allow function does not allow)', () => {
    const boom = () => {
      throw new Error('bug');
    };
    const p = createAuthorizationPolicy({ authorize: { '/a': boom, '*': '*' }, deny: { '*': boom } });
    expect(get(p, PEERS.ui, '/b').allowed).toBe(true);
    expect(get(p, PEERS.ui, '/a')).toMatchObject({ allowed: false, reason: 'peer_not_allowed' });
  });
});

describe('authorize: audit mode', () => {
  const rules = {
    authorize: { '/admin/*': OPS, '/api/*': '*' },
    deny: { '/api/secret': 'cluster.local/ns/demo/*' },
  };
  const audit = createAuthorizationPolicy({ ...rules, mode: 'audit' });
  const enforce = createAuthorizationPolicy(rules);
  const CASES: readonly (readonly [peer: Peer, path: string, reason: string, verdict: 'allow' | 'deny'])[] = [
    [PEERS.ops, '/admin/x', 'allowed', 'allow'],
    [PEERS.ui, '/admin/x', 'peer_not_allowed', 'deny'],
    [PEERS.plaintext, '/admin/x', 'unauthenticated', 'deny'],
    [PEERS.ui, '/elsewhere', 'no_matching_rule', 'deny'],
    [PEERS.ui, '/api/secret', 'denied_by_rule', 'deny'],
  ];
  for (const [peer, path, reason, verdict] of CASES) {
    it(`${reason}: decides as enforce does, and lets the request through`, () => {
      const a = get(audit, peer, path);
      const e = get(enforce, peer, path);
      expect(a).toEqual({ ...e, allowed: true, mode: 'audit' });
      expect(a).toMatchObject({ verdict, reason });
      expect(e.allowed).toBe(verdict === 'allow');
    });
  }

  it('never lets a bad request through', () => {
    for (const path of ['/admin%2fx', '/../admin', 'http://h/admin', '/a\u0000']) {
      expect(get(audit, PEERS.ops, path)).toMatchObject({
        allowed: false,
        verdict: 'deny',
        reason: 'bad_request',
        mode: 'audit',
      });
    }
  });
});

// One restricted path, spelt every way a client, a proxy or a lenient router might spell it. A
// peer not allowed on /admin/* must never be allowed on a path any router takes for /admin/x.
describe('authorize: spellings of a restricted path', () => {
  const withDefault = createAuthorizationPolicy({ authorize: { '/admin/*': OPS, '*': '*' } });
  const withoutDefault = createAuthorizationPolicy({ authorize: { '/admin/*': OPS, '/public/*': '*' } });
  type Expected =
    | { reason: 'peer_not_allowed'; path: string }
    | { reason: 'bad_request' }
    | { reason: 'other'; path: string };
  const SPELLINGS: readonly (readonly [method: string, target: string, expected: Expected])[] = [
    ['GET', '/admin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '//admin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/admin//x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/%61dmin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/%41DMIN/%78', { reason: 'peer_not_allowed', path: '/ADMIN/x' }],
    ['GET', '/ADMIN/x', { reason: 'peer_not_allowed', path: '/ADMIN/x' }],
    ['GET', '/Admin', { reason: 'peer_not_allowed', path: '/Admin' }],
    ['GET', '/admin', { reason: 'peer_not_allowed', path: '/admin' }],
    ['GET', '/admin/', { reason: 'peer_not_allowed', path: '/admin/' }],
    ['GET', '/admin/x/', { reason: 'peer_not_allowed', path: '/admin/x/' }],
    ['GET', '/admin/./x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/admin/%2e/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/x/../admin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/x/%2e%2E/admin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/admin/x/..', { reason: 'peer_not_allowed', path: '/admin/' }],
    ['GET', '/admin/x?debug=1', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['HEAD', '/admin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['get', '/admin/x', { reason: 'peer_not_allowed', path: '/admin/x' }],
    ['GET', '/%2e%2e/admin/x', { reason: 'bad_request' }],
    ['GET', '/../admin/x', { reason: 'bad_request' }],
    ['GET', '/admin%2fx', { reason: 'bad_request' }],
    ['GET', '/ADMIN%2Fx', { reason: 'bad_request' }],
    ['GET', '/admin%5cx', { reason: 'bad_request' }],
    ['GET', '/admin\\x', { reason: 'bad_request' }],
    ['GET', '/admin/x;a=b', { reason: 'bad_request' }],
    ['GET', '/admin;/x', { reason: 'bad_request' }],
    ['GET', '/admin#/x', { reason: 'bad_request' }],
    ['GET', '/admin/x\u0000', { reason: 'bad_request' }],
    ['GET', '/admin/x%00', { reason: 'bad_request' }],
    ['GET', '/\u0430dmin/x', { reason: 'bad_request' }], // Cyrillic "а", raw
    ['GET', 'http://host/admin/x', { reason: 'bad_request' }],
    ['GET', 'https://host:443/admin/x', { reason: 'bad_request' }],
    ['OPTIONS', '*', { reason: 'bad_request' }],
    // Not the admin path for any router: "%25" is a literal "%", decoded once only.
    ['GET', '/%2561dmin/x', { reason: 'other', path: '/%2561dmin/x' }],
    ['GET', '/adminx', { reason: 'other', path: '/adminx' }],
  ];

  for (const [method, target, expected] of SPELLINGS) {
    it(`${method} ${JSON.stringify(target)}: ${expected.reason}`, () => {
      const d = authorize(withDefault, PEERS.ui, { method, path: target });
      if (expected.reason === 'other') {
        // Allowed by the default, on a path that is not /admin for any router.
        expect(d).toMatchObject({ allowed: true, rule: '*', path: expected.path });
        expect(d.path?.toLowerCase().startsWith('/admin/')).toBe(false);
      } else {
        expect(d).toMatchObject({ allowed: false, verdict: 'deny', ...expected });
        if (expected.reason === 'peer_not_allowed') expect(d.rule).toBe('/admin/*');
      }
      // Without a default rule, no spelling is allowed at all.
      expect(authorize(withoutDefault, PEERS.ui, { method, path: target }).allowed).toBe(false);
      // Control: the allowed peer does get through every spelling that is not a bad request.
      const ops = authorize(withDefault, PEERS.ops, { method, path: target });
      expect(ops.allowed).toBe(expected.reason !== 'bad_request');
    });
  }

  it('never allows a not-allowed peer on a path that reads as /admin (random spellings)', () => {
    const piece = fc.constantFrom(
      'admin',
      'ADMIN',
      '%61dmin',
      'x',
      '.',
      '..',
      '%2e',
      '',
      'Admin',
      '%2561dmin',
    );
    const target = fc.array(piece, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`);
    fc.assert(
      fc.property(target, fc.boolean(), (path, slash) => {
        const d = get(withDefault, PEERS.ui, slash ? `${path}/` : path);
        const admin = d.path !== null && /^\/admin(\/|$)/i.test(d.path);
        if (admin) expect(d.allowed).toBe(false);
        if (d.allowed) expect(d.path?.toLowerCase()).not.toMatch(/^\/admin(\/|$)/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('authorize: arguments', () => {
  const policy = createAuthorizationPolicy({ authorize: { '*': '*' } });

  it('refuses a policy not made by createAuthorizationPolicy', () => {
    const fake = { mode: 'enforce', describe: () => ({ mode: 'enforce', authorize: [], deny: [] }) };
    const err = expectCode(
      () => authorize(fake as AuthorizationPolicy, PEERS.ui, { method: 'GET', path: '/' }),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe('policy');
  });

  it('refuses a missing peer or request', () => {
    expect(
      expectCode(() => authorize(policy, null as never, { method: 'GET', path: '/' }), 'ERR_OPTION_INVALID')
        .detail.field,
    ).toBe('peer');
    expect(
      expectCode(() => authorize(policy, PEERS.ui, null as never), 'ERR_OPTION_INVALID').detail.field,
    ).toBe('request');
  });

  it('decides on a server-normalised target exactly as authorize() does', () => {
    const target = normalizeRequestTarget('get', '//A/./b?q=1');
    expect(target).toEqual({ ok: true, method: 'GET', path: '/A/b', query: '?q=1' });
    expect(authorizeNormalized(policy, PEERS.ui, target)).toEqual(
      get(policy, PEERS.ui, '//A/./b?q=1', 'get'),
    );
    const bad = normalizeRequestTarget('GET', '/a%2f');
    expect(authorizeNormalized(policy, PEERS.ui, bad)).toMatchObject({
      reason: 'bad_request',
      method: 'GET',
    });
  });

  it('is pure: the same inputs give the same decision, and the policy is unchanged', () => {
    const before = JSON.stringify(policy.describe());
    const a = get(policy, PEERS.ui, '/x');
    const b = get(policy, PEERS.ui, '/x');
    expect(a).toEqual(b);
    expect(a).not.toBe(b);
    expect(JSON.stringify(policy.describe())).toBe(before);
  });
});

describe('decisionEvent', () => {
  it('carries IDs, route and verdict, never certificates', async () => {
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    try {
      const peer = fakePeer({ svid: ca.issue('/ns/demo/sa/app-ui'), remoteAddress: '10.0.0.7' });
      const policy = createAuthorizationPolicy({ authorize: { '/admin/*': OPS } });
      const event = decisionEvent(get(policy, peer, '/admin/x'), peer);
      expect(event).toEqual({
        peer: 'spiffe://cluster.local/ns/demo/sa/app-ui',
        trustDomain: 'cluster.local',
        mtls: true,
        tls: true,
        remoteAddress: '10.0.0.7',
        method: 'GET',
        path: '/admin/x',
        rule: '/admin/*',
        matcher: OPS,
        verdict: 'deny',
        allowed: false,
        reason: 'peer_not_allowed',
        mode: 'enforce',
      });
      expect(JSON.stringify(event)).not.toMatch(/BEGIN|MII/);
      const plain = decisionEvent(get(policy, PEERS.plaintext, '/x'), PEERS.plaintext);
      expect(plain).toMatchObject({ peer: null, trustDomain: null, mtls: false, reason: 'no_matching_rule' });
    } finally {
      await ca.close();
    }
  });
});
