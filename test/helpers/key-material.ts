import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { pkcs8Der, traditionalDer } from './keys.js';

/** How many characters of an encoding make a match: 16 base64 characters are 12 key bytes. */
export const WINDOW = 16;

interface Fingerprint {
  /** base64 and base64url windows (at every byte alignment) and raw latin1 windows: exact match. */
  readonly exact: Set<string>;
  /** Hex windows, lowercase: matched against the lowercased text. */
  readonly hex: Set<string>;
  /** Hex windows as `util.inspect(buffer)` prints bytes (`30 81 87 …`), 8 bytes each. */
  readonly spacedHex: Set<string>;
}

/** How many characters of a window must come from secret bytes for the window to count. */
const SECRET_SHARE = 8;

function empty(): Fingerprint {
  return { exact: new Set(), hex: new Set(), spacedHex: new Set() };
}

/**
 * Adds the windows of `text` in which at least `min` characters come from secret bytes.
 * `secretChar(j)` tells whether character j of `text` encodes secret bits only.
 */
function addWindows(
  into: Set<string>,
  text: string,
  size: number,
  min: number,
  secretChar: (j: number) => boolean,
) {
  const secret = Array.from({ length: text.length }, (_, j) => (secretChar(j) ? 1 : 0));
  let count = secret.slice(0, size).reduce((a: number, b) => a + b, 0);
  for (let i = 0; i + size <= text.length; i++) {
    if (i > 0) count += (secret[i + size - 1] ?? 0) - (secret[i - 1] ?? 0);
    if (count >= min) into.add(text.slice(i, i + size));
  }
}

/**
 * Every encoding of `der` that could carry it into text, split into windows; only windows made
 * mostly of bytes that `isSecret` marks count (so a window of ASN.1 header and one secret bit
 * does not).
 */
function encodings(
  der: Buffer,
  isSecret: (index: number) => boolean,
  into: Fingerprint = empty(),
): Fingerprint {
  // base64 and base64url of the bytes as they would appear at any offset of a larger structure.
  for (const pad of [0, 1, 2]) {
    const b64 = Buffer.concat([Buffer.alloc(pad), der]).toString('base64');
    const secretChar = (j: number) => {
      const first = Math.floor((6 * j) / 8) - pad;
      const last = Math.floor((6 * j + 5) / 8) - pad;
      return first >= 0 && last < der.length && isSecret(first) && isSecret(last);
    };
    addWindows(into.exact, b64, WINDOW, SECRET_SHARE, secretChar);
    addWindows(into.exact, b64.replaceAll('+', '-').replaceAll('/', '_'), WINDOW, SECRET_SHARE, secretChar);
  }
  addWindows(into.exact, der.toString('latin1'), WINDOW, SECRET_SHARE, isSecret);
  addWindows(into.hex, der.toString('hex'), WINDOW, SECRET_SHARE, (j) => isSecret(Math.floor(j / 2)));
  const spaced = [...der].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  addWindows(into.spacedHex, spaced, 23, 12, (j) => j % 3 !== 2 && isSecret(Math.floor(j / 3)));
  return into;
}

const ALL = () => true;

function minus(a: Fingerprint, b: Fingerprint): Fingerprint {
  const keep = (x: Set<string>, y: Set<string>) => new Set([...x].filter((w) => !y.has(w)));
  return {
    exact: keep(a.exact, b.exact),
    hex: keep(a.hex, b.hex),
    spacedHex: keep(a.spacedHex, b.spacedHex),
  };
}

/** The DER private encodings of a key: PKCS#8 and SEC1/PKCS#1 (same order for every key). */
function derEncodings(key: KeyObject): Buffer[] {
  const out = [pkcs8Der(key)];
  const traditional = traditionalDer(key);
  if (traditional !== undefined) out.push(traditional);
  return out;
}

/** The JWK private parameters of a key, as bytes: secret throughout. */
function jwkSecrets(key: KeyObject): Buffer[] {
  const jwk = key.export({ format: 'jwk' }) as Record<string, unknown>;
  const out: Buffer[] = [];
  for (const param of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
    if (typeof jwk[param] === 'string') out.push(Buffer.from(jwk[param], 'base64url'));
  }
  return out;
}

const siblings = new Map<string, KeyObject[]>();

function generateLike(key: KeyObject): KeyObject {
  const details = key.asymmetricKeyDetails ?? {};
  const type = key.asymmetricKeyType;
  if (type === 'ec')
    return generateKeyPairSync('ec', { namedCurve: details.namedCurve as string }).privateKey;
  if (type === 'rsa') {
    return generateKeyPairSync('rsa', { modulusLength: details.modulusLength as number }).privateKey;
  }
  if (type === 'ed25519' || type === 'ed448' || type === 'x25519' || type === 'x448') {
    return generateKeyPairSync(type as 'ed25519').privateKey;
  }
  throw new Error(`no sibling for a ${type} key`);
}

/** Two other keys of the same type and size: where they agree with the key is ASN.1 structure. */
function siblingsOf(key: KeyObject): KeyObject[] {
  const details = key.asymmetricKeyDetails ?? {};
  const kind = `${key.asymmetricKeyType}:${details.namedCurve ?? ''}:${details.modulusLength ?? ''}`;
  let found = siblings.get(kind);
  if (found === undefined) {
    found = [generateLike(key), generateLike(key)];
    siblings.set(kind, found);
  }
  return found;
}

function publicDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}

const fingerprints = new WeakMap<KeyObject, Fingerprint>();

/**
 * The windows that identify the key's secret: windows of every private encoding made mostly of
 * bytes where the key differs from unrelated keys of its type (so not ASN.1 headers and OIDs
 * every such key shares), minus any window that also occurs in public data (the key's own
 * SPKI, which its certificates carry). What is left can only come from the private key.
 */
function fingerprintOf(key: KeyObject): Fingerprint {
  let found = fingerprints.get(key);
  if (found === undefined) {
    const others = siblingsOf(key).map(derEncodings);
    const secret = empty();
    derEncodings(key).forEach((der, e) => {
      const isSecret = (i: number) => others.some((o) => o[e]?.[i] !== der[i]);
      encodings(der, isSecret, secret);
    });
    for (const part of jwkSecrets(key)) encodings(part, ALL, secret);
    const shared = empty();
    for (const der of [
      publicDer(key),
      ...siblingsOf(key).flatMap((k) => [publicDer(k), ...derEncodings(k)]),
    ]) {
      encodings(der, ALL, shared);
    }
    found = minus(secret, shared);
    fingerprints.set(key, found);
  }
  return found;
}

/** Where `text` holds a window of the key's secret, or undefined. */
export function findKeyMaterial(text: string, key: KeyObject): string | undefined {
  const { exact, hex, spacedHex } = fingerprintOf(key);
  const lower = text.toLowerCase();
  for (let i = 0; i + WINDOW <= text.length; i++) {
    const w = text.slice(i, i + WINDOW);
    if (exact.has(w)) return `key bytes (base64/latin1) at offset ${i}`;
    if (hex.has(lower.slice(i, i + WINDOW))) return `key bytes as hex at offset ${i}`;
  }
  for (let i = 0; i + 23 <= lower.length; i++) {
    if (spacedHex.has(lower.slice(i, i + 23))) return `key bytes as spaced hex at offset ${i}`;
  }
  return undefined;
}

/**
 * Fails when `text` holds any 16-character window of a key's secret: its PEM body (base64 of
 * the DER), the base64 or base64url of its DER at any offset, its DER as hex (also as
 * `util.inspect` prints a Buffer), or its DER bytes read as latin1 text.
 */
export function assertNoKeyMaterial(text: string, keys: readonly KeyObject[], where = 'text'): void {
  for (const key of keys) {
    const found = findKeyMaterial(text, key);
    if (found !== undefined) {
      const excerpt = inspect(text.length > 400 ? `${text.slice(0, 400)}…` : text);
      throw new Error(`${where} leaks ${key.asymmetricKeyType} private key material: ${found} in ${excerpt}`);
    }
  }
}
