import { describe, expect, it } from 'vitest';
import { compileDestinations } from '../../src/client/destinations.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { createLocalCa } from '../../src/index.js';
import { expectCode } from '../helpers/expect-code.js';

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
