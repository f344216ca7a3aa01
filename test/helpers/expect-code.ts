import { inspect } from 'node:util';
import { expect } from 'vitest';
import { type ErrorCode, isSidecarlessError, type SidecarlessError } from '../../src/index.js';

function check(thrown: unknown, threw: boolean, code: ErrorCode | undefined): SidecarlessError {
  const wanted = code === undefined ? 'a SidecarlessError' : `a SidecarlessError ${code}`;
  if (!threw) return expect.fail(`expected ${wanted}, but nothing was thrown`);
  if (!isSidecarlessError(thrown)) return expect.fail(`expected ${wanted}, got ${inspect(thrown)}`);
  if (code !== undefined) expect(thrown.code, thrown.message).toBe(code);
  return thrown;
}

/** Runs `fn`, asserts it throws a SidecarlessError with `code`, and returns that error. */
export function expectCode(fn: () => unknown, code: ErrorCode): SidecarlessError {
  return thrownBy(fn, code);
}

/** As {@link expectCode}, for a function returning a promise. */
export function expectCodeAsync(fn: () => Promise<unknown>, code: ErrorCode): Promise<SidecarlessError> {
  return rejectionOf(fn(), code);
}

/** Runs `fn`, which must throw a SidecarlessError (with `code`, when given), and returns the error. */
export function thrownBy(fn: () => unknown, code?: ErrorCode): SidecarlessError {
  try {
    fn();
  } catch (err) {
    return check(err, true, code);
  }
  return check(undefined, false, code);
}

/** Awaits `promise`, which must reject with a SidecarlessError (with `code`, when given). */
export async function rejectionOf(promise: Promise<unknown>, code?: ErrorCode): Promise<SidecarlessError> {
  try {
    await promise;
  } catch (err) {
    return check(err, true, code);
  }
  return check(undefined, false, code);
}
