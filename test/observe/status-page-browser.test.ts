// The status page in a real browser: Debian's headless Chromium loads it from the admin port,
// dumps the DOM it built and takes a screenshot (kept under temp/ as a test artifact). The locks
// are in the DOM; the hostile refusal paths are text: no <img> element came from them, and the
// onerror handler that would have changed document.title did not run.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../../src/testing/index.js';
import { skipWithout } from '../helpers/programs.js';
import { BOARDS, HOSTILE_PATH, startStatusWorld, TITLE_PATH, UI } from '../helpers/status-world.js';

const ca = createTestCa();
afterAll(() => ca.close());
const ARTIFACTS = fileURLToPath(new URL('../../temp/', import.meta.url));
const skip = skipWithout('chromium', 'chromium');

function chromium(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'sidecarless-chromium-'));
  return new Promise((resolve) => {
    execFile(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--disable-extensions',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, HOME: profile } },
      (err, stdout, stderr) => {
        rmSync(profile, { recursive: true, force: true });
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe.skipIf(skip)('the status page in headless Chromium', () => {
  it('renders the locks, shows hostile paths as text, runs no script, and is screenshotted', async () => {
    const world = await startStatusWorld(ca);
    const dumped = await chromium(['--dump-dom', world.adminUrl]);
    expect(dumped.code, dumped.stderr).toBe(0);
    const dom = dumped.stdout;
    // The locks, as Chromium parsed them.
    const closed =
      /<td class="lock lock-closed" data-lock="closed"><svg [^>]*aria-label="closed lock">.*?<\/svg> mTLS<\/td>/g;
    const open =
      /<td class="lock lock-open" data-lock="open"><svg [^>]*aria-label="open lock">.*?<\/svg> plaintext<\/td>/g;
    // Inbound from the UI and outbound to the boards: mTLS; inbound from the plaintext caller: open.
    expect(dom.match(closed)?.length).toBe(2);
    expect(dom.match(open)?.length).toBe(1);
    expect(dom).toContain(UI);
    expect(dom).toContain(BOARDS);
    // The refusals are text in the DOM: escaped when serialised, never an element.
    expect(dom).toContain(HOSTILE_PATH.replaceAll('<', '&lt;').replaceAll('>', '&gt;'));
    expect(dom).toContain(TITLE_PATH.replaceAll('<', '&lt;').replaceAll('>', '&gt;'));
    expect(dom).not.toMatch(/<img/i);
    expect(dom).toContain('<title>sidecarless status</title>');
    expect(dom).not.toContain('pwned</title>');
    expect(dom).not.toContain('secret-query');

    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = join(ARTIFACTS, 'status-page.png');
    rmSync(screenshot, { force: true });
    const shot = await chromium([`--screenshot=${screenshot}`, '--window-size=1400,1000', world.adminUrl]);
    expect(shot.code, shot.stderr).toBe(0);
    expect(statSync(screenshot).size).toBeGreaterThan(1000);
    expect(readFileSync(screenshot).subarray(1, 4).toString('latin1')).toBe('PNG');
  }, 120_000);
});
