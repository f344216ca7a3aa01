import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { quote, redact, show } from '../../src/internal/show.js';
import { assertNoKeyMaterial } from '../helpers/key-material.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const der = key.export({ format: 'der', type: 'pkcs8' });
const pem = key.export({ format: 'pem', type: 'pkcs8' }) as string;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const rsaPem = rsa.export({ format: 'pem', type: 'pkcs8' }) as string;

describe('redact', () => {
  const kept: [string, string][] = [
    ['a SPIFFE ID', 'spiffe://cluster.local/ns/demo/sa/boards'],
    ['a certificate label', 'subject "O=sidecarless", serial 119BE2AD57C73DDF5AD3E364353C6A1D0A1B2C3D'],
    ['a word with non-ASCII letters', 'trust domain "exämple.org" is invalid'],
    ['tabs and line breaks', 'first line\n\tsecond line\r\n'],
    ['a short hex run', `id ${'ab12'.repeat(10)}`],
  ];
  for (const [name, text] of kept) {
    it(`keeps ${name}`, () => expect(redact(text)).toBe(text));
  }

  const dropped: [string, string][] = [
    ['a PEM key', `bad input ${pem} here`],
    ['a PEM body without its armour (the short last line too)', rsaPem.split('\n').slice(1, -2).join('\n')],
    ['base64 DER', `value ${der.toString('base64')}`],
    ['base64url DER', `value ${der.toString('base64url')}`],
    ['hex DER', `value ${der.toString('hex')}`],
    ['upper-case hex DER', `value ${der.toString('hex').toUpperCase()}`],
    ['DER read as latin1', `unknown option "${der.toString('latin1')}" (known: a, b)`],
    ['DER read as UTF-8', `source ${der.toString('utf8')}`],
  ];
  for (const [name, text] of dropped) {
    it(`drops ${name}`, () => {
      const out = redact(text);
      assertNoKeyMaterial(out, [key, rsa], name);
      expect(out).toMatch(/redacted/);
    });
  }

  it('keeps the words before binary data', () => {
    expect(redact(`unknown option "${der.toString('latin1')}" (known: a)`)).toMatch(
      /^unknown option "\[binary data of \d+ characters redacted\]$/,
    );
  });
});

describe('quote and show', () => {
  it('never echo a key, in any form', () => {
    for (const value of [pem, der.toString('base64'), der.toString('hex'), der.toString('latin1')]) {
      assertNoKeyMaterial(quote(value), [key]);
      assertNoKeyMaterial(show(value), [key]);
    }
    expect(show(der)).toBe(`a Buffer of ${der.length} bytes`);
    expect(show(key)).toBe('an instance of PrivateKeyObject');
  });

  it('quote shows a few control characters escaped, DEL and C1 included', () => {
    expect(quote('a\u0000b')).toBe('"a\\u0000b"');
    expect(quote('a\u009bb\u007f')).toBe('"a\\u009bb\\u007f"');
    expect(redact(quote('a\u009bb'))).toBe(quote('a\u009bb'));
  });

  it('quote escapes, truncates and says how long the input was', () => {
    expect(quote('a"b\n')).toBe('"a\\"b\\n"');
    expect(quote('x'.repeat(130), 120)).toBe(`"${'x'.repeat(120)}…" (130 characters)`);
  });
});
