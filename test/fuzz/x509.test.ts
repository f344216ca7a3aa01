import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalCa, verifyPeerChain, X509Bundle } from '../../src/index.js';
import { decodePem, encodePem } from '../../src/x509/pem.js';
import { check, typedOnly } from './settings.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ca.close());
const svid = ca.issue('/ns/demo/sa/app-ui');
const leaf = svid.leaf.raw;
const rootDer = (ca.bundle().authorities[0] as { raw: Buffer }).raw;

/** A DER element's header length and content length at `at` (definite lengths only, as DER). */
function tlv(der: Buffer, at: number): { header: number; length: number } {
  const first = der[at + 1] as number;
  if (first < 0x80) return { header: 2, length: first };
  const n = first & 0x7f;
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + (der[at + 2 + i] as number);
  return { header: 2 + n, length };
}

// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
const outer = tlv(leaf, 0);
const tbsStart = outer.header;
const tbs = tlv(leaf, tbsStart);
const tbsEnd = tbsStart + tbs.header + tbs.length;
const sigAlg = tlv(leaf, tbsEnd);
const sigStart = tbsEnd + sigAlg.header + sigAlg.length;
const sigEnd = leaf.length;

function mutate(der: Buffer, at: number, xor: number): Buffer {
  const copy = Buffer.from(der);
  copy[at] = (copy[at] as number) ^ xor;
  return copy;
}

describe('fuzz: certificate parsing of mutated DER', () => {
  it('control: the unmutated chain verifies', () => {
    expect(verifyPeerChain([leaf], ca.bundles(), { usage: 'client' }).id.toString()).toBe(
      'spiffe://cluster.local/ns/demo/sa/app-ui',
    );
  });

  const inside = fc.oneof(
    fc.integer({ min: tbsStart, max: tbsEnd - 1 }),
    fc.integer({ min: sigStart, max: sigEnd - 1 }),
  );

  // Oracle: a changed byte inside the TBS certificate or the signature value is always refused.
  it('a mutation inside the TBS certificate or the signature is always refused', () => {
    check(
      'x509-mutated-tbs-or-signature',
      fc.property(inside, fc.integer({ min: 1, max: 255 }), (at, xor) => {
        expect(() => verifyPeerChain([mutate(leaf, at, xor)], ca.bundles(), { usage: 'client' })).toThrow();
      }),
      400,
    );
  });

  it('a mutation inside the TBS certificate or the signature is refused with a typed error', () => {
    check(
      'x509-mutated-tbs-or-signature-typed',
      fc.property(inside, fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const result = typedOnly(() =>
          verifyPeerChain([mutate(leaf, at, xor)], ca.bundles(), { usage: 'client' }),
        );
        expect(result.ok, `byte ${at} ^ ${xor}`).toBe(false);
      }),
      400,
    );
  });

  it('any mutation, truncation or extension anywhere: nothing throws but typed errors', () => {
    const bytes = fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: leaf.length - 1 }), fc.integer({ min: 1, max: 255 }))
        .map(([at, x]) => mutate(leaf, at, x)),
      fc.integer({ min: 0, max: leaf.length }).map((n) => leaf.subarray(0, n)),
      fc.uint8Array({ maxLength: 64 }).map((extra) => Buffer.concat([leaf, extra])),
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
    );
    check(
      'x509-mutated-anywhere',
      fc.property(bytes, fc.boolean(), (der, withRoot) => {
        typedOnly(() =>
          verifyPeerChain(withRoot ? [der, rootDer] : [der], ca.bundles(), { usage: 'client' }),
        );
      }),
      400,
    );
  });

  it('a truncated, extended or random certificate: nothing throws but typed errors', () => {
    const bytes = fc.oneof(
      fc.integer({ min: 0, max: leaf.length }).map((n) => leaf.subarray(0, n)),
      fc.uint8Array({ maxLength: 64 }).map((extra) => Buffer.concat([leaf, extra])),
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
    );
    check(
      'x509-truncated-extended-random',
      fc.property(bytes, fc.boolean(), (der, withRoot) => {
        typedOnly(() =>
          verifyPeerChain(withRoot ? [der, rootDer] : [der], ca.bundles(), { usage: 'client' }),
        );
      }),
      400,
    );
  });
});

describe('fuzz: bundle JSON/JWKS parser', () => {
  const x5c = fc.oneof(
    fc.constant(rootDer.toString('base64')),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
    fc.string({ maxLength: 12 }),
    fc.integer(),
  );
  const key = fc.record(
    {
      use: fc.constantFrom('x509-svid', 'jwt-svid', 'X509-SVID', '', 7),
      kty: fc.constantFrom('EC', 'RSA', 'OKP', 'oct', ''),
      kid: fc.string({ maxLength: 6 }),
      x5c: fc.oneof(fc.array(x5c, { maxLength: 3 }), x5c),
      crv: fc.constantFrom('P-256', 'P-384', 'Ed25519'),
      x: fc.string({ maxLength: 8 }),
    },
    { requiredKeys: [] },
  );
  const valid = fc
    .array(fc.constantFrom('x509-svid', 'jwt-svid'), { minLength: 0, maxLength: 3 })
    .map((uses) =>
      JSON.stringify({
        keys: uses.map((use) =>
          use === 'x509-svid'
            ? { use, kty: 'EC', crv: 'P-256', x5c: [rootDer.toString('base64')] }
            : { use, kty: 'EC', kid: 'k', crv: 'P-256', x: 'AA', y: 'AA' },
        ),
      }),
    );
  const doc = fc.oneof(
    valid,
    fc
      .record(
        {
          keys: fc.oneof(fc.array(key, { maxLength: 4 }), fc.jsonValue()),
          spiffe_sequence: fc.oneof(fc.integer(), fc.string()),
          spiffe_refresh_hint: fc.integer(),
        },
        { requiredKeys: [] },
      )
      .map((d) => JSON.stringify(d)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 60 }),
  );

  it('returns a bundle or refuses with a typed error; every accepted bundle round-trips through JWKS', () => {
    let accepted = 0;
    check(
      'bundle-jwks',
      fc.property(doc, fc.constantFrom(undefined, 'jwks', 'pem', 'der'), (text, format) => {
        const result = typedOnly(() =>
          X509Bundle.parse('example.org', text, format === undefined ? {} : { format }),
        );
        if (result.ok) {
          accepted++;
          const again = X509Bundle.parse('example.org', JSON.stringify(result.value.toJwks()), {
            format: 'jwks',
          });
          expect(again.equals(result.value)).toBe(true);
        }
      }),
      1_500,
    );
    // Control: well-formed documents are among the runs, and are accepted.
    expect(accepted).toBeGreaterThan(10);
  });
});

describe('fuzz: PEM splitting', () => {
  const body = fc.oneof(
    fc.constant(rootDer.toString('base64')),
    fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString('base64')),
    fc.stringMatching(/^[A-Za-z0-9+/=\s]{0,40}$/),
    fc.string({ maxLength: 20 }),
  );
  const label = fc.constantFrom('CERTIFICATE', 'PRIVATE KEY', 'X509 CRL', 'certificate', 'CERT IFICATE');
  const block = fc
    .tuple(label, label, body, fc.boolean(), fc.constantFrom('\n', '\r\n'))
    .map(([begin, end, b, sameEnd, eol]) => {
      const wrapped = (b.match(/.{1,64}/g) ?? []).join(eol);
      return `-----BEGIN ${begin}-----${eol}${wrapped}${eol}-----END ${sameEnd ? begin : end}-----${eol}`;
    });
  const text = fc
    .array(fc.oneof(block, fc.string({ maxLength: 12 }), fc.constant('subject=CN=x\n')), { maxLength: 4 })
    .map((parts) => parts.join(''));

  it('returns blocks or refuses with ERR_PEM_INVALID; every block re-encodes to the same bytes', () => {
    let blocks = 0;
    check(
      'pem-split',
      fc.property(text, (input) => {
        const result = typedOnly(() => decodePem(input, 'fuzz input'));
        if (!result.ok) {
          expect(result.code).toBe('ERR_PEM_INVALID');
          return;
        }
        for (const b of result.value) {
          blocks++;
          const [again] = decodePem(encodePem(b.label, b.der), 'round trip');
          expect(again?.der.equals(b.der)).toBe(true);
        }
      }),
      2_000,
    );
    expect(blocks).toBeGreaterThan(50);
  });
});
