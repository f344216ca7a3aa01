// Shared by the SpiffeId and TrustDomain tests: catching the typed error, oracles, key material.
import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { expect } from 'vitest';
import { type ErrorCode, isSidecarlessError, type SidecarlessError } from '../../src/index.js';

/** Runs `fn`, which must throw, and returns what it threw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, it returned');
}

/** Asserts that `fn` throws a SidecarlessError with `code` whose message contains `fragment`. */
export function expectRefusal(fn: () => unknown, code: ErrorCode, fragment: string): SidecarlessError {
  const err = thrown(fn);
  expect(err, String(err)).not.toBeInstanceOf(TypeError);
  expect(isSidecarlessError(err), String(err)).toBe(true);
  const e = err as SidecarlessError;
  expect(e.code, e.message).toBe(code);
  expect(e.message).toContain(fragment);
  return e;
}

// C0 controls: none may reach a message or a detail field raw. DEL and C1 (U+007F-U+009F) still
// pass through quote() in src/internal/show.ts unescaped; see the todo in spiffe-id.test.ts.
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x20) return true;
  return false;
}

/** What every refusal must look like, whatever the input: bounded, escaped text. */
export function expectTidyError(err: SidecarlessError, maxLength: number): void {
  expect(err.message.length).toBeLessThan(maxLength);
  expect(hasControl(err.message), err.message).toBe(false);
  for (const value of Object.values(err.detail)) {
    if (typeof value !== 'string') continue;
    expect(value.length).toBeLessThan(maxLength);
    expect(hasControl(value), value).toBe(false);
  }
}

/** Reference: whether `s` is a SPIFFE ID, written from the spec independently of the parser. */
export function isSpiffeIdOracle(s: string): boolean {
  if (Buffer.byteLength(s, 'utf8') > 2048) return false;
  const m = /^spiffe:\/\/([a-z0-9._-]{1,255})((?:\/[A-Za-z0-9._-]+)*)$/.exec(s);
  if (m === null) return false;
  return !(m[2] ?? '').split('/').some((seg) => seg === '.' || seg === '..');
}

/** Reference: whether `s` is a trust domain name or a trust domain's ID (`spiffe://name`). */
export function isTrustDomainOracle(s: string): boolean {
  return /^(?:spiffe:\/\/)?[a-z0-9._-]{1,255}$/.test(s);
}

/** A fresh P-256 private key as PKCS#8 PEM, and its base64 body on one line. */
export function privateKeyPem(): { pem: string; body: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const body = pem
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('-----'))
    .join('');
  return { pem, body };
}

/** Asserts that no 16-character window of `secret` appears in the error's message, detail or inspection. */
export function expectNoKeyMaterial(err: SidecarlessError, secret: string): void {
  const surfaces = [err.message, JSON.stringify(err.detail), inspect(err), String(err.stack)];
  for (let i = 0; i + 16 <= secret.length; i++) {
    const window = secret.slice(i, i + 16);
    for (const surface of surfaces) {
      if (surface.includes(window)) {
        throw new Error(`key material ${JSON.stringify(window)} leaked into ${JSON.stringify(surface)}`);
      }
    }
  }
}
