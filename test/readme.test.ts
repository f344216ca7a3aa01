import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it, vi } from 'vitest';

// The README's quick start must work as written: run it, with 'sidecarless' pointing at src.
it('the README quick start runs and prints what its comments say', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(code).toBeDefined();
  const src = fileURLToPath(new URL('../src/index.ts', import.meta.url));
  const dir = fileURLToPath(new URL('../temp/readme/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}quick-start.ts`;
  writeFileSync(file, (code as string).replace("from 'sidecarless'", `from '${src}'`));
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file);
    const printed = log.mock.calls.map((args) => args.join(' '));
    const promised = [...(code as string).matchAll(/\/\/ (verified spiffe:\S+|ERR_[A-Z_]+)$/gm)].map(
      (m) => m[1],
    );
    expect(promised).toEqual(['verified spiffe://cluster.local/ns/demo/sa/app-ui', 'ERR_SVID_UNTRUSTED']);
    expect(printed).toEqual(promised);
  } finally {
    log.mockRestore();
  }
});
