import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect, it, vi } from 'vitest';

// The README's runnable blocks must work as written: each runs, with 'sidecarless' pointing at src,
// and prints exactly what its `// …` comments after console.log say.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const src = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const dir = fileURLToPath(new URL('../temp/readme/', import.meta.url));

function block(heading: string): string {
  const section = readme.slice(readme.indexOf(`\n## ${heading}\n`));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) throw new Error(`README: no ts block under "## ${heading}"`);
  return code;
}

/** What each `console.log(...); // <text>` line promises. */
function promised(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\); \/\/ (.+)$/gm)].map((m) => m[1] as string);
}

async function runBlock(name: string, code: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${name}.ts`;
  writeFileSync(file, code.replaceAll("from 'sidecarless'", `from '${src}'`));
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file);
    return log.mock.calls.map((args) => args.join(' '));
  } finally {
    log.mockRestore();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

it('the quick start runs as written: a STRICT server, fetch over mTLS, one rule', async () => {
  // The block listens on 8443; the test moves it to a free port so parallel runs do not collide.
  const code = block('Quick start').replaceAll('8443', String(await freePort()));
  const expected = promised(code);
  expect(expected).toEqual([
    '200 hello spiffe://cluster.local/ns/demo/sa/app-ui',
    '403 {"error":"forbidden","reason":"peer_not_allowed"}',
  ]);
  expect(await runBlock('quick-start', code)).toEqual(expected);
});

it('the verification example runs and prints what its comments say', async () => {
  const code = block('Verifying a peer');
  const expected = promised(code);
  expect(expected).toEqual(['verified spiffe://cluster.local/ns/demo/sa/app-ui', 'ERR_SVID_UNTRUSTED']);
  expect(await runBlock('verifying', code)).toEqual(expected);
});
