// What the CLI refuses before doing anything: a flag missing, a flag value of the wrong form.
// Each refusal names the flag and exits with the usage code (see EXIT in main.ts).

/** A command line the command cannot run: `main` prints it with the command's usage, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The flag or argument at fault, e.g. `--ttl`. */
    readonly flag: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** A duration flag (`24h`, `90m`, `1h30m`, `45s`) in ms; `fallback` when the flag was not given. */
export function durationFlag(flag: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !DURATION.test(value)) {
    throw new UsageError(`${flag} must be a duration such as 24h, 90m, 1h30m or 45s, got "${value}"`, flag);
  }
  let ms = 0;
  for (const [, n, unit] of value.matchAll(/(\d+)(ms|s|m|h|d)/g))
    ms += Number(n) * (UNITS[unit as string] ?? 0);
  if (ms <= 0 || !Number.isSafeInteger(ms))
    throw new UsageError(`${flag} must be longer than 0, got "${value}"`, flag);
  return ms;
}

/** A flag that must be given, as a string. */
export function requiredFlag(flag: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required`, flag);
  return value;
}

/** A string flag, or undefined when it was not given; an empty value is refused. */
export function optionalFlag(flag: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} must not be empty`, flag);
  return value;
}

/** One of a few words. */
export function choiceFlag<T extends string>(
  flag: string,
  value: unknown,
  choices: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T)) {
    throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got "${String(value)}"`, flag);
  }
  return value as T;
}

/** Exactly `count` positional arguments, named for the message. */
export function positionalArgs(positionals: readonly string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) {
    throw new UsageError(
      `missing ${names
        .slice(positionals.length)
        .map((n) => `<${n}>`)
        .join(' ')}`,
      `<${names[positionals.length]}>`,
    );
  }
  if (positionals.length > names.length) {
    throw new UsageError(
      `unexpected argument "${positionals[names.length]}"`,
      positionals[names.length] as string,
    );
  }
  return [...positionals];
}

/** A duration in the flags' own form: 86400000 → `24h` (days from 2 on), 5400000 → `1h30m`. */
export function formatDuration(ms: number): string {
  let left = ms;
  let text = '';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ] as const) {
    if (left >= size && (unit !== 'd' || ms >= 2 * size)) {
      text += `${Math.floor(left / size)}${unit}`;
      left %= size;
    }
  }
  return text || '0s';
}
