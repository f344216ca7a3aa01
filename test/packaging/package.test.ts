// The package as users get it: one ESM build that require() and import share, a small tarball
// without sources, and an install from that tarball that runs (the bin included).
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const built = existsSync(join(ROOT, 'dist/index.js'));
const node20 = Number(process.versions.node.split('.')[0]) === 20;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-pkg-'));
  dirs.push(dir);
  return dir;
}

function run(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

describe.skipIf(!built)('the built package', () => {
  it('require() and import load one copy: an identity made through require serves a server made through import', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'node_modules/sidecarless'), { recursive: true });
    symlinkSync(join(ROOT, 'package.json'), join(dir, 'node_modules/sidecarless/package.json'));
    symlinkSync(join(ROOT, 'dist'), join(dir, 'node_modules/sidecarless/dist'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules/sidecarless/node_modules'));
    writeFileSync(
      join(dir, 'mixed.mjs'),
      `
      import { createRequire } from 'node:module';
      import https from 'node:https';
      import * as esm from 'sidecarless';
      const cjs = createRequire(import.meta.url)('sidecarless');
      const ca = cjs.createLocalCa({ trustDomain: 'cluster.local' });
      const server = esm.createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (req, res) => res.end(String(esm.getPeer(req).id)));
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const ui = ca.issue('/ns/demo/sa/app-ui');
      const body = await new Promise((resolve, reject) => https.get({ host: '127.0.0.1', port: server.address().port, ca: ca.bundle().toPem(),
        cert: ui.certChainPem(), key: ui.privateKey.export({ format: 'pem', type: 'pkcs8' }), checkServerIdentity: () => undefined },
        (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(b)); }).on('error', reject));
      console.log(JSON.stringify({ same: cjs.createMtlsServer === esm.createMtlsServer, errorClass: cjs.SidecarlessError === esm.SidecarlessError, body }));
      server.close();
      await ca.close();
      `,
    );
    const { code, stdout, stderr } = await run(process.execPath, ['mixed.mjs'], dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      same: true,
      errorClass: true,
      body: 'spiffe://cluster.local/ns/demo/sa/app-ui',
    });
  });

  it.runIf(node20)(
    'packs at most 300 kB, with dist, README and docs, and no sources (checked on Node 20)',
    async () => {
      const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
      const [pack] = JSON.parse(stdout) as [{ size: number; files: { path: string }[] }];
      expect(pack.size).toBeLessThanOrEqual(300_000);
      const files = pack.files.map((f) => f.path);
      expect(files).toEqual(
        expect.arrayContaining([
          'package.json',
          'README.md',
          'dist/index.js',
          'dist/index.d.ts',
          'dist/cli/bin.js',
          'docs/errors.md',
        ]),
      );
      expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
      // README's screenshots stay in the repository: `files` names docs by page, never docs/*.png.
      expect(files.filter((f) => f.endsWith('.png'))).toEqual([]);
      for (const map of files.filter((f) => f.endsWith('.map'))) {
        expect(JSON.parse(readFileSync(join(ROOT, map), 'utf8')).sourcesContent, map).toBeUndefined();
      }
    },
  );

  it.runIf(node20)(
    'installs from its tarball into a new project: import works and the bin runs (checked on Node 20)',
    async () => {
      const dir = temp();
      const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
      expect(packed.code).toBe(0);
      const tarball = packed.stdout.trim().split('\n').at(-1) as string;
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }),
      );
      const install = await run(
        'npm',
        ['install', join(dir, tarball), '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
        dir,
      );
      expect(install.stderr).not.toMatch(/ERR!/);
      writeFileSync(
        join(dir, 'use.mjs'),
        "import { SpiffeId } from 'sidecarless';\nconsole.log(SpiffeId.parse('spiffe://cluster.local/ns/demo/sa/boards').path);\n",
      );
      expect((await run(process.execPath, ['use.mjs'], dir)).stdout.trim()).toBe('/ns/demo/sa/boards');
      const bin = await run(join(dir, 'node_modules/.bin/sidecarless'), ['--help'], dir);
      expect(bin.stdout).toMatch(/^sidecarless — /);
    },
  );
});

it.runIf(!built)('the package tests need a build', () => {
  if (process.env.CI) throw new Error('dist/ is missing: CI builds before the tests');
  console.warn('dist/ is missing: run "npm run build" to test the package');
});
