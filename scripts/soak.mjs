#!/usr/bin/env node
// The long soak (outside CI): the suites of test/reliability/ scaled up and run again and again.
//
//   node scripts/soak.mjs                         # scale 5, for 30 minutes at most
//   RELIABILITY_SCALE=10 SOAK_MINUTES=120 node scripts/soak.mjs
//
// RELIABILITY_SCALE multiplies the rotations under load and the memory batches; each round is one
// `vitest run test/reliability`. Figures of every round land in temp/reliability/*.json (the last
// round's stay). Loopback only; every loop in the suites is bounded, and so is this one.
import { spawnSync } from 'node:child_process';

const scale = process.env.RELIABILITY_SCALE ?? '5';
const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const maxRounds = Number(process.env.SOAK_ROUNDS ?? 1000);
const deadline = Date.now() + minutes * 60_000;
let round = 0;
let failed = 0;
while (Date.now() < deadline && round < maxRounds) {
  round++;
  console.log(`soak: round ${round}, RELIABILITY_SCALE=${scale}`);
  const result = spawnSync('npx', ['vitest', 'run', 'test/reliability', '--testTimeout=3600000'], {
    stdio: 'inherit',
    env: { ...process.env, RELIABILITY_SCALE: scale },
  });
  if (result.status !== 0) failed++;
}
console.log(`soak: ${round} rounds, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
