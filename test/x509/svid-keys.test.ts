import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLocalCa, type KeyType, verifyPeerChain, X509Svid } from '../../src/index.js';
import { encodePem } from '../../src/x509/pem.js';
import { parsePrivateKey } from '../../src/x509/private-key.js';
import { makeLeaf, rootSigner } from '../helpers/certs.js';
import { expectCode } from '../helpers/expect-code.js';

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const svids = {
  'ec-p256': ca.issue('/ns/k/sa/p256', { keyType: 'ec-p256' }),
  'ec-p384': ca.issue('/ns/k/sa/p384', { keyType: 'ec-p384' }),
  'rsa-2048': ca.issue('/ns/k/sa/rsa', { keyType: 'rsa-2048' }),
  ed25519: ca.issue('/ns/k/sa/ed', { keyType: 'ed25519' }),
} satisfies Partial<Record<KeyType, X509Svid>>;

type Encoding = [name: string, encode: (key: KeyObject) => string | Uint8Array | KeyObject];
const pem = (type: 'pkcs8' | 'sec1' | 'pkcs1') => (k: KeyObject) =>
  k.export({ format: 'pem', type }) as string;
const der = (type: 'pkcs8' | 'sec1' | 'pkcs1') => (k: KeyObject) => k.export({ format: 'der', type });
const common: Encoding[] = [
  ['PKCS#8 PEM', pem('pkcs8')],
  ['PKCS#8 PEM bytes', (k) => Buffer.from(pem('pkcs8')(k))],
  ['PKCS#8 DER', der('pkcs8')],
  ['PKCS#8 DER as a plain Uint8Array', (k) => new Uint8Array(der('pkcs8')(k))],
  ['KeyObject', (k) => k],
];
const encodings: Record<keyof typeof svids, Encoding[]> = {
  'ec-p256': [...common, ['SEC1 PEM', pem('sec1')], ['SEC1 DER', der('sec1')]],
  'ec-p384': [...common, ['SEC1 PEM', pem('sec1')], ['SEC1 DER', der('sec1')]],
  'rsa-2048': [...common, ['PKCS#1 PEM', pem('pkcs1')], ['PKCS#1 DER', der('pkcs1')]],
  ed25519: common,
};

describe('X509Svid.parse private key encodings', () => {
  for (const [keyType, svid] of Object.entries(svids) as [keyof typeof svids, X509Svid][]) {
    for (const [name, encode] of encodings[keyType]) {
      it(`${keyType} key as ${name}`, () => {
        const parsed = X509Svid.parse(svid.certChainPem(), encode(svid.privateKey));
        expect(parsed.id.equals(svid.id)).toBe(true);
        expect(parsed.privateKey.equals(svid.privateKey)).toBe(true);
        expect(verifyPeerChain(parsed.certificates, ca.bundles()).id.equals(svid.id)).toBe(true);
      });
    }
  }

  it('refuses the key of another certificate (ERR_KEY_MISMATCH), naming the leaf', () => {
    const svid = svids['ec-p256'];
    for (const other of [svids['ec-p384'], ca.issue('/ns/k/sa/p256')]) {
      const err = expectCode(() => X509Svid.parse(svid.certChainPem(), other.privateKey), 'ERR_KEY_MISMATCH');
      expect(err.detail.certificate).toMatch(/^subject ".*", serial [0-9A-F]+$/);
      expect(err.detail.peer).toBe(svid.id.toString());
      expect(inspect(err)).not.toContain(pem('pkcs8')(other.privateKey).split('\n')[1]);
    }
  });
});

describe('unsupported and undecodable keys', () => {
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const unsupported: [string, KeyObject, RegExp][] = [
    ['RSA-1024', rsa1024.privateKey, /at least 2048 bits, got 1024/],
    ['EC P-521', p521.privateKey, /curve secp521r1/],
    ['EC secp256k1', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey, /curve secp256k1/],
    ['X25519', generateKeyPairSync('x25519').privateKey, /key type x25519/],
    ['Ed448', generateKeyPairSync('ed448').privateKey, /key type ed448/],
  ];
  for (const [name, key, message] of unsupported) {
    it(`parsePrivateKey refuses ${name} (ERR_KEY_UNSUPPORTED), in every form`, () => {
      for (const input of [key, pem('pkcs8')(key), der('pkcs8')(key)]) {
        const err = expectCode(() => parsePrivateKey(input, 'test key'), 'ERR_KEY_UNSUPPORTED');
        expect(err.message).toMatch(message);
        expect(err.message).toContain('test key');
      }
    });
  }

  it('X509Svid.parse refuses an unsupported key before comparing it with a valid leaf', () => {
    const chain = svids['ec-p256'].certChainPem();
    expectCode(() => X509Svid.parse(chain, rsa1024.privateKey), 'ERR_KEY_UNSUPPORTED');
    expectCode(() => X509Svid.parse(chain, pem('pkcs8')(p521.privateKey)), 'ERR_KEY_UNSUPPORTED');
    expect(X509Svid.parse(chain, svids['ec-p256'].privateKey).id.path).toBe('/ns/k/sa/p256');
  });

  it('refuses a P-521 key even with its own leaf, though a P-521 peer is accepted', () => {
    const leaf = makeLeaf(rootSigner(ca), { uris: ['spiffe://cluster.local/p521'], keys: p521 });
    expectCode(() => X509Svid.parse(leaf.der, p521.privateKey), 'ERR_KEY_UNSUPPORTED');
    expect(verifyPeerChain([leaf.der], ca.bundles()).id.path).toBe('/p521');
  });

  it('refuses an RSA-1024 leaf and its key on the leaf first (ERR_SVID_WEAK_KEY)', () => {
    const leaf = makeLeaf(rootSigner(ca), { uris: ['spiffe://cluster.local/rsa1024'], keys: rsa1024 });
    expectCode(() => X509Svid.parse(leaf.der, rsa1024.privateKey), 'ERR_SVID_WEAK_KEY');
  });

  it('refuses encrypted keys, saying so', () => {
    const key = svids['ec-p256'].privateKey;
    const encrypted = { cipher: 'aes-256-cbc', passphrase: 'x' } as const;
    const pkcs8 = key.export({ format: 'pem', type: 'pkcs8', ...encrypted }) as string;
    const sec1 = key.export({ format: 'pem', type: 'sec1', ...encrypted }) as string;
    expect(pkcs8).toContain('ENCRYPTED PRIVATE KEY');
    expect(sec1).toContain('Proc-Type: 4,ENCRYPTED');
    for (const input of [pkcs8, sec1, Buffer.from(pkcs8)]) {
      const err = expectCode(() => X509Svid.parse(svids['ec-p256'].certChainPem(), input), 'ERR_KEY_INVALID');
      expect(err.message).toContain('encrypted');
    }
    const encryptedDer = key.export({ format: 'der', type: 'pkcs8', ...encrypted });
    expectCode(() => parsePrivateKey(encryptedDer, 'test key'), 'ERR_KEY_INVALID');
  });

  it('refuses what is not one private key', () => {
    const svid = svids['ec-p256'];
    const keyDer = der('pkcs8')(svid.privateKey);
    const invalid: [string, unknown, RegExp][] = [
      ['a public KeyObject', svid.leaf.publicKey, /expected a private key, got a public key/],
      ['a certificate PEM', svid.certChainPem(), /no private key in the PEM input \(found "CERTIFICATE"/],
      ['two keys', pem('pkcs8')(svid.privateKey).repeat(2), /2 private keys/],
      ['a string that is not PEM', 'hunter2', /must be PEM text with a "PRIVATE KEY" block/],
      ['bytes that are not a key', Buffer.from('hello, not a key'), /neither PEM nor a DER private key/],
      ['a truncated PKCS#8 PEM', encodePem('PRIVATE KEY', keyDer.subarray(0, 40)), /not a valid pkcs8 key/],
      ['PKCS#8 under an RSA label', encodePem('RSA PRIVATE KEY', keyDer), /not a valid pkcs1 key/],
      [
        'an unknown private key label',
        encodePem('DSA PRIVATE KEY', keyDer),
        /unsupported PEM block "DSA PRIVATE KEY"/,
      ],
    ];
    for (const [name, input, message] of invalid) {
      const err = expectCode(() => parsePrivateKey(input as string, 'test key'), 'ERR_KEY_INVALID');
      expect(err.message, name).toMatch(message);
      expect(err.cause, name).toBeUndefined();
      expect(inspect(err), name).not.toContain(keyDer.toString('base64').slice(40, 80));
    }
    for (const input of [42, null, undefined, {}]) {
      expectCode(() => parsePrivateKey(input as unknown as string, 'test key'), 'ERR_OPTION_INVALID');
    }
  });
});
