// The main entry point must not load @grpc/grpc-js at import: only sidecarless/grpc does (and the
// Workload API client, lazily, when it connects). Checked on the built package, in a fresh process.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const built = existsSync(join(ROOT, 'dist/grpc/index.js'));

function loadedAfterImport(entry: string): Promise<{ grpc: boolean; error: string }> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(join(ROOT, entry))});
    const cache = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify({ grpc: cache.some((k) => k.includes('/@grpc/grpc-js/')) }));
  `;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT }, (err, stdout, stderr) =>
      resolve({ ...(JSON.parse(stdout || '{"grpc":null}') as { grpc: boolean }), error: err ? stderr : '' }),
    );
  });
}

describe.skipIf(!built)('entry points (built package)', () => {
  it('importing sidecarless loads no grpc-js', async () => {
    expect(await loadedAfterImport('dist/index.js')).toEqual({ grpc: false, error: '' });
  });

  it('control: importing sidecarless/grpc does load it (the probe sees it)', async () => {
    expect(await loadedAfterImport('dist/grpc/index.js')).toEqual({ grpc: true, error: '' });
  });
});
