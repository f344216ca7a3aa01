import { generateKeyPairSync, type KeyObject } from 'node:crypto';

/** The private key types the leak tests feed into every entry point. */
export type TestKeyType = 'ec-p256' | 'rsa-2048' | 'ed25519';

export const TEST_KEY_TYPES: readonly TestKeyType[] = ['ec-p256', 'rsa-2048', 'ed25519'];

/** Generates a private key of one of the test types. */
export function generateTestKey(type: TestKeyType): KeyObject {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

/** One way a user might hold a private key. */
export interface KeyForm {
  /** e.g. `PKCS#8 PEM`. */
  readonly form: string;
  readonly value: string | Buffer | KeyObject;
}

/** The private key in its PKCS#8 DER encoding. */
export function pkcs8Der(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' });
}

/**
 * The "traditional" DER encoding of a key (SEC1 for EC, PKCS#1 for RSA), or undefined when the
 * type has none (Ed25519 only has PKCS#8).
 */
export function traditionalDer(key: KeyObject): Buffer | undefined {
  if (key.asymmetricKeyType === 'ec') return key.export({ format: 'der', type: 'sec1' });
  if (key.asymmetricKeyType === 'rsa') return key.export({ format: 'der', type: 'pkcs1' });
  return undefined;
}

/**
 * Every form of the key the leak tests use: PKCS#8 PEM, SEC1/PKCS#1 PEM, PKCS#8 DER bytes, the
 * DER as a latin1, base64 or hex string, and the KeyObject.
 */
export function keyForms(key: KeyObject): KeyForm[] {
  const der = pkcs8Der(key);
  const forms: KeyForm[] = [
    { form: 'PKCS#8 PEM', value: key.export({ format: 'pem', type: 'pkcs8' }) as string },
    { form: 'PKCS#8 DER', value: der },
    { form: 'DER as latin1 string', value: der.toString('latin1') },
    { form: 'DER as base64 string', value: der.toString('base64') },
    { form: 'DER as hex string', value: der.toString('hex') },
    { form: 'KeyObject', value: key },
  ];
  if (key.asymmetricKeyType === 'ec') {
    forms.splice(1, 0, { form: 'SEC1 PEM', value: key.export({ format: 'pem', type: 'sec1' }) as string });
  } else if (key.asymmetricKeyType === 'rsa') {
    forms.splice(1, 0, { form: 'PKCS#1 PEM', value: key.export({ format: 'pem', type: 'pkcs1' }) as string });
  }
  return forms;
}
