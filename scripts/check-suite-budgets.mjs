// Checks the suite times .ci/run recorded (temp/suite-times-node<major>.json, written by
// scripts/suite-time-reporter.mjs) against test/suite-budgets.json and prints one line per suite
// and Node version. Exits 1 when a budgeted suite is over budget or did not run at all.
// Usage: node scripts/check-suite-budgets.mjs [--ci-seconds N] [--times-dir temp]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({
  options: { 'ci-seconds': { type: 'string' }, 'times-dir': { type: 'string' } },
});
const budgets = JSON.parse(readFileSync(join(root, 'test/suite-budgets.json'), 'utf8'));
const timesDir = values['times-dir'] ?? join(root, 'temp');
const files = existsSync(timesDir)
  ? readdirSync(timesDir).filter((f) => /^suite-times-node\d+\.json$/.test(f))
  : [];
let over = 0;
if (files.length === 0) {
  console.log('suite budgets: no suite times recorded (temp/suite-times-node*.json)');
  over++;
}
for (const file of files.sort()) {
  const times = JSON.parse(readFileSync(join(timesDir, file), 'utf8'));
  for (const [suite, budget] of Object.entries(budgets.suites)) {
    const seconds = times.suites[suite]?.seconds;
    const verdict = seconds === undefined ? 'DID NOT RUN' : seconds > budget ? 'OVER BUDGET' : 'ok';
    if (verdict !== 'ok') over++;
    console.log(`${times.node} ${suite}: ${seconds ?? '-'} s of ${budget} s (${verdict})`);
  }
  const wallOver = times.wallSeconds > budgets.npmTestWallSeconds;
  if (wallOver) over++;
  console.log(
    `${times.node} npm test: ${times.wallSeconds} s wall of ${budgets.npmTestWallSeconds} s (${wallOver ? 'OVER BUDGET' : 'ok'})`,
  );
}
if (values['ci-seconds'] !== undefined) {
  // Reported, not enforced: the whole run includes apt-get and npm downloads the tests do not control.
  const ci = Number(values['ci-seconds']);
  console.log(
    `.ci/run so far: ${ci} s of ${budgets.ciRunSeconds} s${ci > budgets.ciRunSeconds ? ' (OVER, see why)' : ''}`,
  );
}
process.exit(over > 0 ? 1 : 0);
