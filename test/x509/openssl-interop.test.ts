import type { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLocalCa, type KeyType, verifyPeerChain, X509Bundle, X509Svid } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';
import { useOpensslDir } from '../helpers/openssl.js';

const TD = 'openssl.example';

describe('certificates made by the openssl CLI', () => {
  const ossl = useOpensslDir();
  ossl.run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.pem',
    '-days',
    '1',
    '-subj',
    '/O=openssl/CN=openssl root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  const rootPem = ossl.readText('root.pem');

  /** Issues a leaf with openssl for `key` (a file openssl made), with the given extension lines. */
  const issue = (name: string, key: string, extensions: string[]) => {
    ossl.write(`${name}.ext`, `${extensions.join('\n')}\n`);
    ossl.run('req', '-new', '-key', key, '-out', `${name}.csr`, '-subj', `/O=openssl/CN=${name}`);
    ossl.run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-set_serial',
      '0x7e57',
      '-days',
      '1',
      '-out',
      `${name}.pem`,
      '-extfile',
      `${name}.ext`,
    );
    return ossl.readText(`${name}.pem`);
  };
  const svidExtensions = (id: string) => [
    `subjectAltName=URI:${id}`,
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth,clientAuth',
  ];

  it('loads an openssl root as a bundle, in PEM, DER and JWKS form', () => {
    const bundle = X509Bundle.parse(TD, rootPem);
    expect(bundle.authorities).toHaveLength(1);
    expect(bundle.authorities[0]?.subject).toContain('CN=openssl root');
    expect(X509Bundle.parse(TD, (bundle.authorities[0] as X509Certificate).raw).equals(bundle)).toBe(true);
    expect(X509Bundle.parse(TD, JSON.stringify(bundle.toJwks())).equals(bundle)).toBe(true);
  });

  it('verifies an openssl-issued EC leaf, and X509Svid takes it with its SEC1 key', () => {
    ossl.run('ecparam', '-name', 'prime256v1', '-genkey', '-out', 'ec.key'); // EC PARAMETERS + EC PRIVATE KEY
    const leafPem = issue('ec-leaf', 'ec.key', svidExtensions(`spiffe://${TD}/ns/x`));
    const bundle = X509Bundle.parse(TD, rootPem);
    const result = verifyPeerChain(
      [Buffer.from(leafPem.replace(/-----[^-]+-----|\s/g, ''), 'base64')],
      bundle,
    );
    expect(result.id.toString()).toBe(`spiffe://${TD}/ns/x`);
    expect(result.verifiedChain).toHaveLength(2);
    const keyPem = ossl.readText('ec.key');
    expect(keyPem).toContain('BEGIN EC PARAMETERS');
    const svid = X509Svid.parse(leafPem, keyPem);
    expect(svid.id.equals(result.id)).toBe(true);
    expect(verifyPeerChain(svid.certificates, bundle, { usage: 'server' }).id.equals(svid.id)).toBe(true);
  });

  it('verifies an openssl-issued Ed25519 leaf', () => {
    ossl.run('genpkey', '-algorithm', 'ed25519', '-out', 'ed.key');
    const leafPem = issue('ed-leaf', 'ed.key', svidExtensions(`spiffe://${TD}/ns/ed`));
    const svid = X509Svid.parse(leafPem, ossl.read('ed.key'));
    expect(svid.leaf.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(verifyPeerChain(svid.certificates, X509Bundle.parse(TD, rootPem)).id.path).toBe('/ns/ed');
  });

  it('refuses openssl-issued leaves that break the SVID profile (control: same root)', () => {
    ossl.run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'bad.key');
    const bundle = X509Bundle.parse(TD, rootPem);
    const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const caLeaf = issue('ca-leaf', 'bad.key', [
      `subjectAltName=URI:spiffe://${TD}/ns/x`,
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,digitalSignature',
    ]);
    expectCode(() => verifyPeerChain([der(caLeaf)], bundle), 'ERR_SVID_LEAF_IS_CA');
    const dnsLeaf = issue('dns-leaf', 'bad.key', [
      'subjectAltName=DNS:x.openssl.example',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
    ]);
    expectCode(() => verifyPeerChain([der(dnsLeaf)], bundle), 'ERR_SVID_NO_URI_SAN');
    const wrongTd = issue('td-leaf', 'bad.key', svidExtensions('spiffe://other.example/ns/x'));
    expectCode(() => verifyPeerChain([der(wrongTd)], bundle), 'ERR_SVID_NO_BUNDLE');
  });
});

describe('openssl verify accepts our chains', () => {
  const ossl = useOpensslDir();
  const keyTypes: KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];
  const verify = (purpose: string, ...files: string[]) =>
    ossl.run('verify', '-x509_strict', '-purpose', purpose, ...files);

  for (const intermediate of [false, true]) {
    const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate });
    ossl.write(`root-${intermediate}.pem`, ca.bundle().toPem());
    for (const keyType of keyTypes) {
      it(`${keyType} leaf ${intermediate ? 'under an intermediate' : 'under the root'}, as sslclient and sslserver`, () => {
        const svid = ca.issue('/ns/demo/sa/web', { keyType });
        const leaf = ossl.write(`leaf-${keyType}-${intermediate}.pem`, svid.leaf.toString());
        const args = [`-CAfile`, `root-${intermediate}.pem`];
        if (intermediate)
          args.push(
            '-untrusted',
            ossl.write('int.pem', svid.intermediates.map((c) => c.toString()).join('')),
          );
        for (const purpose of ['sslclient', 'sslserver']) {
          expect(verify(purpose, ...args, leaf)).toContain(': OK');
        }
      });
    }
  }

  it('control: openssl verify refuses a leaf of a root it does not trust', () => {
    const ca = createTestCa({ trustDomain: 'cluster.local' });
    ossl.write('test-root.pem', ca.bundle().toPem());
    const good = ossl.write('good.pem', ca.issue('/x').leaf.toString());
    expect(verify('sslclient', '-CAfile', 'test-root.pem', good)).toContain(': OK');
    const bad = ossl.write('wrong-root.pem', ca.issueBad('wrong-root').certChainPem());
    expect(() => verify('sslclient', '-CAfile', 'test-root.pem', bad)).toThrow(/verification failed/);
  });
});
