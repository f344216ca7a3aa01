// The main entry loads neither prom-client nor OpenTelemetry, and neither does sidecarless/metrics
// (the caller passes them in). A child process imports the built entry under a module.register()
// resolve hook that reports every module URL it resolves; importing prom-client itself, last,
// shows that the hook does see it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

const HOOKS = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage(result.url);
  return result;
}`;

const CHILD = `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const seen = [];
const waiting = new Map();
port1.on('message', (url) => {
  seen.push(url);
  waiting.get(url)?.();
});
register('data:text/javascript,' + encodeURIComponent(process.env.HOOKS), import.meta.url, { data: { port: port2 }, transferList: [port2] });
// The hook's messages arrive after the imports: a marker module, imported last, is waited for.
async function settle(name) {
  const url = 'data:text/javascript,export const marker = "' + name + '";';
  const arrived = new Promise((resolve) => waiting.set(url, resolve));
  await import(url);
  await arrived;
  return seen.indexOf(url);
}
for (const entry of JSON.parse(process.env.ENTRIES)) await import(entry);
const loaded = seen.slice(0, await settle('entries'));
await import('prom-client');
const all = seen.slice(0, await settle('control'));
port1.close();
console.log(JSON.stringify({ loaded, control: all.some((u) => u.includes('/node_modules/prom-client/')) }));
`;

function child(entries: string[]): Promise<{ loaded: string[]; control: boolean }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', CHILD],
      {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        env: { ...process.env, HOOKS, ENTRIES: JSON.stringify(entries) },
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
