import { lookup } from 'node:dns/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileDestinations, type ResolvedDestination, strictest } from '../../src/client/destinations.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { embeddedIpv4, isThisHost, parseHost } from '../../src/client/hosts.js';
import { planOf } from '../../src/client/target.js';
import { createLocalCa } from '../../src/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';
import { HOST_SPELLINGS, type HostSpelling } from './host-spellings.js';

const table = compileDestinations({
  'boards.demo.svc.cluster.local:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' },
  'boards.demo.svc.cluster.local': { expect: 'spiffe://cluster.local/ns/demo/sa/boards-any-port' },
  '*.demo.svc.cluster.local': { expect: 'spiffe://cluster.local/ns/demo/*' },
  '*.svc.cluster.local': { mode: 'auto', expect: 'spiffe://cluster.local/*' },
  'api.example.com:443': { mode: 'plaintext' },
  '127.0.0.1:9000': { expect: '*' },
  '[::1]:9000': { expect: '*' },
  '*': { mode: 'plaintext' },
});

const keyOf = (host: string, port: string | number | undefined, protocol = 'http:') =>
  table.resolve(host, port, protocol)?.key;

/** How a URL reaches the connector: undici's hostname/port, from the WHATWG URL parser. */
const keyOfUrl = (url: string) => {
  const u = new URL(url);
  return keyOf(u.hostname.replace(/^\[|\]$/g, ''), u.port, u.protocol);
};

describe('destinations', () => {
  it.each([
    // No spelling of boards.demo.svc.cluster.local:8080 falls to a weaker key.
    ['http://boards.demo.svc.cluster.local:8080/x'],
    ['http://BOARDS.Demo.SVC.cluster.local:8080/x'],
    ['http://boards.demo.svc.cluster.local.:8080/x'],
    ['http://boards.demo.svc.cluster.local..:8080/x'],
    ['https://boards.demo.svc.cluster.local:8080/x'],
    ['http://boards.demo.svc.cluster.local:08080/x'],
    ['http://boards%2Edemo.svc.cluster.local:8080/x'],
    ['http://ｂoards.demo.svc.cluster.local:8080/x'],
    ['http://user@boards.demo.svc.cluster.local:8080/x'],
  ])('URL %s → the host:port key', (url) => {
    expect(keyOfUrl(url)).toBe('boards.demo.svc.cluster.local:8080');
  });

  it.each([
    // The same, as node:http options reach an Agent (host and port as the caller wrote them).
    ['boards.demo.svc.cluster.local', 8080],
    ['BOARDS.DEMO.SVC.CLUSTER.LOCAL', '8080'],
    ['Boards.Demo.Svc.Cluster.Local.', 8080],
    ['boards.demo.svc.cluster.local.', '08080'],
  ])('host %s port %s → the host:port key', (host, port) => {
    expect(keyOf(host, port)).toBe('boards.demo.svc.cluster.local:8080');
  });

  it.each([
    ['boards.demo.svc.cluster.local', 9090, 'http:', 'boards.demo.svc.cluster.local'],
    ['boards.demo.svc.cluster.local', '', 'http:', 'boards.demo.svc.cluster.local'],
    ['ui.demo.svc.cluster.local', 80, 'http:', '*.demo.svc.cluster.local'],
    ['UI.Demo.svc.cluster.local.', 80, 'http:', '*.demo.svc.cluster.local'],
    ['x.other.svc.cluster.local', 80, 'http:', '*.svc.cluster.local'],
    // A wildcard does not cover its suffix itself.
    ['demo.svc.cluster.local', 80, 'http:', '*.svc.cluster.local'],
    ['svc.cluster.local', 80, 'http:', '*'],
    ['api.example.com', '', 'https:', 'api.example.com:443'],
    ['API.example.com.', 443, 'https:', 'api.example.com:443'],
    ['api.example.com', '', 'http:', '*'],
    ['127.0.0.1', 9000, 'http:', '127.0.0.1:9000'],
    ['127.1', 9000, 'http:', '127.0.0.1:9000'],
    ['0x7f.0.0.1', '9000', 'http:', '127.0.0.1:9000'],
    ['::1', 9000, 'http:', '[::1]:9000'],
    ['[::1]', 9000, 'http:', '[::1]:9000'],
    ['0:0:0:0:0:0:0:1', 9000, 'http:', '[::1]:9000'],
    ['elsewhere', 80, 'http:', '*'],
  ])('%s port %s (%s) → %s', (host, port, protocol, key) => {
    expect(keyOf(host, port, protocol)).toBe(key);
  });

  it('an unparseable host or port matches nothing, not even "*"', () => {
    expect(keyOf('bad host', 80)).toBeUndefined();
    expect(keyOf('boards', 70_000)).toBeUndefined();
    expect(keyOf('boards', '80a')).toBeUndefined();
  });

  it('without "*", an unknown host has no destination', () => {
    const t = compileDestinations({ 'a:1': { expect: '*' } });
    expect(t.resolve('b', 1, 'http:')).toBeUndefined();
  });

  it('compiles modes and matchers', () => {
    expect(table.resolve('boards.demo.svc.cluster.local', 8080, 'http:')).toMatchObject({ mode: 'mtls' });
    expect(table.resolve('x.svc.cluster.local', 1, 'http:')).toMatchObject({ mode: 'auto' });
    expect(table.resolve('x', 1, 'http:')).toMatchObject({ mode: 'plaintext', expect: undefined });
  });
});

describe('destinations: construction errors', () => {
  const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui');
  const create = (destinations: unknown) =>
    createMtlsDispatcher({ identity, destinations } as Parameters<typeof createMtlsDispatcher>[0]);

  it('an mtls or auto destination must say what it expects, naming the key', () => {
    const err = expectCode(() => create({ 'boards:8080': {} }), 'ERR_OPTION_INVALID');
    expect(err.message).toContain('"boards:8080"');
    expect(err.detail.field).toBe('destinations["boards:8080"].expect');
    expect(expectCode(() => create({ legacy: { mode: 'auto' } }), 'ERR_OPTION_INVALID').message).toContain(
      '"legacy"',
    );
  });

  it('"unauthenticated" cannot be expected of a server', () => {
    const err = expectCode(
      () => create({ 'boards:8080': { expect: 'unauthenticated' } }),
      'ERR_POLICY_INVALID',
    );
    expect(err.detail.field).toBe('destinations["boards:8080"].expect');
    expectCode(
      () => create({ b: { expect: ['spiffe://cluster.local/x', 'unauthenticated'] } }),
      'ERR_POLICY_INVALID',
    );
  });

  it.each([
    [{ 'a:1': { expect: 'not-a-matcher' } }, 'ERR_POLICY_INVALID'],
    [{ 'a:1': { mode: 'strict', expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'a:1': { mode: 'plaintext', expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'a:1': { expect: '*', mdoe: 'auto' } }, 'ERR_OPTION_INVALID'],
    [{ 'a:0': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'a:65536': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ '*.a:80': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'a*.b': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ '*.*.b': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ '::1': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ '[a.b]:1': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'a b': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'http://a': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{ 'A:80': { expect: '*' }, 'a.:80': { expect: '*' } }, 'ERR_OPTION_INVALID'],
    [{}, 'ERR_OPTION_INVALID'],
    [[], 'ERR_OPTION_INVALID'],
    [{ a: 'mtls' }, 'ERR_OPTION_INVALID'],
  ] as const)('%j → %s', (destinations, code) => {
    expectCode(() => create(destinations), code);
  });

  it('rejects unknown and malformed client options', () => {
    const destinations = { '*': { expect: '*' } };
    expectCode(
      () => createMtlsDispatcher({ identity, destinations, conectTimeout: 5 } as never),
      'ERR_OPTION_INVALID',
    );
    expectCode(() => createMtlsDispatcher({ identity: {} as never, destinations }), 'ERR_OPTION_INVALID');
    expectCode(
      () => createMtlsDispatcher({ identity, destinations, connectTimeout: -1 }),
      'ERR_OPTION_INVALID',
    );
    expectCode(() => createMtlsDispatcher({ identity, destinations, connections: 0 }), 'ERR_OPTION_INVALID');
    expectCode(
      () => createMtlsDispatcher({ identity, destinations, onPeer: 'x' as never }),
      'ERR_OPTION_INVALID',
    );
  });
});

describe('hosts: one canonical spelling', () => {
  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1', 'ipv4'],
    ['::ffff:7f00:1', '127.0.0.1', 'ipv4'],
    ['0:0:0:0:0:FFFF:7F00:0001', '127.0.0.1', 'ipv4'],
    ['::FFFF:10.1.2.3', '10.1.2.3', 'ipv4'],
    // RFC 5952 §4: lower case, no leading zeros, the longest run of zero groups as "::" (the
    // first when two tie), never "::" for one group.
    ['2001:0DB8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1', 'ipv6'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1', 'ipv6'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 'ipv6'],
    ['2001:db8::0:1', '2001:db8::1', 'ipv6'],
    ['0:0:0:0:0:0:0:0', '::', 'ipv6'],
    ['::7f00:1', '::7f00:1', 'ipv6'],
    ['127.1', '127.0.0.1', 'ipv4'],
    ['0', '0.0.0.0', 'ipv4'],
    ['Boards.Demo.', 'boards.demo', 'name'],
  ] as const)('%s → %s (%s)', (written, host, kind) => {
    expect(parseHost(written)).toEqual({ ok: true, host, kind });
  });

  it.each(['fe80::1%eth0', 'fe80::1%25eth0', '::1%1', 'a b', '', 'boards:80', 'user@boards'])(
    '%j is refused',
    (written) => {
      expect(parseHost(written).ok).toBe(false);
    },
  );

  it('names the zone id rule', () => {
    expect(parseHost('fe80::1%eth0')).toMatchObject({ ok: false, rule: expect.stringContaining('zone id') });
  });

  it.each([
    ['::7f00:1', '127.0.0.1', 'ipv4-compatible'],
    ['::ffff:0:7f00:1', '127.0.0.1', 'ipv4-translated'],
    ['64:ff9b::a00:5', '10.0.0.5', 'nat64'],
    ['::ffff:a00:5', '10.0.0.5', 'ipv4-mapped'],
  ])('%s carries %s (%s)', (address, ipv4, form) => {
    expect(embeddedIpv4(address)).toEqual({ ipv4, form });
  });

  it.each(['::', '::1', '2001:db8::7f00:1', '64:ff9b:1::7f00:1', 'fe80::1'])(
    '%s carries no IPv4 address',
    (a) => {
      expect(embeddedIpv4(a)).toBeUndefined();
    },
  );

  it.each([
    ['127.0.0.1', 'ipv4', true],
    ['127.255.255.255', 'ipv4', true],
    ['0.0.0.0', 'ipv4', true],
    ['0.1.2.3', 'ipv4', true],
    ['::1', 'ipv6', true],
    ['::', 'ipv6', true],
    ['128.0.0.1', 'ipv4', false],
    ['10.0.0.1', 'ipv4', false],
    ['::2', 'ipv6', false],
    ['localhost', 'name', false],
  ] as const)('%s reaches this host: %s', (host, kind, local) => {
    expect(isThisHost(host, kind)).toBe(local);
  });
});

describe('the host spellings table (test/client/host-spellings.ts)', () => {
  const PORT = 9000;
  const keyed = compileDestinations({
    [`127.0.0.1:${PORT}`]: { expect: 'spiffe://cluster.local/ns/demo/sa/boards' },
    '*': { mode: 'plaintext' },
  });

  async function addressesOf(spelling: HostSpelling): Promise<string[] | undefined> {
    if (spelling.dns === 'system') return (await lookup(spelling.host, { all: true })).map((a) => a.address);
    return spelling.dns === undefined ? undefined : [...spelling.dns];
  }

  it.each(HOST_SPELLINGS.filter((s) => s.refused === undefined).map((s) => [s.url ?? s.host, s] as const))(
    '%s gets the mTLS destination of 127.0.0.1:9000',
    async (_name, spelling) => {
      const plan = planOf(keyed, { host: spelling.url ?? spelling.host, port: PORT, protocol: 'http:' });
      expect(plan.resolve).toBe(plan.kind === 'name');
      const addresses = await addressesOf(spelling);
      const candidates = keyed.candidates(plan.name, plan.kind, addresses);
      expect(keyed.select(candidates, PORT)).toMatchObject({ mode: 'mtls', keys: [`127.0.0.1:${PORT}`] });
    },
  );

  it.each(HOST_SPELLINGS.filter((s) => s.refused !== undefined).map((s) => [s.host, s] as const))(
    '%s is refused before any destination is chosen',
    (_name, spelling) => {
      const err = expectCode(
        () => planOf(keyed, { host: spelling.host, port: PORT, protocol: 'http:' }),
        'ERR_HOST_INVALID',
      );
      expect(err.message).toContain('zone id');
    },
  );

  it('control: another port of the same address gets the default', () => {
    expect(keyed.resolve('::ffff:127.0.0.1', PORT + 1, 'http:')).toMatchObject({
      mode: 'plaintext',
      key: '*',
    });
    expect(keyed.resolve('127.0.0.2', PORT + 1, 'http:')).toMatchObject({ mode: 'plaintext', key: '*' });
  });
});

describe('candidates → the strictest destination', () => {
  const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
  const OTHER = 'spiffe://cluster.local/ns/demo/sa/other';
  const spec = {
    'boards.demo.svc.cluster.local': { expect: BOARDS },
    '*.svc.cluster.local': { mode: 'auto', expect: 'spiffe://cluster.local/*' },
    'legacy:8080': { mode: 'plaintext' },
    'named:8080': { mode: 'auto', expect: OTHER },
    '10.0.0.5:8080': { expect: BOARDS },
    '10.0.0.6': { mode: 'auto', expect: OTHER },
    '[::1]:7000': { expect: BOARDS },
    '*': { mode: 'plaintext' },
  } as const;
  const t = compileDestinations(spec);
  const searching = compileDestinations(spec, ['demo.svc.cluster.local', 'svc.cluster.local']);
  const choose = (host: string, port: number, addresses?: readonly string[], table = t) => {
    const parsed = parseHost(host);
    if (!parsed.ok) throw new Error(parsed.rule);
    return table.select(table.candidates(parsed.host, parsed.kind, addresses), port);
  };

  it.each([
    // [host, port, addresses, mode, keys]
    ['10.0.0.5', 8080, undefined, 'mtls', ['10.0.0.5:8080']],
    ['10.0.0.5', 9090, undefined, 'plaintext', ['*']],
    ['legacy', 8080, ['10.0.0.9'], 'plaintext', ['legacy:8080']],
    ['legacy', 8080, ['10.0.0.5'], 'mtls', ['10.0.0.5:8080']],
    ['legacy', 8080, ['10.0.0.9', '::ffff:10.0.0.5'], 'mtls', ['10.0.0.5:8080']],
    ['legacy', 8080, ['64:ff9b::a00:5'], 'mtls', ['10.0.0.5:8080']],
    ['named', 8080, ['10.0.0.5'], 'mtls', ['named:8080', '10.0.0.5:8080']],
    ['named', 8080, ['10.0.0.6'], 'auto', ['named:8080', '10.0.0.6']],
    ['elsewhere', 7000, ['127.0.0.1'], 'mtls', ['[::1]:7000']],
    ['0.0.0.0', 7000, undefined, 'mtls', ['[::1]:7000']],
    ['::', 7000, undefined, 'mtls', ['[::1]:7000']],
    ['127.0.0.9', 7000, undefined, 'mtls', ['[::1]:7000']],
    ['::', 7001, undefined, 'plaintext', ['*']],
    ['elsewhere', 80, ['10.0.0.7'], 'plaintext', ['*']],
  ] as const)('%s:%s resolving to %j → %s by %j', (host, port, addresses, mode, keys) => {
    expect(choose(host, port, addresses)).toMatchObject({ mode, keys });
  });

  it.each([
    // With searchDomains: a short name is also each name it may resolve to.
    ['boards', 80, undefined, 'mtls', ['boards.demo.svc.cluster.local', '*.svc.cluster.local']],
    ['ui', 80, undefined, 'auto', ['*.svc.cluster.local']],
    ['legacy', 8080, undefined, 'auto', ['*.svc.cluster.local']],
    // Only names without a dot: "boards.demo" is matched as written.
    ['boards.demo', 80, undefined, 'plaintext', ['*']],
    ['10.0.0.5', 9090, undefined, 'plaintext', ['*']],
  ] as const)('search domains: %s:%s → %s by %j', (host, port, addresses, mode, keys) => {
    expect(choose(host, port, addresses, searching)).toMatchObject({ mode, keys });
    // Without them, the short name has its own destination only.
    expect(choose(host, port, addresses)).toMatchObject({ keys: [expect.any(String)] });
  });

  it('a resolved address counts through its own key, never through "*"', () => {
    const strict = compileDestinations({
      'legacy:80': { mode: 'plaintext' },
      '10.0.0.1': { expect: '*' },
      '*': { expect: '*' },
    });
    expect(strict.select(strict.candidates('legacy', 'name', ['10.0.0.2']), 80)).toMatchObject({
      mode: 'plaintext',
      key: 'legacy:80',
    });
  });

  it('with no key for the host and none for its addresses, and no "*": no destination', () => {
    const bare = compileDestinations({ '10.0.0.1:80': { expect: '*' } });
    expect(bare.select(bare.candidates('legacy', 'name', ['10.0.0.2']), 80)).toBeUndefined();
    expect(bare.select(bare.candidates('legacy', 'name', ['10.0.0.1']), 80)).toMatchObject({ mode: 'mtls' });
  });

  it('tied modes: the server must satisfy every expect', () => {
    const both = choose('named', 8080, ['10.0.0.6']);
    const expectOf = both?.expect as NonNullable<typeof both>['expect'] & {};
    expect(expectOf(fakePeer({ id: OTHER }))).toBe(true);
    const strictBoth = choose('named', 8080, ['10.0.0.5']);
    const combined = strictBoth?.expect as NonNullable<typeof both>['expect'] & {};
    // mtls (10.0.0.5: BOARDS) over auto (named: OTHER): nobody is both.
    expect(combined(fakePeer({ id: BOARDS }))).toBe(false);
    expect(combined(fakePeer({ id: OTHER }))).toBe(false);
    expect(combined.source).toBe(`${OTHER} and ${BOARDS}`);
    // The same combination twice is one object (built once, cached).
    expect(choose('named', 8080, ['10.0.0.5'])).toBe(strictBoth);
  });

  it('strictest() orders mtls > auto > plaintext and keeps a single destination as it is', () => {
    const a = compileDestinations({
      a: { mode: 'auto', expect: '*' },
      m: { expect: '*' },
      p: { mode: 'plaintext' },
    });
    const [auto, mtls, plain] = ['a', 'm', 'p'].map((h) => a.resolve(h, 1, 'http:')) as ResolvedDestination[];
    expect(strictest([plain as ResolvedDestination, auto as ResolvedDestination])).toBe(auto);
    expect(
      strictest([plain as ResolvedDestination, mtls as ResolvedDestination, plain as ResolvedDestination]),
    ).toBe(mtls);
    expect(strictest([plain as ResolvedDestination])).toBe(plain);
    expect(strictest([mtls as ResolvedDestination, auto as ResolvedDestination]).mode).toBe('mtls');
  });

  it('search domains: only for a name without a dot, in order, deduplicated', () => {
    expect(searching.candidates('boards', 'name').map((c) => [c.host, c.source])).toEqual([
      ['boards', 'host'],
      ['boards.demo.svc.cluster.local', 'search-domain'],
      ['boards.svc.cluster.local', 'search-domain'],
    ]);
    expect(searching.candidates('boards.demo', 'name').map((c) => c.host)).toEqual(['boards.demo']);
    expect(t.candidates('10.0.0.5', 'ipv4').map((c) => c.host)).toEqual(['10.0.0.5']);
    expect(t.candidates('::ffff:0:a00:5', 'ipv6').map((c) => [c.host, c.source])).toEqual([
      ['::ffff:0:a00:5', 'host'],
      ['10.0.0.5', 'embedded-ipv4'],
    ]);
    expect(
      searching
        .candidates('x', 'name', ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1%eth0'])
        .map((c) => [c.host, c.source]),
    ).toEqual([
      ['x', 'host'],
      ['x.demo.svc.cluster.local', 'search-domain'],
      ['x.svc.cluster.local', 'search-domain'],
      ['10.0.0.1', 'address'],
      ['fe80::1', 'address'],
    ]);
  });

  it('resolves names only when some key is an IP literal', () => {
    expect(t.resolvesNames).toBe(true);
    const names = compileDestinations({
      'boards:80': { expect: '*' },
      '*.svc': { expect: '*' },
      '*': { mode: 'plaintext' },
    });
    expect(names.resolvesNames).toBe(false);
    expect(planOf(names, { host: 'boards', port: 80, protocol: 'http:' }).resolve).toBe(false);
    expect(planOf(t, { host: 'boards', port: 80, protocol: 'http:' }).resolve).toBe(true);
    expect(planOf(t, { host: '[::1]', port: 80, protocol: 'http:' }).resolve).toBe(false);
  });

  it('checks searchDomains', () => {
    const d = { '*': { mode: 'plaintext' } };
    expectCode(() => compileDestinations(d, 'svc.cluster.local'), 'ERR_OPTION_INVALID');
    expectCode(() => compileDestinations(d, ['10.0.0.1']), 'ERR_OPTION_INVALID');
    expectCode(() => compileDestinations(d, ['*.svc']), 'ERR_OPTION_INVALID');
    expectCode(() => compileDestinations(d, ['a b']), 'ERR_OPTION_INVALID');
    expectCode(
      () =>
        compileDestinations(
          d,
          Array.from({ length: 17 }, (_, i) => `d${i}.local`),
        ),
      'ERR_OPTION_INVALID',
    );
    expect(
      compileDestinations(d, ['Svc.Cluster.Local.', 'svc.cluster.local']).candidates('b', 'name'),
    ).toHaveLength(2);
  });

  it('keys: an IPv4-mapped key is the IPv4 key, a zone id is refused', () => {
    const err = expectCode(
      () => compileDestinations({ '127.0.0.1:80': { expect: '*' }, '[::ffff:7f00:1]:80': { expect: '*' } }),
      'ERR_OPTION_INVALID',
    );
    expect(err.message).toContain('name the same destination');
    expect(
      expectCode(() => compileDestinations({ '[fe80::1%eth0]:80': { expect: '*' } }), 'ERR_OPTION_INVALID')
        .message,
    ).toContain('zone id');
    const mapped = compileDestinations({ '[::ffff:127.0.0.1]:80': { expect: '*' } });
    expect(mapped.resolve('127.0.0.1', 80, 'http:')).toMatchObject({ mode: 'mtls' });
  });

  // The oracle: whatever the keys, the host and what it resolves to, the chosen destination is
  // at least as strict as the destination of every address the connection may reach (its most
  // specific key; for this host's addresses, that of every keyed address of this host), and a
  // server it accepts satisfies that destination's expect.
  it('property: never weaker than the key of an address connected to', () => {
    const ids = ['spiffe://td/a', 'spiffe://td/b'];
    const rank = { plaintext: 0, auto: 1, mtls: 2 } as const;
    const addressArb = fc.constantFrom(
      '10.0.0.1',
      '10.0.0.2',
      '127.0.0.1',
      '127.0.0.9',
      '::1',
      '::',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:2',
    );
    const keyHostArb = fc.constantFrom(
      '10.0.0.1',
      '10.0.0.2',
      '127.0.0.1',
      '[::1]',
      '0.0.0.0',
      'boards',
      'b.svc',
      '*.svc',
    );
    const destinationArb = fc.oneof(
      fc.constant({ mode: 'plaintext' as const }),
      fc.record({ mode: fc.constantFrom('mtls' as const, 'auto' as const), expect: fc.constantFrom(...ids) }),
    );
    const specArb = fc.dictionary(
      fc
        .tuple(keyHostArb, fc.constantFrom('', ':80', ':81'))
        .map(([h, p]) => (h.startsWith('*') ? h : `${h}${p}`)),
      destinationArb,
      { minKeys: 1, maxKeys: 6 },
    );
    type Spec = Record<string, { mode: 'plaintext' | 'mtls' | 'auto'; expect?: string }>;

    /** Every key naming an IP address: [canonical host, kind, port or undefined, destination]. */
    const ipKeysOf = (spec: Spec) =>
      Object.entries(spec).flatMap(([key, d]) => {
        const k = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(key);
        const h = k === null ? undefined : parseHost(k[1] as string);
        return h === undefined || !h.ok || h.kind === 'name'
          ? []
          : [{ host: h.host, kind: h.kind, port: k?.[2], d }];
      });

    /** The addresses a connection to `host` (resolving to `addresses`) may reach. */
    const reachedOf = (host: string, addresses: readonly string[]) =>
      [host, ...addresses].flatMap((a) => {
        const p = parseHost(a);
        if (!p.ok || p.kind === 'name') return [];
        const e = p.kind === 'ipv6' ? embeddedIpv4(p.host) : undefined;
        return e === undefined ? [p] : [p, { ok: true as const, host: e.ipv4, kind: 'ipv4' as const }];
      });

    fc.assert(
      fc.property(
        specArb,
        fc.option(destinationArb),
        fc.constantFrom('boards', 'other', 'x.svc', '10.0.0.1', '::', '127.0.0.5'),
        fc.array(addressArb, { maxLength: 3 }),
        (spec, fallback, host, addresses) => {
          const table = compileDestinations(fallback === null ? spec : { ...spec, '*': fallback });
          const parsed = parseHost(host);
          if (!parsed.ok) return;
          const resolved = parsed.kind === 'name' && table.resolvesNames ? addresses : [];
          const chosen = table.select(table.candidates(parsed.host, parsed.kind, resolved), 80);
          const ipKeys = ipKeysOf(spec);
          const mostSpecific = (h: string) =>
            ipKeys.find((k) => k.host === h && k.port === '80')?.d ??
            ipKeys.find((k) => k.host === h && k.port === undefined)?.d;
          for (const r of reachedOf(parsed.host, resolved)) {
            const owed = [mostSpecific(r.host)];
            if (isThisHost(r.host, r.kind)) {
              for (const k of ipKeys) if (isThisHost(k.host, k.kind)) owed.push(mostSpecific(k.host));
            }
            for (const d of owed) {
              if (d === undefined) continue;
              expect(chosen, `${host} via ${r.host}`).toBeDefined();
              expect(rank[chosen?.mode ?? 'plaintext']).toBeGreaterThanOrEqual(rank[d.mode]);
              if (d.mode === 'plaintext') continue;
              const other = ids.find((id) => id !== d.expect) as string;
              expect(chosen?.expect?.(fakePeer({ id: other }))).toBe(false);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
