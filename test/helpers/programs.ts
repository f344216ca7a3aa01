// Real peers (curl, openssl, nginx, …) come from Debian packages that `.ci/run` installs. In CI a
// missing one is a failure, never a silent skip; elsewhere the test is skipped and says which
// program to install.
import { execFileSync } from 'node:child_process';

const found = new Map<string, boolean>();

/** True when `command` is on PATH. */
export function hasProgram(command: string): boolean {
  let known = found.get(command);
  if (known === undefined) {
    try {
      execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
      known = true;
    } catch {
      known = false;
    }
    found.set(command, known);
  }
  return known;
}

/**
 * Whether a test that needs `command` should be skipped: never in CI (a missing program throws,
 * so the suite fails), and elsewhere with a line naming the Debian package to install.
 */
export function skipWithout(command: string, debianPackage = command): boolean {
  if (hasProgram(command)) return false;
  const message = `${command} is not installed (Debian package ${debianPackage})`;
  if (process.env.CI) throw new Error(`${message}: .ci/run installs it in CI`);
  console.warn(`skipped: ${message}`);
  return true;
}
