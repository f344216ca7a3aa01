// Fuzzing settings shared by test/fuzz/*: a fixed seed and a fixed number of runs in CI, larger
// through scripts/fuzz.mjs (FUZZ_RUNS, FUZZ_SEED). A failure prints the seed and path to replay it.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';
import { isSidecarlessError } from '../../src/index.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_206);
const scale = Number(process.env.FUZZ_RUNS ?? 1);

/** fast-check parameters: `runs` in CI, multiplied by FUZZ_RUNS for the long run. */
export function params(runs: number): fc.Parameters<unknown> {
  return { seed, numRuns: Math.max(1, Math.round(runs * scale)), endOnFailure: true };
}

/** Runs `property` with `params(runs)`, and records how many runs it made for test/reliability/README.md. */
export function check<T>(
  name: string,
  property: fc.IPropertyWithHooks<T> | fc.IProperty<T>,
  runs: number,
): void {
  const p = params(runs);
  fc.assert(property as fc.IProperty<T>, p as fc.Parameters<T>);
  const dir = join(process.cwd(), 'temp', 'reliability');
  mkdirSync(dir, { recursive: true });
  appendFileSync(
    join(dir, `fuzz-node${process.versions.node.split('.')[0]}.jsonl`),
    `${JSON.stringify({ name, runs: p.numRuns, seed })}\n`,
  );
}

/** The oracle every target shares: a call either returns or throws a SidecarlessError, nothing else. */
export function typedOnly<T>(fn: () => T): { ok: true; value: T } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (!isSidecarlessError(err)) {
      expect.fail(`threw something other than a SidecarlessError: ${String((err as Error)?.stack ?? err)}`);
    }
    return { ok: false, code: err.code };
  }
}
