// The main entry loads neither prom-client nor OpenTelemetry, and neither does sidecarless/metrics
// (the caller passes them in). A child process imports the built entry under a module.register()
// resolve hook that reports every module URL it resolves; importing prom-client itself, last,
// shows that the hook does see it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { moduleRecorder, RESOLVE_HOOKS } from '../helpers/module-recorder.js';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

const CHILD = `
${moduleRecorder("'data:text/javascript,' + encodeURIComponent(process.env.HOOKS)")}
for (const entry of JSON.parse(process.env.ENTRIES)) await import(entry);
const loaded = await globalThis.recordedModules();
await import('prom-client');
const all = await globalThis.recordedModules();
console.log(JSON.stringify({ loaded, control: all.some((u) => u.includes('/node_modules/prom-client/')) }));
`;

function child(entries: string[]): Promise<{ loaded: string[]; control: boolean }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', CHILD],
      {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        env: { ...process.env, HOOKS: RESOLVE_HOOKS, ENTRIES: JSON.stringify(entries) },
        timeout: 30_000,
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').at(-1) as string));
      },
    );
  });
}

describe('optional peer dependencies', () => {
  it.each([['index.js'], ['metrics/index.js']])(
    'dist/%s loads neither prom-client nor OpenTelemetry',
    async (file) => {
      const entry = `${DIST}${file}`;
      if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build"`);
      const { loaded, control } = await child([pathToFileURL(entry).href]);
      expect(loaded.some((u) => u.includes('/dist/'))).toBe(true);
      expect(loaded.filter((u) => /prom-client|@opentelemetry/.test(u))).toEqual([]);
      expect(control).toBe(true);
    },
  );
});
