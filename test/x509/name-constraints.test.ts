import { AsnConvert } from '@peculiar/asn1-schema';
import {
  type Extension,
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  NameConstraints,
  OtherName,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { createLocalCa, verifyPeerChain } from '../../src/index.js';
import { buildName, ext, type NameSpec } from '../../src/x509/build.js';
import { inspectCertificate } from '../../src/x509/certificate.js';
import { checkNameConstraints } from '../../src/x509/name-constraints.js';
import { makeCa, makeLeaf, rootSigner } from '../helpers/certs.js';
import { expectCode } from '../helpers/expect-code.js';

const uri = (v: string) => new GeneralName({ uniformResourceIdentifier: v });
const dns = (v: string) => new GeneralName({ dNSName: v });
const ip = (v: string) => new GeneralName({ iPAddress: v });
const email = (v: string) => new GeneralName({ rfc822Name: v });
const dir = (spec: NameSpec) => new GeneralName({ directoryName: buildName(spec) });

type Subtree = GeneralName | GeneralSubtree;
const subtrees = (list: readonly Subtree[]) =>
  new GeneralSubtrees(list.map((s) => (s instanceof GeneralSubtree ? s : new GeneralSubtree({ base: s }))));

/** A critical nameConstraints extension with subtrees of any form. */
function nameConstraints(permitted: readonly Subtree[], excluded: readonly Subtree[] = []): Extension {
  const nc = new NameConstraints({
    ...(permitted.length > 0 ? { permittedSubtrees: subtrees(permitted) } : {}),
    ...(excluded.length > 0 ? { excludedSubtrees: subtrees(excluded) } : {}),
  });
  return ext.raw(id_ce_nameConstraints, true, new Uint8Array(AsnConvert.serialize(nc)));
}

function san(names: readonly GeneralName[]): Extension {
  return ext.raw(
    id_ce_subjectAltName,
    false,
    new Uint8Array(AsnConvert.serialize(new SubjectAlternativeName([...names]))),
  );
}

/**
 * Builds a CA carrying `constraints` and a certificate it signs with `names` (and `subject`),
 * then runs checkNameConstraints on the two. Returns the error, or undefined when permitted.
 */
function check(constraints: Extension, names: readonly GeneralName[], subject?: NameSpec): Error | undefined {
  const signer = makeCa('constrained', undefined, { extensions: [constraints] });
  const leaf = makeLeaf(signer.signer, { san: san(names), ...(subject === undefined ? {} : { subject }) });
  expect(leaf.x509.verify(signer.publicKey)).toBe(true);
  try {
    checkNameConstraints(inspectCertificate(signer.der), 1, inspectCertificate(leaf.der), 0);
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

interface Case {
  readonly name: string;
  readonly constraints: Extension;
  readonly names: readonly GeneralName[];
  readonly subject?: NameSpec;
  readonly permitted: boolean;
}
const P = (...subtrees: Subtree[]) => nameConstraints(subtrees);
const X = (...subtrees: Subtree[]) => nameConstraints([], subtrees);
const permits = (name: string, constraints: Extension, ...names: GeneralName[]): Case => ({
  name,
  constraints,
  names,
  permitted: true,
});
const refuses = (name: string, constraints: Extension, ...names: GeneralName[]): Case => ({
  name,
  constraints,
  names,
  permitted: false,
});
const subjectCase = (permitted: boolean, name: string, constraints: Extension, subject: NameSpec): Case => ({
  name,
  constraints,
  names: [],
  subject,
  permitted,
});
const TD = 'cluster.local';
const ID = uri('spiffe://cluster.local/x');
const ours: NameSpec = [
  ['O', 'sidecarless test'],
  ['CN', 'x'],
];

const cases: Record<string, Case[]> = {
  'URI host': [
    permits('exact host', P(uri(TD)), ID),
    permits('exact host, other case', P(uri(TD)), uri('spiffe://CLUSTER.local/x')),
    permits('exact host with userinfo and port', P(uri(TD)), uri('spiffe://u@cluster.local:8443/x')),
    refuses('exact host does not cover a subdomain', P(uri(TD)), uri('spiffe://a.cluster.local/x')),
    refuses('exact host is not a suffix match', P(uri(TD)), uri('spiffe://evilcluster.local/x')),
    permits('leading dot covers a subdomain', P(uri('.cluster.local')), uri('spiffe://a.cluster.local/x')),
    permits(
      'leading dot covers deeper subdomains',
      P(uri('.cluster.local')),
      uri('spiffe://b.a.cluster.local/x'),
    ),
    refuses('leading dot excludes the host itself', P(uri('.cluster.local')), ID),
    permits('one of several permitted hosts', P(uri('a.example'), uri(TD)), ID),
    refuses('excluded host', X(uri(TD)), ID),
    permits('host outside an excluded one', X(uri(TD)), uri('spiffe://other.example/x')),
    refuses(
      'excluded wins over permitted',
      nameConstraints([uri('.example')], [uri('b.example')]),
      uri('spiffe://b.example/x'),
    ),
    refuses('a URI without host, permitted subtrees', P(uri(TD)), uri('urn:uuid:1234')),
    refuses('a URI without host, excluded subtrees', X(uri(TD)), uri('urn:uuid:1234')),
    refuses('a URI with an empty host', X(uri(TD)), uri('spiffe:///x')),
    permits('no URI names at all', P(uri(TD)), dns('a.example.com')),
  ],
  DNS: [
    permits('the domain itself', P(dns('example.com')), dns('example.com')),
    permits('a subdomain', P(dns('example.com')), dns('a.example.com')),
    permits('a subdomain, other case', P(dns('example.com')), dns('A.Example.COM')),
    refuses('not a label boundary', P(dns('example.com')), dns('badexample.com')),
    refuses('another domain', P(dns('example.com')), dns('example.org')),
    permits('leading dot: a subdomain', P(dns('.example.com')), dns('a.example.com')),
    refuses('leading dot: not the domain itself', P(dns('.example.com')), dns('example.com')),
    refuses('excluded domain', X(dns('example.com')), dns('example.com')),
    refuses('excluded domain covers subdomains', X(dns('example.com')), dns('a.example.com')),
    permits('outside an excluded domain', X(dns('example.com')), dns('example.org')),
    refuses('every name is checked', P(dns('example.com')), dns('a.example.com'), dns('evil.org')),
    permits('an empty constraint matches any name', P(dns('')), dns('anything.example')),
  ],
  IP: [
    permits('IPv4 inside', P(ip('10.0.0.0/8')), ip('10.1.2.3')),
    refuses('IPv4 outside', P(ip('10.0.0.0/8')), ip('11.0.0.1')),
    refuses('IPv6 under IPv4-only permitted ranges', P(ip('10.0.0.0/8')), ip('fd00::1')),
    permits('IPv4 /32', P(ip('192.0.2.7/32')), ip('192.0.2.7')),
    refuses('IPv4 /32, the neighbour', P(ip('192.0.2.7/32')), ip('192.0.2.8')),
    refuses('IPv4 excluded', X(ip('192.168.0.0/16')), ip('192.168.1.1')),
    permits('IPv4 outside an excluded range', X(ip('192.168.0.0/16')), ip('10.0.0.1')),
    permits('IPv6 inside', P(ip('fd00::/8')), ip('fd12::1')),
    refuses('IPv6 outside', P(ip('fd00::/8')), ip('fe80::1')),
    refuses('IPv4 under IPv6-only permitted ranges', P(ip('fd00::/8')), ip('10.0.0.1')),
    refuses('IPv6 excluded', X(ip('2001:db8::/32')), ip('2001:db8::5')),
  ],
  email: [
    permits('a mailbox on the host', P(email('example.com')), email('alice@example.com')),
    permits('the host, other case', P(email('example.com')), email('alice@EXAMPLE.com')),
    refuses('a host does not cover its subdomains', P(email('example.com')), email('a@sub.example.com')),
    permits('leading dot: a subdomain', P(email('.example.com')), email('a@sub.example.com')),
    refuses('leading dot: not the host itself', P(email('.example.com')), email('a@example.com')),
    permits('one mailbox', P(email('alice@example.com')), email('alice@example.com')),
    refuses('one mailbox, another one', P(email('alice@example.com')), email('bob@example.com')),
    refuses('excluded host', X(email('example.com')), email('alice@example.com')),
  ],
  'directory name': [
    subjectCase(true, 'subject under the permitted prefix', P(dir([['O', 'sidecarless test']])), ours),
    subjectCase(true, 'prefix without case and extra spaces', P(dir([['O', 'Sidecarless  Test']])), ours),
    subjectCase(false, 'subject outside the prefix', P(dir([['O', 'other']])), ours),
    subjectCase(false, 'prefix longer than the subject', P(dir([...ours, ['OU', 'a']])), ours),
    subjectCase(false, 'prefix not at the start', P(dir([['CN', 'x']])), ours),
    subjectCase(false, 'excluded prefix', X(dir([['O', 'sidecarless test']])), ours),
    subjectCase(true, 'outside an excluded prefix', X(dir([['O', 'evil']])), ours),
    subjectCase(true, 'an empty subject has no name to check', P(dir([['O', 'sidecarless test']])), []),
  ],
  'forms that cannot be evaluated (fail closed)': [
    refuses('registeredID', P(new GeneralName({ registeredID: '1.2.3.4' })), ID),
    refuses(
      'otherName',
      X(
        new GeneralName({
          otherName: new OtherName({ typeId: '1.2.3.4', value: new Uint8Array([5, 0]).buffer }),
        }),
      ),
      ID,
    ),
    refuses('minimum', P(new GeneralSubtree({ base: dns('example.com'), minimum: 1 })), dns('example.com')),
    refuses('maximum', P(new GeneralSubtree({ base: dns('example.com'), maximum: 2 })), dns('example.com')),
  ],
};

describe('checkNameConstraints', () => {
  for (const [form, rows] of Object.entries(cases)) {
    describe(form, () => {
      for (const { name, constraints, names, subject, permitted } of rows) {
        it(`${permitted ? 'permits' : 'refuses'}: ${name}`, () => {
          const err = check(constraints, names, subject);
          if (permitted) {
            expect(err).toBeUndefined();
            return;
          }
          const refused = expectCode(() => {
            throw err;
          }, 'ERR_SVID_NAME_CONSTRAINT');
          expect(refused.detail.index).toBe(1);
        });
      }
    });
  }

  it('names the signer, the subject position and the name at fault', () => {
    const err = expectCode(() => {
      const e = check(nameConstraints([dns('example.com')]), [dns('evil.org')]);
      if (e !== undefined) throw e;
    }, 'ERR_SVID_NAME_CONSTRAINT');
    expect(err.detail.certificate).toMatch(
      /^subject "O=sidecarless test, CN=constrained", serial [0-9A-F]+$/,
    );
    expect(err.message).toContain('dns name "evil.org" of certificate 0 is outside the permitted subtrees');
  });

  it('refuses a malformed IP constraint (not an address and mask) rather than ignoring it', () => {
    // NameConstraints { excludedSubtrees [1] { GeneralSubtree { iPAddress [7] of 5 bytes } } }
    const malformed = ext.raw(
      id_ce_nameConstraints,
      true,
      new Uint8Array([0x30, 0x0b, 0xa1, 0x09, 0x30, 0x07, 0x87, 0x05, 10, 0, 0, 0, 255]),
    );
    const err = check(malformed, [ip('10.0.0.1')]);
    expect(err).toBeDefined();
    expectCode(() => {
      throw err;
    }, 'ERR_SVID_NAME_CONSTRAINT');
  });

  it('refuses a malformed IP SAN under IP constraints rather than skipping it', () => {
    // SubjectAltName { iPAddress [7] of 5 bytes }: neither IPv4 nor IPv6.
    const malformedSan = ext.raw(
      id_ce_subjectAltName,
      false,
      new Uint8Array([0x30, 0x07, 0x87, 0x05, 10, 0, 0, 5, 1]),
    );
    const signer = makeCa('constrained', undefined, {
      extensions: [nameConstraints([], [ip('192.168.0.0/16')])],
    });
    const leaf = makeLeaf(signer.signer, { san: malformedSan });
    const err = expectCode(
      () => checkNameConstraints(inspectCertificate(signer.der), 1, inspectCertificate(leaf.der), 0),
      'ERR_SVID_NAME_CONSTRAINT',
    );
    expect(err.message).toContain('cannot be checked');
  });

  it('applies DNS and IP constraints in verifyPeerChain, beside the URI SAN', () => {
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    const intermediate = makeCa('dns-constrained', rootSigner(ca), {
      extensions: [nameConstraints([uri('cluster.local'), dns('svc.cluster.local'), ip('10.0.0.0/8')])],
    });
    const leafWith = (names: GeneralName[]) => [
      makeLeaf(intermediate.signer, { san: san([uri('spiffe://cluster.local/x'), ...names]) }).der,
      intermediate.der,
    ];
    expect(
      verifyPeerChain(leafWith([dns('web.svc.cluster.local'), ip('10.0.0.5')]), ca.bundles()).id.path,
    ).toBe('/x');
    expectCode(
      () => verifyPeerChain(leafWith([dns('web.example.com')]), ca.bundles()),
      'ERR_SVID_NAME_CONSTRAINT',
    );
    expectCode(
      () => verifyPeerChain(leafWith([ip('192.168.0.5')]), ca.bundles()),
      'ERR_SVID_NAME_CONSTRAINT',
    );
  });
});
