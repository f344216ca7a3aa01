import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isSidecarlessError,
  MAX_TRUST_DOMAIN_BYTES,
  type SidecarlessError,
  SpiffeId,
  TrustDomain,
} from '../../src/index.js';
import {
  expectNoKeyMaterial,
  expectRefusal,
  expectTidyError,
  isTrustDomainOracle,
  privateKeyPem,
  thrown,
} from './support.js';

// The rule words, copied from src/spiffe/trust-domain.ts.
const RULE = {
  notString: 'trust domain must be a string',
  missing: 'trust domain is missing',
  tooLong: 'trust domain is longer than 255 bytes',
  hasPath: 'a trust domain has no path (use SpiffeId.parse for a workload ID)',
  scheme: 'scheme must be "spiffe://" (lowercase) when a trust domain is written as an ID',
  userinfo: 'trust domain must not include userinfo ("user@")',
  port: 'trust domain must not include a port',
  percent: 'trust domain must not be percent-encoded',
  upper: '(uppercase is an error, not normalised)',
  chars: 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
} as const;

const TD = 'ERR_TRUST_DOMAIN_INVALID';

describe('TrustDomain.parse accepts names and trust domain IDs', () => {
  const cases: { name: string; input: string; expName: string }[] = [
    { name: 'short name', input: 'td', expName: 'td' },
    { name: 'dotted name', input: 'cluster.local', expName: 'cluster.local' },
    {
      name: 'every allowed character class',
      input: 'abcdefghijklmnopqrstuvwxyz0123456789._-',
      expName: 'abcdefghijklmnopqrstuvwxyz0123456789._-',
    },
    { name: 'digits only', input: '123', expName: '123' },
    { name: 'underscore', input: '_', expName: '_' },
    { name: 'dash', input: '-', expName: '-' },
    { name: 'exactly 255 bytes', input: 'a'.repeat(255), expName: 'a'.repeat(255) },
    { name: 'trust domain ID', input: 'spiffe://td', expName: 'td' },
    { name: 'trust domain ID of 255 bytes', input: `spiffe://${'a'.repeat(255)}`, expName: 'a'.repeat(255) },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const td = TrustDomain.parse(c.input);
      expect(td.name).toBe(c.expName);
      expect(td.idString()).toBe(`spiffe://${c.expName}`);
    });
  }

  it('MAX_TRUST_DOMAIN_BYTES is 255', () => {
    expect(MAX_TRUST_DOMAIN_BYTES).toBe(255);
  });
});

describe('TrustDomain.parse refuses every rule violation', () => {
  const cases: { name: string; input: string; expErr: string }[] = [
    { name: 'empty string', input: '', expErr: RULE.missing },
    { name: 'scheme only', input: 'spiffe://', expErr: RULE.missing },
    { name: 'workload ID', input: 'spiffe://td/path', expErr: RULE.hasPath },
    { name: 'trust domain ID with a trailing slash', input: 'spiffe://td/', expErr: RULE.hasPath },
    { name: 'https scheme', input: 'https://td', expErr: RULE.scheme },
    { name: 'uppercase scheme', input: 'SPIFFE://td', expErr: RULE.scheme },
    { name: 'mixed-case scheme', input: 'Spiffe://td', expErr: RULE.scheme },
    { name: 'uppercase name', input: 'TD', expErr: RULE.upper },
    { name: 'one uppercase letter', input: 'Cluster.local', expErr: RULE.upper },
    { name: 'uppercase name in an ID', input: 'spiffe://Cluster.local', expErr: RULE.upper },
    { name: '256 bytes', input: 'a'.repeat(256), expErr: RULE.tooLong },
    { name: '256 bytes in an ID', input: `spiffe://${'a'.repeat(256)}`, expErr: RULE.tooLong },
    { name: 'userinfo', input: 'user@td', expErr: RULE.userinfo },
    { name: 'userinfo in an ID', input: 'spiffe://user:pass@td', expErr: RULE.userinfo },
    { name: 'port', input: 'td:8080', expErr: RULE.port },
    { name: 'port in an ID', input: 'spiffe://td:8080', expErr: RULE.port },
    { name: 'percent-encoding', input: 't%64', expErr: RULE.percent },
    { name: 'slash in a bare name', input: 'td/x', expErr: RULE.chars },
    { name: 'query', input: 'td?x', expErr: RULE.chars },
    { name: 'query in an ID', input: 'spiffe://td?x', expErr: RULE.chars },
    { name: 'fragment in an ID', input: 'spiffe://td#x', expErr: RULE.chars },
    { name: 'space', input: 't d', expErr: RULE.chars },
    { name: 'leading space', input: ' td', expErr: RULE.chars },
    { name: 'trailing newline', input: 'td\n', expErr: RULE.chars },
    { name: 'NUL', input: 't\u0000d', expErr: RULE.chars },
    { name: 'non-ASCII letter', input: 'tä', expErr: RULE.chars },
    { name: 'plus', input: 'a+b', expErr: RULE.chars },
    { name: 'tilde', input: 'a~b', expErr: RULE.chars },
    { name: 'IPv6 literal brackets', input: '[fe80]', expErr: RULE.chars },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = expectRefusal(() => TrustDomain.parse(c.input), TD, c.expErr);
      expectTidyError(err, 400);
    });
  }

  it('shows the offending input, quoted, in the message', () => {
    const err = expectRefusal(() => TrustDomain.parse('Cluster.local'), TD, RULE.upper);
    expect(err.message).toContain('"Cluster.local"');
  });

  it('a 256-byte control: 255 bytes is accepted', () => {
    expect(TrustDomain.parse('b'.repeat(255)).name).toHaveLength(255);
    expectRefusal(() => TrustDomain.parse('b'.repeat(256)), TD, RULE.tooLong);
  });
});

describe('TrustDomain.parse refuses non-string input with the typed error', () => {
  const inputs: { name: string; input: unknown; type: string }[] = [
    { name: 'number', input: 42, type: 'number' },
    { name: 'null', input: null, type: 'object' },
    { name: 'undefined', input: undefined, type: 'undefined' },
    { name: 'object', input: {}, type: 'object' },
    { name: 'String object', input: new String('td'), type: 'object' },
    { name: 'a TrustDomain', input: TrustDomain.parse('td'), type: 'object' },
  ];
  for (const c of inputs) {
    it(c.name, () => {
      expectRefusal(() => TrustDomain.parse(c.input as string), TD, `${RULE.notString}, got ${c.type}`);
    });
  }
});

describe('TrustDomain accessors and comparisons', () => {
  const td = TrustDomain.parse('cluster.local');

  it('name, idString, toString, toJSON', () => {
    expect(td.name).toBe('cluster.local');
    expect(td.idString()).toBe('spiffe://cluster.local');
    expect(td.toString()).toBe('cluster.local');
    expect(`${td}`).toBe('cluster.local');
    expect(td.toJSON()).toBe('cluster.local');
    expect(JSON.stringify({ td })).toBe('{"td":"cluster.local"}');
  });

  it('the name and the ID form parse to equal trust domains', () => {
    expect(TrustDomain.parse('spiffe://cluster.local').equals(td)).toBe(true);
    expect(TrustDomain.parse(td.idString()).name).toBe(td.name);
  });

  it('idString() is the root SPIFFE ID of the trust domain', () => {
    const root = SpiffeId.parse(td.idString());
    expect(root.path).toBe('');
    expect(root.trustDomain.equals(td)).toBe(true);
  });

  it('equals a TrustDomain or an exact name', () => {
    expect(td.equals(TrustDomain.parse('cluster.local'))).toBe(true);
    expect(td.equals('cluster.local')).toBe(true);
    expect(td.equals(TrustDomain.parse('other.local'))).toBe(false);
    for (const near of [
      'Cluster.local',
      'cluster.local.',
      'local',
      'cluster.local:443',
      ' cluster.local',
      '',
    ]) {
      expect(td.equals(near), near).toBe(false);
    }
  });

  it('equals(non-trust-domain) is false, not a TypeError', () => {
    for (const other of [null, undefined, 42, {}]) {
      expect(td.equals(other as unknown as string)).toBe(false);
    }
  });

  it('util.inspect shows the name', () => {
    expect(inspect(td)).toBe('TrustDomain(cluster.local)');
    expect(inspect({ td })).toBe('{ td: TrustDomain(cluster.local) }');
  });

  it('is frozen, and assignment throws in strict mode', () => {
    expect(Object.isFrozen(td)).toBe(true);
    const loose = td as unknown as Record<string, unknown>;
    expect(() => {
      loose.name = 'evil.org';
    }).toThrow(TypeError);
    expect(() => {
      loose.extra = 1;
    }).toThrow(TypeError);
    expect(td.name).toBe('cluster.local');
    expect(td.idString()).toBe('spiffe://cluster.local');
  });
});

describe('TrustDomain error messages', () => {
  it('truncate a long input: the message stays short', () => {
    for (const input of ['a'.repeat(100_000), `spiffe://${'a'.repeat(100_000)}`, `${'A'.repeat(100_000)}`]) {
      const err = expectRefusal(() => TrustDomain.parse(input), TD, RULE.tooLong);
      expectTidyError(err, 400);
      expect(err.message).toContain('characters)');
    }
    const chars = expectRefusal(() => TrustDomain.parse(`${'a'.repeat(200)} `), TD, RULE.chars);
    expectTidyError(chars, 400);
  });

  it('escape control characters', () => {
    const nl = expectRefusal(() => TrustDomain.parse('td\nINFO forged log line'), TD, RULE.chars);
    expect(nl.message).not.toContain('\n');
    expect(nl.message).toContain('\\n');
    const nul = expectRefusal(() => TrustDomain.parse('\u0000'), TD, RULE.chars);
    expect(nul.message).not.toContain('\u0000');
    expect(nul.message).toContain('\\u0000');
    for (const err of [nl, nul]) expectTidyError(err, 400);
  });

  describe('never show a private key', () => {
    const { pem, body } = privateKeyPem();
    const attempts: { name: string; input: string }[] = [
      { name: 'PEM as the name', input: pem },
      { name: 'PEM after the scheme', input: `spiffe://${pem}` },
      { name: 'base64 body as the name', input: body },
    ];
    for (const a of attempts) {
      it(a.name, () => {
        const err = thrown(() => TrustDomain.parse(a.input)) as SidecarlessError;
        expect(isSidecarlessError(err, TD), String(err)).toBe(true);
        expectNoKeyMaterial(err, body);
        expectTidyError(err, 400);
      });
    }
  });
});

describe('TrustDomain properties', () => {
  const nameArb = fc.stringMatching(/^[a-z0-9._-]{1,255}$/);

  it('a valid name round-trips through both forms', () => {
    fc.assert(
      fc.property(nameArb, (name) => {
        const td = TrustDomain.parse(name);
        expect(td.name).toBe(name);
        expect(td.equals(name)).toBe(true);
        const again = TrustDomain.parse(td.idString());
        expect(again.equals(td)).toBe(true);
        expect(SpiffeId.parse(td.idString()).trustDomain.equals(td)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  const nearChars = fc.constantFrom(...'aZ09._-/:@%?#~+ \n\u0000éK'.split(''), '\u{1F600}', '\udc00');
  const nearArb = fc
    .tuple(
      fc.constantFrom('spiffe://', 'SPIFFE://', 'https://', 'spiffe:', 'td', ''),
      fc.string({ unit: nearChars, maxLength: 30 }),
    )
    .map(([prefix, rest]) => prefix + rest);
  const anyArb = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'binary-ascii' }),
    nearArb,
  );

  it('parse returns the name, or throws ERR_TRUST_DOMAIN_INVALID: never anything else', () => {
    fc.assert(
      fc.property(anyArb, (input) => {
        let td: TrustDomain | undefined;
        try {
          td = TrustDomain.parse(input);
        } catch (err) {
          if (!isSidecarlessError(err, TD)) throw err;
          expectTidyError(err, 1000);
        }
        if (td !== undefined)
          expect(td.idString()).toBe(input.startsWith('spiffe://') ? input : `spiffe://${input}`);
        expect(td !== undefined, JSON.stringify(input)).toBe(isTrustDomainOracle(input));
      }),
      { numRuns: 2000 },
    );
  });
});
