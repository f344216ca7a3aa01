// Consumer projects type-checked against the built package (dist/): what a user's tsc says of the
// published types, with @types/node 20, 22 and 24, under moduleResolution nodenext, node10 (through
// typesVersions) and bundler, without esModuleInterop.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The user's code: fetch through sidecarless, a server, and the testing kit. */
const CONSUMER = `
import { createLocalCa, createMtlsFetch, createMtlsServer, getPeer, type Peer } from 'sidecarless';
import { fakePeer } from 'sidecarless/testing';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const fetch = createMtlsFetch({
  identity: ca.identity('/ns/demo/sa/app-ui'),
  destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
});
export async function items(): Promise<unknown> {
  const res = await fetch('http://boards:8080/shareditems', { method: 'GET', headers: { accept: 'application/json' } });
  const status: number = res.status;
  return status === 200 ? res.json() : null;
}
export const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (req, res) => {
  const peer: Peer = getPeer(req);
  res.end(String(peer.id));
});
export const peer: Peer = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
`;

function project(types: string, compilerOptions: Record<string, unknown>, code = CONSUMER): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-types-'));
  dirs.push(dir);
  const modules = join(dir, 'node_modules');
  // The package as an install has it: its package.json and dist, nothing of the repo beside.
  mkdirSync(join(modules, 'sidecarless'), { recursive: true });
  symlinkSync(join(ROOT, 'package.json'), join(modules, 'sidecarless/package.json'));
  symlinkSync(join(ROOT, 'dist'), join(modules, 'sidecarless/dist'));
  symlinkSync(join(ROOT, 'node_modules/undici'), join(modules, 'undici'));
  mkdirSync(join(modules, '@types'));
  symlinkSync(join(ROOT, 'node_modules', types), join(modules, '@types/node'));
  // @types/node's own undici-types: nested when its version differs from the hoisted one.
  const nested = join(ROOT, 'node_modules', types, 'node_modules/undici-types');
  symlinkSync(
    existsSync(nested) ? nested : join(ROOT, 'node_modules/undici-types'),
    join(modules, 'undici-types'),
  );
  writeFileSync(join(dir, 'index.ts'), code);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        // Resolve through the fixture's node_modules, as a real install would.
        preserveSymlinks: true,
        ...compilerOptions,
      },
      files: ['index.ts'],
    }),
  );
  return dir;
}

function tsc(dir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', dir], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : 1, output: `${stdout}${stderr}` });
    });
  });
}

const built = existsSync(join(ROOT, 'dist/index.d.ts'));
// Types do not depend on the Node line that runs the tests: checked once, on Node 20.
const onceInCi = Number(process.versions.node.split('.')[0]) === 20;

describe.skipIf(!built || !onceInCi)('the published types (checked on the Node 20 run only)', () => {
  it.each([
    ['@types/node 20', '@types/node'],
    ['@types/node 22', '@types/node-22'],
    ['@types/node 24', '@types/node-24'],
  ])('%s, nodenext: fetch through createMtlsFetch type-checks without a cast', async (_name, types) => {
    const result = await tsc(
      project(types, { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' }),
    );
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('node10 resolution finds sidecarless/testing through typesVersions, without esModuleInterop', async () => {
    const result = await tsc(
      project('@types/node', {
        module: 'commonjs',
        moduleResolution: 'node10',
        target: 'es2022',
        esModuleInterop: false,
      }),
    );
    expect(result.output).toBe('');
  });

  it('bundler resolution', async () => {
    const result = await tsc(
      project('@types/node', { module: 'esnext', moduleResolution: 'bundler', target: 'es2022' }),
    );
    expect(result.output).toBe('');
  });

  it('control: a type error in the consumer is reported (the fixture really checks)', async () => {
    const result = await tsc(
      project(
        '@types/node',
        { module: 'nodenext', moduleResolution: 'nodenext' },
        `${CONSUMER}\nexport const n: number = server;\n`,
      ),
    );
    expect(result.output).toMatch(/TS2322/);
  });
});

it.runIf(!built)('the published types need a build', () => {
  if (process.env.CI) throw new Error('dist/ is missing: CI builds before the tests');
  console.warn('dist/ is missing: run "npm run build" to type-check the published types');
});
