// The built `sidecarless` bin, spawned as a user runs it (asynchronously, so servers in the test
// process keep serving while it probes them), and temporary directories for on-disk CAs.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const BIN = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `sidecarless ...args`; `env` is added to (or, with `undefined` values, removed from) ours. */
export function runCli(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" (npm install does it)`);
  const merged: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: '1',
    SPIFFE_ENDPOINT_SOCKET: undefined,
    ...env,
  };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: 30_000, env: merged as NodeJS.ProcessEnv },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs with `--json` and parses standard output. */
export async function runCliJson<T = Record<string, unknown>>(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult & { json: T }> {
  const result = await runCli([...args, '--json'], env);
  let json: T;
  try {
    json = JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { ...result, json };
}

/** A temporary directory removed after the suite (call at describe level). */
export function useTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sidecarless-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
