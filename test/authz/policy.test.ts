import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { AuthorizationMap } from '../../src/authz/authorization-map.js';
import { createAuthorizationPolicy } from '../../src/authz/policy.js';
import { isSidecarlessError } from '../../src/errors.js';
import { expectCode } from '../helpers/expect-code.js';

// Keys refused at construction, and a word the message must contain.
const BAD_KEYS: readonly (readonly [key: string, rule: RegExp])[] = [
  ['', /must not be empty/],
  [' /a', /no other whitespace/],
  ['/a ', /no other whitespace/],
  ['GET  /a', /no other whitespace/],
  ['GET\t/a', /no other whitespace/],
  ['GET\u00a0/a', /no other whitespace/],
  ['get /a', /uppercase: write "GET \/a"/],
  ['Get /a', /uppercase/],
  ['GTE /a', /"GTE" is not an HTTP method/],
  ['GET,POST /a', /not an HTTP method/],
  ['GET', /must start with "\/"/],
  ['GET ', /no other whitespace/],
  ['admin/*', /must start with "\/"/],
  ['a', /must start with "\/"/],
  ['**', /must start with "\/"/],
  ['/a*', /may only end a prefix pattern/],
  ['/a/*/b', /may only end a prefix pattern/],
  ['/a/b*', /may only end a prefix pattern/],
  ['/a/**', /may only end a prefix pattern/],
  ['/*', /write "\*" for the default rule/],
  ['GET /*', /write "\*" for the default rule/],
  ['/a/', /no trailing "\/": "\/a" also covers "\/a\/"/],
  ['/a//*', /empty segment/],
  ['/a//b', /normal form; write "\/a\/b"/],
  ['/a/./b', /normal form; write "\/a\/b"/],
  ['/a/../b/*', /normal form; write "\/b\/\*"/],
  ['/%61dmin', /normal form; write "\/admin"/],
  ['/..', /above the root/],
  ['/a%2fb', /encoded "\/"/],
  ['/a;b', /path parameter/],
  ['/a?x', /no query/],
  ['/a#b', /fragment/],
  ['/café', /non-ASCII/],
  ['/a\\b', /backslash/],
  ['/a%zz', /malformed percent/],
];

describe('createAuthorizationPolicy: keys', () => {
  for (const [key, rule] of BAD_KEYS) {
    it(`refuses the key ${JSON.stringify(key)}, naming it`, () => {
      const err = expectCode(
        () => createAuthorizationPolicy({ authorize: { [key]: '*' } }),
        'ERR_POLICY_INVALID',
      );
      expect(err.detail.field).toBe(key);
      expect(err.message).toMatch(rule);
      // The same rules bind the deny map.
      const denyErr = expectCode(
        () => createAuthorizationPolicy({ deny: { [key]: '*' } }),
        'ERR_POLICY_INVALID',
      );
      expect(denyErr.detail.field).toBe(key);
      expect(denyErr.message).toMatch(/^deny key/);
    });
  }

  const GOOD_KEYS = [
    '*',
    'GET *',
    '/',
    'GET /',
    '/a',
    '/a/*',
    'POST /a/b/*',
    'PROPFIND /dav/*',
    'M-SEARCH /upnp',
    '/a%3Ab',
    '/a%3ab',
    '/caf%C3%A9',
    "/a/!$&'()+,=:@-._~",
    '/.well-known/openid-configuration',
  ];
  for (const key of GOOD_KEYS) {
    it(`accepts the key ${JSON.stringify(key)}`, () => {
      expect(() => createAuthorizationPolicy({ authorize: { [key]: '*' } })).not.toThrow();
    });
  }

  const DUPLICATES: readonly AuthorizationMap[] = [
    { '/admin': '*', '/Admin': '*' },
    { '/admin/*': '*', '/ADMIN/*': '*' },
    { 'GET /a/B': '*', 'GET /A/b': '*' },
    { '/a%3A': '*', '/a%3a': '*' },
  ];
  for (const map of DUPLICATES) {
    const [first, second] = Object.keys(map) as [string, string];
    it(`refuses ${JSON.stringify(first)} next to ${JSON.stringify(second)} (case-insensitive keys)`, () => {
      const err = expectCode(() => createAuthorizationPolicy({ authorize: map }), 'ERR_POLICY_INVALID');
      expect(err.detail.field).toBe(second);
      expect(err.message).toContain(`same route as ${JSON.stringify(first)}`);
    });
  }

  it('keeps keys that only look alike: exact and prefix, method and any-method', () => {
    const policy = createAuthorizationPolicy({
      authorize: { '/a': '*', '/a/*': '*', 'GET /a': '*', 'GET /a/*': '*', 'POST /a': '*' },
    });
    expect(policy.describe().authorize).toHaveLength(5);
  });
});

describe('createAuthorizationPolicy: options', () => {
  it('refuses an unknown option (a misspelt security option must not be ignored)', () => {
    const err = expectCode(
      () =>
        createAuthorizationPolicy({ authorise: { '*': '*' } } as unknown as { authorize: AuthorizationMap }),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe('authorise');
  });

  it('refuses options that are not a plain object', () => {
    for (const options of [null, undefined, 'x', [], new Map()]) {
      expectCode(() => createAuthorizationPolicy(options as never), 'ERR_OPTION_INVALID');
    }
  });

  it('refuses maps that are not plain objects', () => {
    for (const map of [[['/a', '*']], new Map([['/a', '*']]), '/a', 42, null]) {
      const err = expectCode(
        () => createAuthorizationPolicy({ authorize: map as never }),
        'ERR_OPTION_INVALID',
      );
      expect(err.detail.field).toBe('authorize');
      expect(
        expectCode(() => createAuthorizationPolicy({ deny: map as never }), 'ERR_OPTION_INVALID').detail
          .field,
      ).toBe('deny');
    }
  });

  it('accepts null-prototype maps', () => {
    const map = Object.assign(Object.create(null) as Record<string, string>, { '/a': '*' });
    expect(createAuthorizationPolicy({ authorize: map }).describe().authorize).toHaveLength(1);
  });

  it('refuses an unknown mode', () => {
    const err = expectCode(
      () => createAuthorizationPolicy({ authorize: {}, mode: 'dry-run' as 'audit' }),
      'ERR_OPTION_INVALID',
    );
    expect(err.detail.field).toBe('mode');
  });

  it('defaults to enforce, and takes explicit undefined as left out', () => {
    expect(createAuthorizationPolicy({}).mode).toBe('enforce');
    expect(createAuthorizationPolicy({ authorize: undefined, deny: undefined, mode: undefined }).mode).toBe(
      'enforce',
    );
    expect(createAuthorizationPolicy({ mode: 'audit' }).mode).toBe('audit');
  });

  it('reports every error as a SidecarlessError, never a TypeError', () => {
    for (const map of [{ '/a': Symbol('x') }, { '/a': [undefined] }, { '/a': () => true, '/A': '*' }]) {
      try {
        createAuthorizationPolicy({ authorize: map as never });
        expect.fail('should have thrown');
      } catch (err) {
        expect(isSidecarlessError(err, 'ERR_POLICY_INVALID')).toBe(true);
      }
    }
  });
});

describe('AuthorizationPolicy', () => {
  const policy = createAuthorizationPolicy({
    authorize: {
      '*': '*',
      '/a/*': 'cluster.local/ns/demo/*',
      'GET /a/b/*': ['*', 'unauthenticated'],
      '/a/b/*': '*',
      '/a/b/c': 'spiffe://cluster.local/ns/ops/sa/admin',
      'GET *': 'unauthenticated',
    },
    deny: { '/a/*': 'spiffe://partner.example/*' },
    mode: 'audit',
  });

  it('is frozen and opaque', () => {
    expect(Object.isFrozen(policy)).toBe(true);
    expect(() => {
      (policy as { mode: string }).mode = 'enforce';
    }).toThrow(TypeError);
    expect(inspect(policy)).toBe('AuthorizationPolicy(audit, 6 authorize rules, 1 deny rules)');
  });

  it('describes its rules, most specific first, with matchers as written', () => {
    const d = policy.describe();
    expect(d.mode).toBe('audit');
    expect(d.authorize.map((r) => r.key)).toEqual(['/a/b/c', 'GET /a/b/*', '/a/b/*', '/a/*', 'GET *', '*']);
    expect(d.authorize[1]).toEqual({
      key: 'GET /a/b/*',
      method: 'GET',
      kind: 'prefix',
      path: '/a/b',
      matcher: '[*, unauthenticated]',
    });
    expect(d.authorize[5]).toEqual({ key: '*', method: null, kind: 'default', path: null, matcher: '*' });
    expect(d.deny).toEqual([
      { key: '/a/*', method: null, kind: 'prefix', path: '/a', matcher: 'spiffe://partner.example/*' },
    ]);
    expect(Object.isFrozen(d) && Object.isFrozen(d.authorize) && Object.isFrozen(d.authorize[0])).toBe(true);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(JSON.parse(JSON.stringify(policy))).toEqual(d);
  });

  it('lowercases paths in the description, keeping keys as written', () => {
    const d = createAuthorizationPolicy({ authorize: { '/Admin/*': '*' } }).describe();
    expect(d.authorize[0]).toMatchObject({ key: '/Admin/*', path: '/admin' });
  });
});
