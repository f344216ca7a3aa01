import { SidecarlessError } from '../errors.js';
import { quote, show } from './show.js';

/** The error for an option that does not have the expected form. */
export function invalidOption(field: string, expected: string, got: unknown): SidecarlessError {
  return new SidecarlessError(
    'ERR_OPTION_INVALID',
    `option "${field}" must be ${expected}, got ${show(got)}`,
    {
      field,
    },
  );
}

/**
 * Checks that `options` is a plain object whose keys are all known, and returns it typed.
 * Unknown keys are refused: a misspelt security option must not be silently ignored.
 */
export function checkOptions<T extends object>(
  options: unknown,
  known: readonly (keyof T & string)[],
  what: string,
): T {
  // Plain objects only: a KeyObject or a Buffer has no own keys and would pass as "no options".
  const proto = typeof options === 'object' && options !== null ? Object.getPrototypeOf(options) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `${what} options must be an object, got ${show(options)}`,
      {
        field: what,
      },
    );
  }
  for (const key of Object.keys(options as object)) {
    if (!(known as readonly string[]).includes(key)) {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `${what}: unknown option ${quote(key)} (known: ${known.join(', ')})`,
        { field: key },
      );
    }
  }
  return options as T;
}

/** A duration option in ms: a positive finite number, or the default when undefined. */
export function durationOption(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidOption(field, 'a positive number of milliseconds', value);
  }
  return value;
}
