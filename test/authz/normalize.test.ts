import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeMethod, normalizePath, normalizeRequestTarget } from '../../src/authz/normalize.js';

type Row = readonly [target: string, path: string, query?: string];

// Accepted targets: the normal path each one becomes.
const NORMAL: readonly Row[] = [
  ['/', '/'],
  ['/a/b', '/a/b'],
  ['/a/b/', '/a/b/'],
  ['/a/b?x=1&y=/../z', '/a/b', '?x=1&y=/../z'],
  ['/a?', '/a', '?'],
  ['/?q', '/', '?q'],
  ['/a?x#y', '/a', '?x#y'],
  ['//a///b', '/a/b'],
  ['/a//', '/a/'],
  ['//', '/'],
  ['/a/./b', '/a/b'],
  ['/a/../b', '/b'],
  ['/a/b/..', '/a/'],
  ['/a/b/.', '/a/b/'],
  ['/.', '/'],
  ['/./', '/'],
  ['/a/..', '/'],
  ['/x/%2e%2e/admin', '/admin'],
  ['/x/.%2E/admin', '/admin'],
  ['/%2E', '/'],
  ['/%61dmin', '/admin'],
  ['/%41DMIN', '/ADMIN'],
  ['/%7euser/%2D%5F%2e%30', '/~user/-_.0'],
  ['/a%3ab', '/a%3Ab'],
  ['/a%3Fb', '/a%3Fb'],
  ['/a%23b', '/a%23b'],
  ['/a%3bb', '/a%3Bb'],
  ['/caf%c3%a9', '/caf%C3%A9'],
  // Double encoding: `%25` is the literal "%", so these name other resources, decoded once only.
  ['/%252e%252e/admin', '/%252e%252e/admin'],
  ['/%2561dmin/x', '/%2561dmin/x'],
  ['/.well-known/x', '/.well-known/x'],
  ['/a/...', '/a/...'],
  ['/a/..b/.c', '/a/..b/.c'],
  ["/a/!$&'()*+,=:@-._~", "/a/!$&'()*+,=:@-._~"],
];

// Refused targets (method GET unless given).
const REFUSED: readonly (readonly [target: string, problem: RegExp, method?: string])[] = [
  ['/..', /above the root/],
  ['/a/../..', /above the root/],
  ['/%2e%2e/admin', /above the root/],
  ['/.%2e/admin', /above the root/],
  ['/a%2fb', /encoded "\/"/],
  ['/a%2Fb', /encoded "\/"/],
  ['/a%5cb', /encoded "\/" or "\\"/],
  ['/a%5Cb', /encoded/],
  ['/a\\b', /backslash/],
  ['/a\u0000b', /control character/],
  ['/a%00b', /encoded control/],
  ['/a%0d%0aSet-Cookie:x', /encoded control/],
  ['/a%7F', /encoded control/],
  ['/a\tb', /control character/],
  ['/a b', /space/],
  ['/a\u007fb', /control character/],
  ['/café', /non-ASCII/],
  ['/\u212Admin', /non-ASCII/],
  // Case-insensitive routers lowercase or case-fold these into ASCII letters (KELVIN SIGN -> "k").
  ['/%E2%84%AAube', /case-folds to ASCII/],
  ['/x/%c4%b0', /case-folds to ASCII/],
  ['/%C5%BFecret', /case-folds to ASCII/],
  ['/a;b', /path parameter/],
  ['/admin/x;a=b', /path parameter/],
  ['/a#b', /fragment/],
  ['/a%', /malformed percent/],
  ['/a%2', /malformed percent/],
  ['/a%zz', /malformed percent/],
  ['/a%%41', /malformed percent/],
  ['http://host/admin', /absolute-form/],
  ['HTTPS://host/admin', /absolute-form/],
  ['*', /asterisk-form/, 'OPTIONS'],
  ['*', /asterisk-form/],
  ['host:443', /must start with "\/"/, 'CONNECT'],
  ['', /must start with "\/"/],
  ['admin', /must start with "\/"/],
  ['?x', /must start with "\/"/],
];

describe('normalizeRequestTarget', () => {
  for (const [target, path, query = ''] of NORMAL) {
    it(`normalises ${JSON.stringify(target)} to ${JSON.stringify(path)}`, () => {
      expect(normalizeRequestTarget('GET', target)).toEqual({ ok: true, method: 'GET', path, query });
    });
  }

  it('returns a clean path as the very same string (no copy on the common path)', () => {
    const target = '/api/v1/boards/42';
    const result = normalizeRequestTarget('GET', target);
    expect(result.ok && result.path).toBe(target);
  });

  for (const [target, problem, method = 'GET'] of REFUSED) {
    it(`refuses ${JSON.stringify(target)} (${method}) as a bad request`, () => {
      const result = normalizeRequestTarget(method, target);
      expect(result).toMatchObject({ ok: false, reason: 'bad_request', method });
      expect(result.ok === false && result.problem).toMatch(problem);
    });
  }

  it('never echoes the request in the problem', () => {
    const result = normalizeRequestTarget('GET', '/secret%2ftoken-abcdef');
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('secret');
  });

  it('uppercases methods, and refuses what is not a token', () => {
    expect(normalizeMethod('get')).toBe('GET');
    expect(normalizeMethod('PROPFIND')).toBe('PROPFIND');
    expect(normalizeMethod('m-search')).toBe('M-SEARCH');
    for (const bad of ['', 'G E T', 'GET\n', 'GÉT', '(GET)', 'GET/']) {
      expect(normalizeMethod(bad), bad).toBeUndefined();
      expect(normalizeRequestTarget(bad, '/a')).toMatchObject({
        ok: false,
        method: '',
        reason: 'bad_request',
      });
    }
    expect(normalizeRequestTarget('delete', '/a')).toMatchObject({ ok: true, method: 'DELETE' });
  });

  it('refuses what is not a string', () => {
    expect(normalizeRequestTarget(undefined as unknown as string, '/a').ok).toBe(false);
    expect(normalizeRequestTarget('GET', undefined as unknown as string).ok).toBe(false);
  });
});

// Pieces that make normalisation interesting: dots, escapes (good, bad, reserved, double),
// empty segments, separators, non-ASCII and controls.
const PIECE = fc.constantFrom(
  'a',
  'B',
  'admin',
  '.',
  '..',
  '...',
  '%2e',
  '%2E',
  '.%2e',
  '%61',
  '%7E',
  '%3a',
  '%25',
  '%252e',
  '%2f',
  '%5C',
  '%00',
  '%',
  '%g1',
  '',
  ';',
  '\\',
  '#',
  '?',
  'é',
  '\u0000',
  '~',
  '-_',
);
const SEGMENT = fc.array(PIECE, { maxLength: 3 }).map((pieces) => pieces.join(''));
const PATH = fc.array(SEGMENT, { maxLength: 8 }).map((segments) => `/${segments.join('/')}`);

function isNormal(path: string): boolean {
  return (
    path.startsWith('/') &&
    !path.includes('//') &&
    !/\/\.\.?(\/|$)/.test(path) &&
    !/%(2[DdEe]|3\d|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])/.test(path) && // no encoded unreserved
    !/%[0-9A-F]?[a-f]/.test(path) // hex digits uppercased
  );
}

/** The rules again, written the obvious way (split and join), to check the fast code against. */
function reference(path: string): string | 'bad' {
  if (/[^\x21-\x7e]|[#;\\]|%(?![0-9A-Fa-f]{2})/.test(path)) return 'bad';
  let refused = false;
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const byte = Number.parseInt(hex, 16);
    if (byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f) refused = true;
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9._~-]/.test(c) ? c : `%${hex.toUpperCase()}`;
  });
  if (refused || /%C4%B0|%C5%BF|%E2%84%AA/.test(decoded)) return 'bad';
  const out: string[] = [];
  const segments = decoded.split('/').slice(1);
  for (const segment of segments) {
    if (segment === '..') {
      if (out.length === 0) return 'bad';
      out.pop();
    } else if (segment !== '' && segment !== '.') {
      out.push(segment);
    }
  }
  const last = segments[segments.length - 1];
  const trailing = last === '' || last === '.' || last === '..';
  return out.length === 0 ? '/' : `/${out.join('/')}${trailing ? '/' : ''}`;
}

describe('normalizeRequestTarget properties', () => {
  it('agrees with the obvious implementation', () => {
    const paths = fc.oneof(
      PATH,
      fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => `/${s}`),
    );
    fc.assert(
      fc.property(paths, (path) => {
        const got = normalizePath(path);
        expect(typeof got === 'string' ? got : 'bad', path).toBe(reference(path));
      }),
      { numRuns: 5000 },
    );
  });

  it('gives either bad_request or a normal path, and is idempotent', () => {
    let accepted = 0;
    let rewritten = 0;
    fc.assert(
      fc.property(PATH, (target) => {
        const first = normalizeRequestTarget('GET', target);
        if (!first.ok) return;
        accepted++;
        if (first.path !== target) rewritten++;
        expect(isNormal(first.path), `${target} -> ${first.path}`).toBe(true);
        const again = normalizeRequestTarget('GET', first.path);
        expect(again).toEqual({ ok: true, method: 'GET', path: first.path, query: '' });
      }),
      { numRuns: 3000 },
    );
    // The generator must reach both outcomes, and real rewriting, or the property proves nothing.
    expect(accepted).toBeGreaterThan(300);
    expect(rewritten).toBeGreaterThan(150);
  });

  it('holds for arbitrary strings too', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 40 }), (rest) => {
        const first = normalizeRequestTarget('GET', `/${rest}`);
        if (!first.ok) return;
        expect(isNormal(first.path)).toBe(true);
        const again = normalizeRequestTarget('GET', first.path);
        expect(again.ok && again.path).toBe(first.path);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps the query as it was, and never lets it change the path', () => {
    fc.assert(
      fc.property(PATH, fc.string({ maxLength: 20 }), (path, query) => {
        const plain = normalizeRequestTarget('GET', path.replace(/[?]/g, 'q'));
        const withQuery = normalizeRequestTarget('GET', `${path.replace(/[?]/g, 'q')}?${query}`);
        expect(withQuery.ok).toBe(plain.ok);
        if (plain.ok && withQuery.ok) {
          expect(withQuery.path).toBe(plain.path);
          expect(withQuery.query).toBe(`?${query}`);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
