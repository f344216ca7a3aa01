import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// CI states a time budget per long suite (issue: interop and reliability figures) and checks it
// with scripts/check-suite-budgets.mjs on the times scripts/suite-time-reporter.mjs records.
const root = new URL('../..', import.meta.url).pathname;
const budgets = JSON.parse(readFileSync(join(root, 'test/suite-budgets.json'), 'utf8')) as {
  suites: Record<string, number>;
  npmTestWallSeconds: number;
};
const work = mkdtempSync(join(tmpdir(), 'sidecarless-budgets-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function check(times: Record<string, unknown>[]): { status: number | null; out: string } {
  const dir = mkdtempSync(join(work, 'times-'));
  for (const [i, t] of times.entries()) {
    writeFileSync(join(dir, `suite-times-node${20 + 2 * i}.json`), JSON.stringify(t));
  }
  const r = spawnSync(process.execPath, [join(root, 'scripts/check-suite-budgets.mjs'), '--times-dir', dir], {
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

const within = (scale: number) => ({
  node: 'v20.0.0',
  wallSeconds: budgets.npmTestWallSeconds * scale,
  suites: Object.fromEntries(
    Object.entries(budgets.suites).map(([k, v]) => [k, { files: 1, seconds: v * scale }]),
  ),
});

describe('suite time budgets', () => {
  it('budgets the interop, reliability and fuzz suites, each a directory of test files', () => {
    expect(Object.keys(budgets.suites)).toEqual(
      expect.arrayContaining(['test/interop', 'test/reliability', 'test/fuzz']),
    );
    for (const suite of Object.keys(budgets.suites)) {
      expect(existsSync(join(root, suite)), suite).toBe(true);
      expect(
        readdirSync(join(root, suite)).some((f) => f.endsWith('.test.ts')),
        suite,
      ).toBe(true);
    }
  });

  it('passes within budget and fails over it, naming the suite', () => {
    const ok = check([within(0.5), within(0.9)]);
    expect(ok.status, ok.out).toBe(0);
    const suite = Object.keys(budgets.suites)[0] as string;
    const slow = within(0.5);
    (slow.suites[suite] as { seconds: number }).seconds = (budgets.suites[suite] as number) + 1;
    const bad = check([within(0.5), slow]);
    expect(bad.status).toBe(1);
    expect(bad.out).toContain(`${suite}: ${(budgets.suites[suite] as number) + 1} s of`);
    expect(bad.out).toContain('OVER BUDGET');
  });

  it('fails when a budgeted suite did not run, or nothing was recorded', () => {
    const missing = within(0.5);
    delete missing.suites['test/reliability'];
    const r = check([missing]);
    expect(r.status).toBe(1);
    expect(r.out).toContain('test/reliability: - s of');
    expect(check([]).status).toBe(1);
  });

  it('.ci/run records the times with the reporter on every Node version and checks them', () => {
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    expect(ci).toContain('SUITE_TIMES_FILE="temp/suite-times-node$v.json"');
    expect(ci).toContain('--reporter=./scripts/suite-time-reporter.mjs');
    for (const v of ['20', '22', '24']) expect(ci).toContain(`npm_test ${v} "$node${v}_bin"`);
    expect(ci).toContain('scripts/check-suite-budgets.mjs');
  });

  it('the reporter records the suite of each file it saw', () => {
    const out = join(work, 'own.json');
    execFileSync(
      process.execPath,
      [
        join(root, 'node_modules/vitest/vitest.mjs'),
        'run',
        'test/spiffe/',
        '--reporter=./scripts/suite-time-reporter.mjs',
      ],
      { cwd: root, env: { ...process.env, SUITE_TIMES_FILE: out }, stdio: 'pipe' },
    );
    const times = JSON.parse(readFileSync(out, 'utf8'));
    expect(Object.keys(times.suites)).toEqual(['test/spiffe']);
    expect(times.suites['test/spiffe'].files).toBeGreaterThan(0);
    expect(times.suites['test/spiffe'].seconds).toBeGreaterThan(0);
    expect(times.node).toBe(process.version);
  });
});
