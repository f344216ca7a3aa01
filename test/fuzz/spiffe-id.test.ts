import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES, parseSpiffeId } from '../../src/index.js';
import { check, typedOnly } from './settings.js';

// Oracle: the SPIFFE-ID specification's rules, written out here independently of the parser
// (SPIFFE-ID §2.1 trust domain, §2.2 path, §2.3 length): the parser accepts exactly what they accept.
const TD_CHAR = /^[a-z0-9._-]+$/;
const SEGMENT_CHAR = /^[A-Za-z0-9._-]+$/;

function specAccepts(input: string): boolean {
  if (Buffer.byteLength(input) > MAX_SPIFFE_ID_BYTES) return false;
  if (!input.startsWith('spiffe://')) return false;
  const rest = input.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  if (td.length === 0 || td.length > MAX_TRUST_DOMAIN_BYTES || !TD_CHAR.test(td)) return false;
  if (slash === -1) return true;
  const segments = rest.slice(slash + 1).split('/');
  return segments.every((s) => s !== '' && s !== '.' && s !== '..' && SEGMENT_CHAR.test(s));
}

// Pieces that sit near the rules' edges: legal and illegal characters, dots, slashes, escapes.
const piece = fc.constantFrom(
  'a',
  'z',
  'A',
  'Z',
  '0',
  '9',
  '.',
  '..',
  '-',
  '_',
  '/',
  '//',
  '%2F',
  '%41',
  ':',
  '@',
  '?',
  '#',
  ' ',
  'é',
  'ns',
  'sa',
  'cluster.local',
  'spiffe://',
  'SPIFFE://',
  '\u0000',
  '*',
  '\\',
  '+',
  '~',
);
const idLike = fc.oneof(
  fc.array(piece, { maxLength: 12 }).map((p) => `spiffe://${p.join('')}`),
  fc
    .tuple(
      fc.stringMatching(/^[a-z0-9._-]{1,20}$/),
      fc.array(fc.stringMatching(/^[A-Za-z0-9._-]{1,8}$/), { maxLength: 5 }),
    )
    .map(([td, segments]) => `spiffe://${td}${segments.map((s) => `/${s}`).join('')}`),
  fc.array(piece, { maxLength: 12 }).map((p) => p.join('')),
  fc.string({ maxLength: 40 }),
  fc
    .constantFrom(0, 1, 2)
    .chain((n) => fc.constant(`spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_BYTES + n - 1)}/x`)),
  fc
    .constantFrom(-1, 0, 1)
    .map((n) => `spiffe://td/${'a'.repeat(MAX_SPIFFE_ID_BYTES - 'spiffe://td/'.length + n)}`),
);

describe('fuzz: SPIFFE ID parser', () => {
  it('accepts exactly what the SPIFFE-ID spec accepts, and refuses with ERR_SPIFFE_ID_INVALID only', () => {
    let accepted = 0;
    check(
      'spiffe-id',
      fc.property(idLike, (input) => {
        const result = typedOnly(() => parseSpiffeId(input));
        expect(result.ok, input).toBe(specAccepts(input));
        if (result.ok) {
          accepted++;
          expect(result.value.toString()).toBe(input);
        } else {
          expect(result.code).toBe('ERR_SPIFFE_ID_INVALID');
        }
      }),
      3_000,
    );
    // Control: the generator reaches both sides of the rules.
    expect(accepted).toBeGreaterThan(100);
  });
});
