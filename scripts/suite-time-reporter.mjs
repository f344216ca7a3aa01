// A vitest reporter that adds up, per suite (the first directory under test/), the time its files
// took: import and collection, then every test and hook. .ci/run passes it beside the default and
// JSON reporters and checks the sums against test/suite-budgets.json (scripts/check-suite-budgets.mjs).
// Files run two at a time, so a suite's sum can exceed the wall time it added to the run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';

/** The suite a test file belongs to: `test/interop/x.test.ts` → `test/interop`, `test/readme.test.ts` → `test`. */
export function suiteOf(file) {
  const parts = file.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : parts[0];
}

export default class SuiteTimeReporter {
  #root = process.cwd();
  #started = 0;
  #suites = new Map();

  onInit(vitest) {
    this.#root = vitest.config.root;
  }

  onTestRunStart() {
    this.#started = performance.now();
  }

  onTestModuleEnd(testModule) {
    const d = testModule.diagnostic();
    const suite = suiteOf(relative(this.#root, testModule.moduleId));
    const entry = this.#suites.get(suite) ?? { files: 0, seconds: 0 };
    entry.files += 1;
    entry.seconds += (d.collectDuration + d.setupDuration + d.duration) / 1000;
    this.#suites.set(suite, entry);
  }

  onTestRunEnd() {
    const out = process.env.SUITE_TIMES_FILE;
    if (!out) return;
    const suites = Object.fromEntries(
      [...this.#suites]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, { files: v.files, seconds: Math.round(v.seconds * 10) / 10 }]),
    );
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(
      out,
      `${JSON.stringify({ node: process.version, wallSeconds: Math.round((performance.now() - this.#started) / 100) / 10, suites }, null, 2)}\n`,
    );
  }
}
