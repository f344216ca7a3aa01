import { generateKeyPairSync, type KeyObject, type X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLocalCa, type SidecarlessError, X509Bundle } from '../../src/index.js';
import { expectCode } from '../helpers/expect-code.js';

const TD = 'cluster.local';
const first = createLocalCa({ trustDomain: TD });
const second = createLocalCa({ trustDomain: TD });
const rootA = first.bundle().authorities[0] as X509Certificate;
const rootB = second.bundle().authorities[0] as X509Certificate;
const jwk = (key: KeyObject) => key.export({ format: 'jwk' }) as Record<string, unknown>;
const x509Key = (cert: X509Certificate) => ({
  ...jwk(cert.publicKey),
  use: 'x509-svid',
  x5c: [cert.raw.toString('base64')],
});
const jwtKey = {
  ...jwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey),
  use: 'jwt-svid',
  kid: 'j1',
};

/** No 16-character window of the base64 body (or hex of the DER) of `pem` appears in `text`. */
function expectNoKeyMaterial(text: string, key: KeyObject): void {
  const body = (key.export({ format: 'pem', type: 'pkcs8' }) as string).replace(/-----[^-]+-----|\s/g, '');
  for (let i = 0; i + 16 <= body.length; i += 8) expect(text).not.toContain(body.slice(i, i + 16));
  const hex = (key.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('hex');
  for (let i = 0; i + 16 <= hex.length; i += 8)
    expect(text.toLowerCase()).not.toContain(hex.slice(i, i + 16));
}

describe('X509Bundle.parse formats', () => {
  const pem = rootA.toString();
  const cases: [string, string | Uint8Array][] = [
    ['PEM text', pem],
    ['PEM bytes', Buffer.from(pem)],
    ['PEM followed by text', `${pem}subject=O = openssl\n`],
    ['DER', rootA.raw],
    ['DER as a plain Uint8Array', new Uint8Array(rootA.raw)],
    ['SPIFFE bundle JSON text', JSON.stringify({ keys: [x509Key(rootA)] })],
    ['SPIFFE bundle JSON bytes', Buffer.from(JSON.stringify({ keys: [x509Key(rootA)] }))],
  ];
  for (const [name, input] of cases) {
    it(`reads ${name}`, () => {
      const bundle = X509Bundle.parse(TD, input);
      expect(bundle.trustDomain.name).toBe(TD);
      expect(bundle.authorities.map((c) => c.fingerprint256)).toEqual([rootA.fingerprint256]);
      expect(bundle.equals(first.bundle())).toBe(true);
      expect(Object.isFrozen(bundle) && Object.isFrozen(bundle.authorities)).toBe(true);
    });
  }

  it('reads concatenated DER and concatenated PEM, in order', () => {
    const between = `${rootA.toString()}subject=O = sidecarless\n\n${rootB.toString()}`;
    for (const input of [
      Buffer.concat([rootA.raw, rootB.raw]),
      rootA.toString() + rootB.toString(),
      between,
    ]) {
      const bundle = X509Bundle.parse(TD, input);
      expect(bundle.authorities.map((c) => c.fingerprint256)).toEqual([
        rootA.fingerprint256,
        rootB.fingerprint256,
      ]);
    }
  });

  it('honours an explicit format', () => {
    expect(X509Bundle.parse(TD, rootA.raw, { format: 'der' }).authorities).toHaveLength(1);
    expect(X509Bundle.parse(TD, rootA.toString(), { format: 'pem' }).authorities).toHaveLength(1);
    const err = expectCode(
      () => X509Bundle.parse(TD, 'plainly not json', { format: 'jwks' }),
      'ERR_BUNDLE_INVALID',
    );
    expect(err.message).toContain('JSON');
  });

  it('deduplicates authorities', () => {
    expect(X509Bundle.fromCertificates(TD, [rootA, rootA.raw, rootA.toString()]).authorities).toHaveLength(1);
    expect(X509Bundle.parse(TD, Buffer.concat([rootA.raw, rootA.raw])).authorities).toHaveLength(1);
    expect(
      X509Bundle.parse(TD, JSON.stringify({ keys: [x509Key(rootA), x509Key(rootA)] })).authorities,
    ).toHaveLength(1);
    expect(X509Bundle.fromCertificates(TD, [rootA, rootB, rootA]).authorities).toHaveLength(2);
  });

  it('refuses empty and undecodable input with ERR_BUNDLE_INVALID', () => {
    for (const input of [
      '',
      'hello',
      Buffer.alloc(0),
      Buffer.from('hello world, not DER'),
      rootA.raw.subarray(0, 100),
    ]) {
      const err = expectCode(() => X509Bundle.parse(TD, input), 'ERR_BUNDLE_INVALID');
      expect(err.message).toMatch(/^bundle for cluster\.local: /);
      expect(err.message).not.toMatch(/bundle for cluster\.local: bundle/);
    }
    const named = expectCode(
      () => X509Bundle.parse(TD, 'hello', { source: '/etc/root.pem' }),
      'ERR_BUNDLE_INVALID',
    );
    expect(named.message).toContain('/etc/root.pem');
    expect(named.message).toContain('PEM');
    expectCode(() => X509Bundle.parse(TD, 42 as unknown as string), 'ERR_OPTION_INVALID');
    expectCode(() => X509Bundle.parse('Not A Trust Domain', rootA.raw), 'ERR_TRUST_DOMAIN_INVALID');
  });
});

describe('X509Bundle refuses a private key given as a bundle', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const inputs: [string, KeyObject, string, string][] = [
    ['PKCS#8', ec, ec.export({ format: 'pem', type: 'pkcs8' }) as string, 'PRIVATE KEY'],
    ['SEC1', ec, ec.export({ format: 'pem', type: 'sec1' }) as string, 'EC PRIVATE KEY'],
    ['PKCS#1', rsa, rsa.export({ format: 'pem', type: 'pkcs1' }) as string, 'RSA PRIVATE KEY'],
    [
      'certificate then key',
      ec,
      rootA.toString() + (ec.export({ format: 'pem', type: 'pkcs8' }) as string),
      'PRIVATE KEY',
    ],
  ];
  for (const [name, key, pem, label] of inputs) {
    it(`${name}: says a ${label} block was found and shows none of it`, () => {
      for (const parse of [
        () => X509Bundle.parse(TD, pem),
        () => X509Bundle.fromCertificates(TD, Buffer.from(pem)),
      ]) {
        const err = expectCode(parse, 'ERR_BUNDLE_INVALID');
        expect(err.message).toContain(`found "${label}"`);
        expectNoKeyMaterial(inspect(err, { depth: 10 }), key);
        expectNoKeyMaterial(JSON.stringify(err.detail), key);
      }
    });
  }
});

describe('X509Bundle SPIFFE bundle documents', () => {
  it('reads x5c keys built by hand, spiffe_sequence, spiffe_refresh_hint and other keys', () => {
    const unknownUse = { kty: 'oct', use: 'something-new', kid: 'u1' };
    const noParams = { use: 'x509-svid', x5c: [rootB.raw.toString('base64')] };
    const doc = {
      keys: [x509Key(rootA), jwtKey, unknownUse, noParams],
      spiffe_sequence: 42,
      spiffe_refresh_hint: 300,
    };
    const bundle = X509Bundle.parse(TD, JSON.stringify(doc));
    expect(bundle.authorities.map((c) => c.fingerprint256)).toEqual([
      rootA.fingerprint256,
      rootB.fingerprint256,
    ]);
    expect(bundle.sequence).toBe(42);
    expect(bundle.refreshHint).toBe(300);
    expect(bundle.otherKeys).toEqual([jwtKey, unknownUse]);
    expect(Object.isFrozen(bundle.otherKeys[0])).toBe(true);

    const again = X509Bundle.parse(TD, JSON.stringify(bundle.toJwks()));
    expect(again.equals(bundle)).toBe(true);
    expect([again.sequence, again.refreshHint]).toEqual([42, 300]);
    expect(again.otherKeys).toEqual(bundle.otherKeys);
  });

  it('leaves sequence and refresh hint undefined when absent, and reads an empty key list', () => {
    const empty = X509Bundle.parse(TD, '{"keys":[]}');
    expect([empty.authorities.length, empty.sequence, empty.refreshHint, empty.earliestNotAfter()]).toEqual([
      0,
      undefined,
      undefined,
      undefined,
    ]);
    expect(empty.toJwks()).toEqual({ keys: [] });
  });

  it('round-trips through toPem() and toJwks()', () => {
    const bundle = X509Bundle.fromCertificates(TD, [rootA, rootB]);
    expect(X509Bundle.parse(TD, bundle.toPem()).equals(bundle)).toBe(true);
    const jwks = bundle.toJwks();
    expect(jwks.keys.map((k) => k.use)).toEqual(['x509-svid', 'x509-svid']);
    expect(jwks.keys.some((k) => 'd' in k)).toBe(false);
    expect(X509Bundle.parse(TD, JSON.stringify(jwks)).equals(bundle)).toBe(true);
    // equals() compares authorities and trust domain.
    expect(bundle.equals(first.bundle())).toBe(false);
    expect(X509Bundle.fromCertificates('other.example', [rootA, rootB]).equals(bundle)).toBe(false);
    expect(bundle.contains(rootB) && bundle.contains(rootA.raw)).toBe(true);
  });

  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b64 = rootA.raw.toString('base64');
  const malformedKeys: [string, unknown][] = [
    ['a key that is not an object', 'x509-svid'],
    ['a key that is null', null],
    ['a key without use', { ...jwk(rootA.publicKey), x5c: [b64] }],
    ['a key whose use is not a string', { use: 7, x5c: [b64] }],
    ['an x509-svid key without x5c', { ...jwk(rootA.publicKey), use: 'x509-svid' }],
    ['an x509-svid key with 0 x5c', { use: 'x509-svid', x5c: [] }],
    ['an x509-svid key with 2 x5c', { use: 'x509-svid', x5c: [b64, rootB.raw.toString('base64')] }],
    ['an x5c entry that is not a string', { use: 'x509-svid', x5c: [123] }],
    ['an x5c entry that is not base64', { use: 'x509-svid', x5c: ['this is *not* base64!'] }],
    ['an x5c entry with line breaks', { use: 'x509-svid', x5c: [`${b64.slice(0, 64)}\n${b64.slice(64)}`] }],
    [
      'an x5c entry that is not a certificate',
      { use: 'x509-svid', x5c: [Buffer.from('hello, not DER!').toString('base64')] },
    ],
    ['JWK parameters of another key', { ...jwk(otherKey.publicKey), use: 'x509-svid', x5c: [b64] }],
    [
      'JWK parameters that are not a key',
      { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', use: 'x509-svid', x5c: [b64] },
    ],
    ['a JWK with private "d"', { ...jwk(otherKey.privateKey), use: 'x509-svid', x5c: [b64] }],
    ['a jwt-svid JWK with private "d"', { ...jwk(otherKey.privateKey), use: 'jwt-svid', kid: 'leak' }],
    ['an unknown-use secret key with "k"', { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ', use: 'enc' }],
  ];
  for (const [name, bad] of malformedKeys) {
    it(`refuses ${name}, naming keys[2]`, () => {
      const doc = JSON.stringify({ keys: [x509Key(rootA), jwtKey, bad] });
      const err = expectCode(
        () => X509Bundle.parse(TD, doc, { source: 'bundle.json' }),
        'ERR_BUNDLE_INVALID',
      );
      expect(err.detail.index).toBe(2);
      expect(err.message).toContain('keys[2]');
      expect(err.message).toContain('bundle.json');
      expect(err.detail.field).toMatch(/^keys\[2\]/);
      expectNoKeyMaterial(inspect(err, { depth: 10 }), otherKey.privateKey);
    });
  }

  const malformedDocs: [string, string, string | undefined][] = [
    ['not JSON', '{ keys: [] }', undefined],
    ['JSON that is not an object', '[1, 2]', undefined],
    ['JSON null', 'null', undefined],
    ['no keys', '{}', 'keys'],
    ['keys not an array', '{"keys": {"0": {}}}', 'keys'],
    ['a negative spiffe_sequence', '{"keys": [], "spiffe_sequence": -1}', 'spiffe_sequence'],
    ['a non-integer spiffe_sequence', '{"keys": [], "spiffe_sequence": 1.5}', 'spiffe_sequence'],
    ['a string spiffe_sequence', '{"keys": [], "spiffe_sequence": "7"}', 'spiffe_sequence'],
    ['an unsafe integer spiffe_sequence', '{"keys": [], "spiffe_sequence": 1e300}', 'spiffe_sequence'],
    ['a negative spiffe_refresh_hint', '{"keys": [], "spiffe_refresh_hint": -5}', 'spiffe_refresh_hint'],
  ];
  for (const [name, doc, field] of malformedDocs) {
    it(`refuses a document with ${name}`, () => {
      const err = expectCode(() => X509Bundle.parse(TD, doc), 'ERR_BUNDLE_INVALID');
      expect(err.detail.field).toBe(field);
      if (field !== undefined) expect(err.message).toContain(field);
    });
  }

  it('does not quote an unparseable document (it may be a key file)', () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const leaked = `{"keys": [${JSON.stringify(jwk(key))}`;
    const err: SidecarlessError = expectCode(() => X509Bundle.parse(TD, leaked), 'ERR_BUNDLE_INVALID');
    expect(err.cause).toBeUndefined();
    expect(err.message).not.toContain(String(jwk(key).d));
  });
});
