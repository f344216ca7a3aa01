import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isSidecarlessError,
  MAX_SPIFFE_ID_BYTES,
  parseSpiffeId,
  type SidecarlessError,
  SpiffeId,
  TrustDomain,
} from '../../src/index.js';
import {
  expectNoKeyMaterial,
  expectRefusal,
  expectTidyError,
  isSpiffeIdOracle,
  privateKeyPem,
  thrown,
} from './support.js';

// The rule words, copied from src/spiffe: a test fails if a message stops naming its rule.
const RULE = {
  notString: 'SPIFFE ID must be a string',
  empty: 'SPIFFE ID is empty',
  tooLong: 'SPIFFE ID is longer than 2048 bytes',
  schemeCase: 'scheme must be lowercase "spiffe"',
  scheme: 'scheme is missing or invalid: a SPIFFE ID starts with "spiffe://"',
  query: 'a SPIFFE ID must not have a query',
  fragment: 'a SPIFFE ID must not have a fragment',
  tdMissing: 'trust domain is missing',
  tdTooLong: 'trust domain is longer than 255 bytes',
  userinfo: 'trust domain must not include userinfo ("user@")',
  port: 'trust domain must not include a port',
  tdPercent: 'trust domain must not be percent-encoded',
  tdUpper: '(uppercase is an error, not normalised)',
  tdChars: 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
  leadingSlash: 'path must have a leading slash',
  trailingSlash: 'path cannot have a trailing slash',
  emptySegment: 'path cannot contain empty segments',
  dotSegment: 'path cannot contain dot segments',
  pathPercent: 'path must not be percent-encoded',
  pathChars: 'path characters are limited to letters, numbers, dots, dashes, and underscores',
  segmentSlash: 'a path segment cannot contain "/"',
} as const;

const ID = 'ERR_SPIFFE_ID_INVALID';
const TD = 'ERR_TRUST_DOMAIN_INVALID';

const td255 = 'a'.repeat(255);
// 'spiffe://td/' is 12 bytes: a last segment of 2036 makes the whole ID exactly 2048 bytes.
const id2048 = `spiffe://td/${'x'.repeat(2036)}`;

describe('SpiffeId.parse accepts every valid form, unchanged', () => {
  const cases: { name: string; input: string; td: string; path: string }[] = [
    { name: 'root ID of a trust domain', input: 'spiffe://td', td: 'td', path: '' },
    {
      name: 'typical workload ID',
      input: 'spiffe://cluster.local/ns/demo/sa/boards',
      td: 'cluster.local',
      path: '/ns/demo/sa/boards',
    },
    {
      name: 'every trust domain character class',
      input: 'spiffe://abcdefghijklmnopqrstuvwxyz0123456789._-/x',
      td: 'abcdefghijklmnopqrstuvwxyz0123456789._-',
      path: '/x',
    },
    {
      name: 'every path character class',
      input: 'spiffe://td/ABCDEFGHIJKLMNOPQRSTUVWXYZ/abcdefghijklmnopqrstuvwxyz/0123456789/._-',
      td: 'td',
      path: '/ABCDEFGHIJKLMNOPQRSTUVWXYZ/abcdefghijklmnopqrstuvwxyz/0123456789/._-',
    },
    { name: 'numeric trust domain', input: 'spiffe://123/x', td: '123', path: '/x' },
    { name: 'underscore and dash trust domain', input: 'spiffe://a_b-c/x', td: 'a_b-c', path: '/x' },
    { name: 'dot inside a segment', input: 'spiffe://td/a.b', td: 'td', path: '/a.b' },
    { name: 'segment starting with a dot', input: 'spiffe://td/.a', td: 'td', path: '/.a' },
    { name: 'segment ending with a dot', input: 'spiffe://td/a.', td: 'td', path: '/a.' },
    { name: 'segment of three dots', input: 'spiffe://td/...', td: 'td', path: '/...' },
    { name: 'segment "..a"', input: 'spiffe://td/..a/b', td: 'td', path: '/..a/b' },
    { name: 'underscore segment', input: 'spiffe://td/_', td: 'td', path: '/_' },
    { name: 'dash segment', input: 'spiffe://td/-', td: 'td', path: '/-' },
    {
      name: 'uppercase in the path is kept',
      input: 'spiffe://td/UPPER/Mixed',
      td: 'td',
      path: '/UPPER/Mixed',
    },
    { name: 'trust domain of exactly 255 bytes', input: `spiffe://${td255}`, td: td255, path: '' },
    { name: '255-byte trust domain with a path', input: `spiffe://${td255}/x`, td: td255, path: '/x' },
    { name: 'ID of exactly 2048 bytes', input: id2048, td: 'td', path: id2048.slice(11) },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const id = SpiffeId.parse(c.input);
      expect(id.toString()).toBe(c.input);
      expect(id.trustDomain.name).toBe(c.td);
      expect(id.path).toBe(c.path);
      expect(parseSpiffeId(c.input).equals(id)).toBe(true);
    });
  }

  it('the 2048-byte case really is 2048 bytes', () => {
    expect(Buffer.byteLength(id2048)).toBe(MAX_SPIFFE_ID_BYTES);
    expect(MAX_SPIFFE_ID_BYTES).toBe(2048);
  });
});

describe('SpiffeId.parse refuses every rule violation', () => {
  const cases: { name: string; input: string; expErr: string }[] = [
    { name: 'empty string', input: '', expErr: RULE.empty },
    // scheme
    { name: 'uppercase scheme', input: 'SPIFFE://td/x', expErr: RULE.schemeCase },
    { name: 'mixed-case scheme', input: 'Spiffe://td', expErr: RULE.schemeCase },
    { name: 'https scheme', input: 'https://td/x', expErr: RULE.scheme },
    { name: 'one slash after the scheme', input: 'spiffe:/td/x', expErr: RULE.scheme },
    { name: 'no slashes after the scheme', input: 'spiffe:td', expErr: RULE.scheme },
    { name: 'scheme-relative', input: '//td/x', expErr: RULE.scheme },
    { name: 'no scheme at all', input: 'td/x', expErr: RULE.scheme },
    { name: 'leading space', input: ' spiffe://td/x', expErr: RULE.scheme },
    { name: 'scheme without separator', input: 'spiffe', expErr: RULE.scheme },
    // query and fragment
    { name: 'query', input: 'spiffe://td/x?y=1', expErr: RULE.query },
    { name: 'empty query on the root', input: 'spiffe://td?', expErr: RULE.query },
    { name: 'fragment', input: 'spiffe://td/x#frag', expErr: RULE.fragment },
    { name: 'empty fragment on the root', input: 'spiffe://td#', expErr: RULE.fragment },
    // trust domain
    { name: 'no trust domain', input: 'spiffe://', expErr: RULE.tdMissing },
    { name: 'no trust domain, with a path', input: 'spiffe:///x', expErr: RULE.tdMissing },
    { name: 'userinfo', input: 'spiffe://user@td/x', expErr: RULE.userinfo },
    { name: 'userinfo with password', input: 'spiffe://user:pass@td/x', expErr: RULE.userinfo },
    { name: 'port', input: 'spiffe://td:8080/x', expErr: RULE.port },
    { name: 'empty port', input: 'spiffe://td:/x', expErr: RULE.port },
    { name: 'percent-encoded trust domain', input: 'spiffe://t%64/x', expErr: RULE.tdPercent },
    { name: 'uppercase trust domain', input: 'spiffe://TD/x', expErr: RULE.tdUpper },
    {
      name: 'one uppercase letter in the trust domain',
      input: 'spiffe://Cluster.local',
      expErr: RULE.tdUpper,
    },
    { name: 'space in the trust domain', input: 'spiffe://t d/x', expErr: RULE.tdChars },
    { name: 'non-ASCII trust domain', input: 'spiffe://tä/x', expErr: RULE.tdChars },
    { name: 'plus in the trust domain', input: 'spiffe://a+b/x', expErr: RULE.tdChars },
    { name: 'backslash in the trust domain', input: 'spiffe://td\\x', expErr: RULE.tdChars },
    { name: 'tilde in the trust domain', input: 'spiffe://t~d', expErr: RULE.tdChars },
    { name: 'trust domain of 256 bytes', input: `spiffe://${'a'.repeat(256)}/x`, expErr: RULE.tdTooLong },
    // path
    { name: 'trailing slash on the root', input: 'spiffe://td/', expErr: RULE.trailingSlash },
    { name: 'trailing slash after a segment', input: 'spiffe://td/a/', expErr: RULE.trailingSlash },
    { name: 'empty first segment', input: 'spiffe://td//a', expErr: RULE.emptySegment },
    { name: 'empty middle segment', input: 'spiffe://td/a//b', expErr: RULE.emptySegment },
    { name: 'double slash only', input: 'spiffe://td//', expErr: RULE.emptySegment },
    { name: 'dot segment', input: 'spiffe://td/.', expErr: RULE.dotSegment },
    { name: 'dot-dot segment', input: 'spiffe://td/..', expErr: RULE.dotSegment },
    { name: 'dot segment in the middle', input: 'spiffe://td/a/./b', expErr: RULE.dotSegment },
    { name: 'dot-dot segment in the middle', input: 'spiffe://td/a/../b', expErr: RULE.dotSegment },
    { name: 'dot-dot segment at the end', input: 'spiffe://td/a/..', expErr: RULE.dotSegment },
    { name: 'percent-encoded space', input: 'spiffe://td/a%20b', expErr: RULE.pathPercent },
    { name: 'percent-encoded dot segment', input: 'spiffe://td/%2e%2e', expErr: RULE.pathPercent },
    { name: 'percent-encoded slash', input: 'spiffe://td/a%2Fb', expErr: RULE.pathPercent },
    { name: 'space in the path', input: 'spiffe://td/a b', expErr: RULE.pathChars },
    { name: 'NUL in the path', input: 'spiffe://td/a\u0000b', expErr: RULE.pathChars },
    { name: 'trailing newline', input: 'spiffe://td/x\n', expErr: RULE.pathChars },
    { name: 'non-ASCII letter in the path', input: 'spiffe://td/é', expErr: RULE.pathChars },
    { name: 'plus in the path', input: 'spiffe://td/a+b', expErr: RULE.pathChars },
    { name: 'tilde in the path', input: 'spiffe://td/a~b', expErr: RULE.pathChars },
    { name: 'colon in the path', input: 'spiffe://td/a:b', expErr: RULE.pathChars },
    { name: 'at sign in the path', input: 'spiffe://td/a@b', expErr: RULE.pathChars },
    { name: 'backslash in the path', input: 'spiffe://td/a\\b', expErr: RULE.pathChars },
    // length
    { name: 'ID of 2049 bytes', input: `${id2048}x`, expErr: RULE.tooLong },
    {
      name: 'ID under 2048 characters but over 2048 bytes',
      input: `spiffe://td/${'é'.repeat(1100)}`,
      expErr: RULE.tooLong,
    },
    { name: 'very long ID', input: `spiffe://td/${'a'.repeat(100_000)}`, expErr: RULE.tooLong },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = expectRefusal(() => SpiffeId.parse(c.input), ID, c.expErr);
      expectTidyError(err, 400);
      // parseSpiffeId is the same function.
      expectRefusal(() => parseSpiffeId(c.input), ID, c.expErr);
    });
  }

  it('shows the offending input, quoted, in the message and the detail', () => {
    const err = expectRefusal(() => SpiffeId.parse('spiffe://td/a b'), ID, RULE.pathChars);
    expect(err.message).toContain('"spiffe://td/a b"');
    expect(err.detail.value).toContain('spiffe://td/a b');
  });

  it('a 2049-byte control: one byte less is accepted', () => {
    expect(SpiffeId.parse(id2048).toString()).toBe(id2048);
    expectRefusal(() => SpiffeId.parse(`${id2048}x`), ID, RULE.tooLong);
  });
});

describe('SpiffeId refuses non-string input with the typed error', () => {
  const inputs: { name: string; input: unknown; type: string }[] = [
    { name: 'number', input: 42, type: 'number' },
    { name: 'null', input: null, type: 'object' },
    { name: 'undefined', input: undefined, type: 'undefined' },
    { name: 'object', input: {}, type: 'object' },
    { name: 'array', input: ['spiffe://td/x'], type: 'object' },
    { name: 'String object', input: new String('spiffe://td/x'), type: 'object' },
    { name: 'symbol', input: Symbol('spiffe://td/x'), type: 'symbol' },
    { name: 'a SpiffeId', input: SpiffeId.parse('spiffe://td/x'), type: 'object' },
  ];
  for (const c of inputs) {
    it(`parse(${c.name})`, () => {
      expectRefusal(() => SpiffeId.parse(c.input as string), ID, `${RULE.notString}, got ${c.type}`);
      expectRefusal(() => parseSpiffeId(c.input as string), ID, RULE.notString);
    });
    it(`fromPath('td', ${c.name})`, () => {
      expectRefusal(
        () => SpiffeId.fromPath('td', c.input as string),
        ID,
        `path must be a string, got ${c.type}`,
      );
    });
    it(`fromSegments('td', 'a', ${c.name})`, () => {
      const err = expectRefusal(
        () => SpiffeId.fromSegments('td', 'a', c.input as string),
        ID,
        'path segment 1 must be a string',
      );
      expect(err.detail.index).toBe(1);
    });
  }

  // A trust domain that is neither a TrustDomain nor a string must not slip through as "undefined".
  const badTrustDomains: { name: string; input: unknown }[] = [
    { name: 'number', input: 42 },
    { name: 'null', input: null },
    { name: 'undefined', input: undefined },
    { name: 'object', input: {} },
    { name: 'object with a bad name', input: { name: 'Evil.Org' } },
  ];
  for (const c of badTrustDomains) {
    it(`fromSegments(${c.name}, 'a') and fromPath(${c.name}, '/a')`, () => {
      for (const fn of [
        () => SpiffeId.fromSegments(c.input as string, 'a'),
        () => SpiffeId.fromPath(c.input as string, '/a'),
      ]) {
        const err = thrown(fn);
        expect(err, String(err)).not.toBeInstanceOf(TypeError);
        expect(isSidecarlessError(err, TD), String(err)).toBe(true);
      }
    });
  }
});

describe('SpiffeId.fromSegments', () => {
  it('builds the root ID from no segments', () => {
    const id = SpiffeId.fromSegments('td');
    expect(id.toString()).toBe('spiffe://td');
    expect(id.path).toBe('');
    expect(id.segments()).toEqual([]);
  });

  it('joins segments with slashes and equals the parsed ID', () => {
    const id = SpiffeId.fromSegments('cluster.local', 'ns', 'demo', 'sa', 'boards');
    expect(id.toString()).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    expect(id.equals(SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/boards'))).toBe(true);
  });

  it('takes a TrustDomain, or a trust domain written as its ID', () => {
    const td = TrustDomain.parse('td');
    expect(SpiffeId.fromSegments(td, 'a').toString()).toBe('spiffe://td/a');
    expect(SpiffeId.fromSegments('spiffe://td', 'a').toString()).toBe('spiffe://td/a');
  });

  it('accepts dots inside segments and the "..." segment', () => {
    expect(SpiffeId.fromSegments('td', 'a.b', '...', '.a', '_', '-').path).toBe('/a.b/.../.a/_/-');
  });

  const refusals: { name: string; segments: string[]; expErr: string; index: number }[] = [
    { name: 'a segment containing "/"', segments: ['a/b'], expErr: RULE.segmentSlash, index: 0 },
    { name: 'a segment that is only "/"', segments: ['ok', '/'], expErr: RULE.segmentSlash, index: 1 },
    { name: 'an empty segment', segments: ['a', ''], expErr: RULE.emptySegment, index: 1 },
    { name: 'a "." segment', segments: ['.'], expErr: RULE.dotSegment, index: 0 },
    { name: 'a ".." segment', segments: ['a', 'b', '..'], expErr: RULE.dotSegment, index: 2 },
    { name: 'a percent-encoded segment', segments: ['a%2F'], expErr: RULE.pathPercent, index: 0 },
    { name: 'a segment with a space', segments: ['a b'], expErr: RULE.pathChars, index: 0 },
    { name: 'a segment with a query mark', segments: ['a?b'], expErr: RULE.pathChars, index: 0 },
    { name: 'a segment with a hash', segments: ['a#b'], expErr: RULE.pathChars, index: 0 },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name}`, () => {
      const err = expectRefusal(() => SpiffeId.fromSegments('td', ...c.segments), ID, c.expErr);
      expect(err.message).toContain(`path segment ${c.index} `);
      expect(err.detail.index).toBe(c.index);
      expectTidyError(err, 400);
    });
  }

  const tdRefusals: { name: string; td: string; expErr: string }[] = [
    { name: 'an empty trust domain', td: '', expErr: RULE.tdMissing },
    { name: 'an uppercase trust domain', td: 'TD', expErr: RULE.tdUpper },
    { name: 'a trust domain with a port', td: 'td:1', expErr: RULE.port },
    { name: 'a workload ID as the trust domain', td: 'spiffe://td/x', expErr: 'a trust domain has no path' },
  ];
  for (const c of tdRefusals) {
    it(`refuses ${c.name} with ERR_TRUST_DOMAIN_INVALID`, () => {
      expectRefusal(() => SpiffeId.fromSegments(c.td, 'a'), TD, c.expErr);
    });
  }

  it('refuses an ID over 2048 bytes, accepts exactly 2048', () => {
    expect(SpiffeId.fromSegments('td', 'x'.repeat(2036)).toString()).toBe(id2048);
    const err = expectRefusal(() => SpiffeId.fromSegments('td', 'x'.repeat(2037)), ID, RULE.tooLong);
    expectTidyError(err, 400);
    expectRefusal(() => SpiffeId.fromSegments(td255, ...Array(1000).fill('ab')), ID, RULE.tooLong);
  });
});

describe('SpiffeId.fromPath', () => {
  it('builds the root ID from an empty path', () => {
    expect(SpiffeId.fromPath('td', '').toString()).toBe('spiffe://td');
  });

  it('builds from a path with its leading slash, and a TrustDomain', () => {
    expect(SpiffeId.fromPath('td', '/ns/demo').toString()).toBe('spiffe://td/ns/demo');
    expect(SpiffeId.fromPath(TrustDomain.parse('td'), '/a/.../b.c').toString()).toBe('spiffe://td/a/.../b.c');
  });

  const refusals: { name: string; path: string; expErr: string }[] = [
    { name: 'no leading slash', path: 'a/b', expErr: RULE.leadingSlash },
    { name: 'a whole ID as the path', path: 'spiffe://td/a', expErr: RULE.leadingSlash },
    { name: 'only a slash', path: '/', expErr: RULE.trailingSlash },
    { name: 'a trailing slash', path: '/a/', expErr: RULE.trailingSlash },
    { name: 'an empty segment', path: '//a', expErr: RULE.emptySegment },
    { name: 'a dot segment', path: '/./a', expErr: RULE.dotSegment },
    { name: 'a dot-dot segment', path: '/a/..', expErr: RULE.dotSegment },
    { name: 'percent-encoding', path: '/a%2F', expErr: RULE.pathPercent },
    { name: 'a query mark', path: '/a?b', expErr: RULE.pathChars },
    { name: 'a fragment mark', path: '/a#b', expErr: RULE.pathChars },
    { name: 'a control character', path: '/a\rb', expErr: RULE.pathChars },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name}`, () => {
      const err = expectRefusal(() => SpiffeId.fromPath('td', c.path), ID, c.expErr);
      expect(err.message).toContain('path ');
      expectTidyError(err, 400);
    });
  }

  it('refuses a bad trust domain string with ERR_TRUST_DOMAIN_INVALID', () => {
    expectRefusal(() => SpiffeId.fromPath('Td', '/a'), TD, RULE.tdUpper);
    expectRefusal(() => SpiffeId.fromPath('https://td', '/a'), TD, 'scheme must be "spiffe://"');
  });

  it('refuses an ID over 2048 bytes, accepts exactly 2048', () => {
    expect(SpiffeId.fromPath('td', `/${'x'.repeat(2036)}`).toString()).toBe(id2048);
    expectRefusal(() => SpiffeId.fromPath('td', `/${'x'.repeat(2037)}`), ID, RULE.tooLong);
    const err = expectRefusal(() => SpiffeId.fromPath('td', `/${'x'.repeat(100_000)}`), ID, RULE.tooLong);
    expectTidyError(err, 400);
  });
});

describe('SpiffeId accessors and comparisons', () => {
  const id = SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/boards');

  it('trustDomain, path and segments()', () => {
    expect(id.trustDomain).toBeInstanceOf(TrustDomain);
    expect(id.trustDomain.name).toBe('cluster.local');
    expect(id.path).toBe('/ns/demo/sa/boards');
    expect(id.segments()).toEqual(['ns', 'demo', 'sa', 'boards']);
    expect(SpiffeId.parse('spiffe://td').segments()).toEqual([]);
  });

  it('segments() returns a copy the caller may change', () => {
    const segs = id.segments();
    segs.push('admin');
    segs[0] = 'other';
    expect(id.segments()).toEqual(['ns', 'demo', 'sa', 'boards']);
    expect(id.path).toBe('/ns/demo/sa/boards');
  });

  it('toString, String() and template literals give the ID', () => {
    expect(id.toString()).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    expect(String(id)).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    expect(`${id}`).toBe('spiffe://cluster.local/ns/demo/sa/boards');
  });

  it('equals another SpiffeId', () => {
    expect(id.equals(SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/boards'))).toBe(true);
    expect(id.equals(SpiffeId.fromSegments('cluster.local', 'ns', 'demo', 'sa', 'boards'))).toBe(true);
    expect(id.equals(SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/ui'))).toBe(false);
    expect(id.equals(SpiffeId.parse('spiffe://other.local/ns/demo/sa/boards'))).toBe(false);
    expect(id.equals(SpiffeId.parse('spiffe://cluster.local/ns/demo/sa'))).toBe(false);
  });

  it('equals a string only when it is the exact canonical form', () => {
    expect(id.equals('spiffe://cluster.local/ns/demo/sa/boards')).toBe(true);
    for (const near of [
      'spiffe://cluster.local/ns/demo/sa/boards/',
      'SPIFFE://cluster.local/ns/demo/sa/boards',
      'spiffe://Cluster.local/ns/demo/sa/boards',
      'spiffe://cluster.local/ns/demo/sa/Boards',
      'spiffe://cluster.local/ns/demo/sa/./boards',
      'spiffe://cluster.local/ns/demo/sa/boards?x',
      'spiffe://cluster.local:443/ns/demo/sa/boards',
      ' spiffe://cluster.local/ns/demo/sa/boards',
      '/ns/demo/sa/boards',
      '',
    ]) {
      expect(id.equals(near), near).toBe(false);
    }
  });

  it('equals(non-ID) is false, not a TypeError', () => {
    for (const other of [null, undefined, 42, {}, { path: id.path }]) {
      expect(id.equals(other as unknown as string)).toBe(false);
    }
  });

  it('memberOf a TrustDomain or its name, exactly', () => {
    expect(id.memberOf('cluster.local')).toBe(true);
    expect(id.memberOf(TrustDomain.parse('cluster.local'))).toBe(true);
    expect(id.memberOf('local')).toBe(false);
    expect(id.memberOf('cluster.local.evil')).toBe(false);
    expect(id.memberOf('Cluster.local')).toBe(false);
    expect(id.memberOf(TrustDomain.parse('other.local'))).toBe(false);
    expect(SpiffeId.parse('spiffe://evilcluster.local/x').memberOf('cluster.local')).toBe(false);
    expect(SpiffeId.parse('spiffe://cluster.local.evil/x').memberOf('cluster.local')).toBe(false);
  });

  it('memberOf(non-trust-domain) is false, not a TypeError', () => {
    for (const other of [null, undefined, 42, {}]) {
      expect(id.memberOf(other as unknown as string)).toBe(false);
    }
  });

  it('toJSON gives the string', () => {
    expect(id.toJSON()).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://cluster.local/ns/demo/sa/boards"}');
  });

  it('util.inspect shows the ID', () => {
    expect(inspect(id)).toBe('SpiffeId(spiffe://cluster.local/ns/demo/sa/boards)');
    expect(inspect({ peer: id })).toBe('{ peer: SpiffeId(spiffe://cluster.local/ns/demo/sa/boards) }');
  });
});

describe('SpiffeId is immutable', () => {
  it('the ID and its trust domain are frozen', () => {
    const id = SpiffeId.parse('spiffe://td/a');
    expect(Object.isFrozen(id)).toBe(true);
    expect(Object.isFrozen(id.trustDomain)).toBe(true);
    expect(Object.isFrozen(SpiffeId.fromSegments('td', 'a'))).toBe(true);
    expect(Object.isFrozen(SpiffeId.fromPath('td', '/a'))).toBe(true);
  });

  it('assignment throws in strict mode and changes nothing', () => {
    const id = SpiffeId.parse('spiffe://td/a');
    const loose = id as unknown as Record<string, unknown>;
    expect(() => {
      loose.path = '/admin';
    }).toThrow(TypeError);
    expect(() => {
      loose.trustDomain = TrustDomain.parse('evil');
    }).toThrow(TypeError);
    expect(() => {
      loose.extra = 1;
    }).toThrow(TypeError);
    expect(() => {
      (id.trustDomain as unknown as Record<string, unknown>).name = 'evil';
    }).toThrow(TypeError);
    expect(id.toString()).toBe('spiffe://td/a');
    expect(id.path).toBe('/a');
    expect(id.memberOf('td')).toBe(true);
  });
});

describe('SpiffeId error messages', () => {
  it('truncate a long input: the message stays short', () => {
    for (const input of [
      'x'.repeat(100_000),
      `spiffe://td/${'a'.repeat(100_000)}`,
      `spiffe://td/${'a'.repeat(2000)}/..`,
      `SPIFFE://${'a'.repeat(2000)}`,
    ]) {
      const err = expectRefusal(() => SpiffeId.parse(input), ID, '');
      expectTidyError(err, 400);
      expect(err.message).toContain('characters)');
    }
  });

  it('escape control characters', () => {
    const nl = expectRefusal(() => SpiffeId.parse('spiffe://td/a\nb'), ID, RULE.pathChars);
    expect(nl.message).not.toContain('\n');
    expect(nl.message).toContain('\\n');
    const nul = expectRefusal(() => SpiffeId.parse('spiffe://td/\u0000'), ID, RULE.pathChars);
    expect(nul.message).not.toContain('\u0000');
    expect(nul.message).toContain('\\u0000');
    const esc = expectRefusal(() => SpiffeId.parse('\u001b[31mspiffe://td'), ID, RULE.scheme);
    expect(esc.message).not.toContain('\u001b');
    for (const err of [nl, nul, esc]) expectTidyError(err, 400);
  });

  it('escape DEL, C1 controls, line separators and bidi overrides (log injection)', () => {
    for (const ch of ['\u007f', '\u009b', '\u0085', '\u2028', '\u2029', '\u202e', '\u2066', '\u200f']) {
      const err = expectRefusal(() => SpiffeId.parse(`spiffe://td/a${ch}b`), ID, RULE.pathChars);
      expect(err.message).not.toContain(ch);
      expect(err.message).toContain(`\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
      expectTidyError(err, 400);
    }
  });

  it('do not echo binary data', () => {
    const err = expectRefusal(() => SpiffeId.parse(`spiffe://td/${'\u0001'.repeat(50)}`), ID, RULE.pathChars);
    expect(err.message).toContain('<binary data of 62 characters, not shown>');
    expectTidyError(err, 400);
  });

  describe('never show a private key', () => {
    const { pem, body } = privateKeyPem();
    const attempts: { name: string; fn: () => unknown }[] = [
      { name: 'PEM as the ID', fn: () => SpiffeId.parse(pem) },
      { name: 'PEM after the scheme', fn: () => SpiffeId.parse(`spiffe://td/${pem}`) },
      // The body alone can be a valid path (no '+'): a trailing slash makes sure it is refused.
      { name: 'base64 body as the path', fn: () => SpiffeId.parse(`spiffe://td/${body}/`) },
      { name: 'PEM as a segment', fn: () => SpiffeId.fromSegments('td', pem) },
      { name: 'PEM as a path', fn: () => SpiffeId.fromPath('td', pem) },
      { name: 'PEM as the trust domain of fromSegments', fn: () => SpiffeId.fromSegments(pem, 'a') },
    ];
    for (const a of attempts) {
      it(a.name, () => {
        const err = thrown(a.fn) as SidecarlessError;
        expect(isSidecarlessError(err), String(err)).toBe(true);
        expectNoKeyMaterial(err, body);
        expectTidyError(err, 400);
      });
    }
  });
});

describe('SpiffeId properties', () => {
  const tdArb = fc.stringMatching(/^[a-z0-9._-]{1,40}$/);
  const segmentArb = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/).filter((s) => s !== '.' && s !== '..');
  const segmentsArb = fc.array(segmentArb, { maxLength: 8 });

  it('a valid ID round-trips through parse, fromSegments and fromPath', () => {
    fc.assert(
      fc.property(tdArb, segmentsArb, (td, segments) => {
        const built = SpiffeId.fromSegments(td, ...segments);
        const text = built.toString();
        const parsed = SpiffeId.parse(text);
        expect(parsed.toString()).toBe(text);
        expect(parsed.equals(built)).toBe(true);
        expect(built.equals(parsed)).toBe(true);
        expect(parsed.equals(text)).toBe(true);
        expect(parsed.trustDomain.name).toBe(td);
        expect(parsed.memberOf(td)).toBe(true);
        expect(parsed.segments()).toEqual(segments);
        expect(parsed.path).toBe(segments.length === 0 ? '' : `/${segments.join('/')}`);
        expect(SpiffeId.fromPath(td, parsed.path).equals(parsed)).toBe(true);
        expect(SpiffeId.fromSegments(parsed.trustDomain, ...parsed.segments()).equals(text)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  // Strings that get past the early checks: spiffe-ish prefixes, then characters near the rules.
  const nearChars = fc.constantFrom(...'aZ09._-/:@%?#~+ \\\n\u0000éİ'.split(''), '\u{1F600}', '\ud800');
  const nearArb = fc
    .tuple(
      fc.constantFrom('spiffe://', 'SPIFFE://', 'Spiffe://', 'spiffe:/', 'spiffe://td/', 'spiffe://td', ''),
      fc.string({ unit: nearChars, maxLength: 30 }),
    )
    .map(([prefix, rest]) => prefix + rest);
  // Valid IDs with one character inserted, replaced or removed.
  const mutatedArb = fc
    .tuple(tdArb, segmentsArb, fc.nat(), fc.oneof(nearChars, fc.constant('')), fc.nat({ max: 1 }))
    .map(([td, segments, at, ch, drop]) => {
      const text = SpiffeId.fromSegments(td, ...segments).toString();
      const i = at % (text.length + 1);
      return text.slice(0, i) + ch + text.slice(i + drop);
    });
  const anyArb = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'binary-ascii' }),
    nearArb,
    mutatedArb,
  );

  it('parse returns an ID equal to its input, or throws ERR_SPIFFE_ID_INVALID: never anything else', () => {
    fc.assert(
      fc.property(anyArb, (input) => {
        let id: SpiffeId | undefined;
        try {
          id = SpiffeId.parse(input);
        } catch (err) {
          if (!isSidecarlessError(err, ID)) throw err;
          expectTidyError(err, 1000);
        }
        // Nothing is normalised, and the parser agrees with the spec written out as a regex.
        if (id !== undefined) expect(id.toString()).toBe(input);
        expect(id !== undefined, JSON.stringify(input)).toBe(isSpiffeIdOracle(input));
      }),
      { numRuns: 2000 },
    );
  });
});
