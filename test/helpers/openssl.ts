import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** A temporary directory to run the real `openssl` CLI in. */
export interface OpensslDir {
  readonly dir: string;
  /** Runs `openssl` with `args` in the directory; returns stdout, throws with stderr on failure. */
  run(...args: string[]): string;
  /** Writes a file in the directory; returns its path. */
  write(name: string, data: string | Uint8Array): string;
  read(name: string): Buffer;
  readText(name: string): string;
  path(name: string): string;
}

/**
 * Creates a temporary directory for `openssl` and removes it after the enclosing suite
 * (call it at describe level, not inside a test).
 */
export function useOpensslDir(): OpensslDir {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-openssl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const path = (name: string) => join(dir, name);
  return {
    dir,
    path,
    run(...args) {
      try {
        return execFileSync('openssl', args, {
          cwd: dir,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        const { stderr, stdout } = err as { stderr?: string; stdout?: string };
        throw new Error(`openssl ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
      }
    },
    write(name, data) {
      writeFileSync(path(name), data);
      return path(name);
    },
    read: (name) => readFileSync(path(name)),
    readText: (name) => readFileSync(path(name), 'utf8'),
  };
}
