import { inspect } from 'node:util';
import { expect } from 'vitest';
import { type ErrorCode, isSidecarlessError, type SidecarlessError } from '../../src/index.js';

function check(thrown: unknown, threw: boolean, code: ErrorCode): SidecarlessError {
  if (!threw) return expect.fail(`expected ${code}, but nothing was thrown`);
  if (!isSidecarlessError(thrown)) {
    return expect.fail(`expected a SidecarlessError ${code}, got ${inspect(thrown)}`);
  }
  expect(thrown.code, thrown.message).toBe(code);
  return thrown;
}

/** Runs `fn`, asserts it throws a SidecarlessError with `code`, and returns that error. */
export function expectCode(fn: () => unknown, code: ErrorCode): SidecarlessError {
  try {
    fn();
  } catch (err) {
    return check(err, true, code);
  }
  return check(undefined, false, code);
}

/** As {@link expectCode}, for a function returning a promise. */
export async function expectCodeAsync(
  fn: () => Promise<unknown>,
  code: ErrorCode,
): Promise<SidecarlessError> {
  try {
    await fn();
  } catch (err) {
    return check(err, true, code);
  }
  return check(undefined, false, code);
}
