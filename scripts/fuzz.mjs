#!/usr/bin/env node
// The long fuzz run (outside CI): the suites of test/fuzz/ with many more runs and a new seed.
//
//   node scripts/fuzz.mjs                 # 50x the CI runs, a random seed
//   FUZZ_RUNS=200 FUZZ_SEED=42 node scripts/fuzz.mjs
//
// CI runs the same properties with a fixed seed and the counts written in each test. A failure
// prints fast-check's counterexample, seed and path: re-run with that FUZZ_SEED to replay it.
import { spawnSync } from 'node:child_process';

const runs = process.env.FUZZ_RUNS ?? '50';
const seed = process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
console.log(`fuzz: FUZZ_RUNS=${runs} (x the CI counts), FUZZ_SEED=${seed}`);
const result = spawnSync('npx', ['vitest', 'run', 'test/fuzz', '--testTimeout=3600000'], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: runs, FUZZ_SEED: seed },
});
console.log(`fuzz: FUZZ_RUNS=${runs}, FUZZ_SEED=${seed}: ${result.status === 0 ? 'passed' : 'FAILED'}`);
process.exit(result.status ?? 1);
