import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SidecarlessError } from '../errors.js';
import { decodePem, looksLikePem, pathHint } from './pem.js';

/**
 * A private key as users hold it: PEM text or bytes (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`,
 * PKCS#1 `RSA PRIVATE KEY`), DER bytes in one of those encodings, or a `KeyObject`.
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { X509Svid, type PrivateKeyInput } from 'sidecarless';
 * const key: PrivateKeyInput = readFileSync('/etc/certs/key.pem');
 * X509Svid.parse(readFileSync('/etc/certs/cert-chain.pem'), key);
 * ```
 */
export type PrivateKeyInput = string | Uint8Array | KeyObject;

const PEM_KEY_TYPES: Record<string, 'pkcs8' | 'sec1' | 'pkcs1'> = {
  'PRIVATE KEY': 'pkcs8',
  'EC PRIVATE KEY': 'sec1',
  'RSA PRIVATE KEY': 'pkcs1',
};

/** The key type a SEC1 or PKCS#1 label promises. */
const LABEL_KEY_TYPES: Record<string, string> = { 'EC PRIVATE KEY': 'ec', 'RSA PRIVATE KEY': 'rsa' };

function keyError(what: string, rule: string): SidecarlessError {
  // Never a `cause`: OpenSSL's decoder errors are safe today, but nothing below us gets to put
  // text into an error that sits next to key bytes.
  return new SidecarlessError('ERR_KEY_INVALID', `${what}: ${rule}`, {});
}

function fromDer(der: Buffer, type: 'pkcs8' | 'sec1' | 'pkcs1'): KeyObject | undefined {
  try {
    return createPrivateKey({ key: der, format: 'der', type });
  } catch {
    return undefined;
  }
}

function isKeyObject(value: unknown): value is KeyObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as KeyObject).export === 'function' &&
    typeof (value as KeyObject).type === 'string'
  );
}

/**
 * Parses a private key and checks it is one sidecarless accepts for an SVID: EC P-256 or P-384,
 * RSA of 2048 bits or more, or Ed25519. Encrypted keys are refused.
 *
 * @param what - names the input in messages (an option or a file)
 */
export function parsePrivateKey(input: PrivateKeyInput, what: string): KeyObject {
  let key: KeyObject | undefined;
  if (isKeyObject(input)) {
    if (input.type !== 'private') throw keyError(what, `expected a private key, got a ${input.type} key`);
    key = input;
  } else if (typeof input === 'string' || (input instanceof Uint8Array && looksLikePem(input))) {
    const text = typeof input === 'string' ? input : Buffer.from(input as Uint8Array).toString('latin1');
    if (typeof input === 'string' && !looksLikePem(input)) {
      throw keyError(
        what,
        `a key given as a string must be PEM text with a "PRIVATE KEY" block${pathHint(input)}`,
      );
    }
    const blocks = decodePem(text, what).filter((b) => b.label !== 'EC PARAMETERS');
    const keyBlocks = blocks.filter((b) => b.label.includes('PRIVATE KEY'));
    if (keyBlocks.length === 0) {
      throw keyError(
        what,
        `no private key in the PEM input (found ${blocks.map((b) => `"${b.label}"`).join(', ')})`,
      );
    }
    if (keyBlocks.length > 1)
      throw keyError(what, `${keyBlocks.length} private keys in the PEM input; give one`);
    const block = keyBlocks[0] as (typeof keyBlocks)[number];
    if (block.label === 'ENCRYPTED PRIVATE KEY' || /ENCRYPTED/.test(block.headers)) {
      throw keyError(what, 'encrypted private keys are not supported; give the key unencrypted');
    }
    const type = PEM_KEY_TYPES[block.label];
    if (type === undefined) throw keyError(what, `unsupported PEM block "${block.label}"`);
    key = fromDer(block.der, type);
    // OpenSSL's decoders ignore the format hint (3.0 reads PKCS#8 as SEC1, 3.5 also as PKCS#1), so
    // the label is held to the key it names: the same input is refused on every runtime.
    const labelled = LABEL_KEY_TYPES[block.label];
    if (key === undefined || (labelled !== undefined && key.asymmetricKeyType !== labelled)) {
      throw keyError(what, `the "${block.label}" block is not a valid ${type} key`);
    }
  } else if (input instanceof Uint8Array) {
    const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    key = fromDer(der, 'pkcs8') ?? fromDer(der, 'sec1') ?? fromDer(der, 'pkcs1');
    if (key === undefined) {
      throw keyError(what, 'bytes are neither PEM nor a DER private key (PKCS#8, SEC1 or PKCS#1)');
    }
  } else {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `${what} must be PEM text, DER bytes or a KeyObject, got ${input === null ? 'null' : typeof input}`,
      { field: what },
    );
  }
  checkSupportedKey(key, what);
  return key;
}

/** Refuses key types and sizes sidecarless does not issue or present. */
export function checkSupportedKey(key: KeyObject, what: string): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    if (details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1') return;
    throw new SidecarlessError(
      'ERR_KEY_UNSUPPORTED',
      `${what}: EC curve ${details.namedCurve ?? 'unknown'} is not supported (use P-256 or P-384)`,
      {},
    );
  }
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) >= 2048) return;
    throw new SidecarlessError(
      'ERR_KEY_UNSUPPORTED',
      `${what}: RSA keys must have at least 2048 bits, got ${details.modulusLength ?? 'unknown'}`,
      {},
    );
  }
  if (type === 'ed25519') return;
  throw new SidecarlessError(
    'ERR_KEY_UNSUPPORTED',
    `${what}: key type ${type ?? 'unknown'} is not supported (use EC P-256/P-384, RSA >= 2048 or Ed25519)`,
    {},
  );
}

/** The SubjectPublicKeyInfo DER of a key's public half, for comparing keys. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' });
}
