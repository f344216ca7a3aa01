// What a server-only app loads: importing the package's main entry and serving mTLS with a STRICT
// server must not load undici, yaml, prom-client, OpenTelemetry, gRPC, the ASN.1 library (only
// issuing certificates needs it), the CLI or the testing kit, nor Node's own http2 and bundled
// undici (issue 14, "a lighter import"). Run on the built package, in a child
// process that records every module it resolves: ES modules through a module.register() resolve
// hook, CommonJS through require.cache, Node's built-ins through process.moduleLoadList.
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
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalCa } from '../../src/index.js';
import { moduleRecorder, RESOLVE_HOOKS } from '../helpers/module-recorder.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST = join(ROOT, 'dist');
const built = existsSync(join(DIST, 'index.js'));

/** Module paths a server-only app must not load, each with what it is. */
const FORBIDDEN: readonly (readonly [RegExp, string])[] = [
  [/\/node_modules\/undici\//, 'undici'],
  [/\/node_modules\/yaml\//, 'yaml'],
  [/\/node_modules\/prom-client\//, 'prom-client'],
  [/\/node_modules\/@opentelemetry\//, 'OpenTelemetry'],
  [/\/node_modules\/@grpc\//, 'gRPC'],
  [/\/node_modules\/protobufjs\//, 'protobufjs'],
  // The ASN.1 library and what it pulls in: certificates are read with src/x509/der.ts.
  [/\/node_modules\/@peculiar\//, '@peculiar'],
  [/\/node_modules\/asn1js\//, 'asn1js'],
  [/\/node_modules\/pvtsutils\//, 'pvtsutils'],
  [/\/node_modules\/pvutils\//, 'pvutils'],
  [/\/node_modules\/tslib\//, 'tslib'],
  [/\/node_modules\/(pkijs|reflect-metadata|tsyringe)\//, 'pkijs/reflect-metadata/tsyringe'],
];

/**
 * Node built-ins a server-only app must not load: http2 (only an HTTP/2 server needs it) and
 * Node's bundled undici (on Node 24 importing `node:http` as an ES module loads it, with zlib,
 * perf_hooks and web streams).
 */
const FORBIDDEN_BUILTINS: readonly (readonly [string, string])[] = [
  ['NativeModule http2', 'node:http2'],
  ['NativeModule internal/deps/undici/undici', "Node's bundled undici"],
];

function forbiddenBuiltinsIn(moduleLoadList: readonly string[]): string[] {
  return FORBIDDEN_BUILTINS.filter(([entry]) => moduleLoadList.includes(entry)).map(([, name]) => name);
}

/** Source folders of the package whose code a server-only app must not load. */
const FORBIDDEN_SOURCES = /(^|\/)src\/(cli|istio|testing)\//;

/**
 * The source files of a built file, from its source map (tsup writes one next to each file; the
 * tarball leaves them out, the build tree keeps them).
 */
function sourcesOf(file: string): string[] {
  const map = `${file}.map`;
  if (!existsSync(map)) throw new Error(`no source map for ${file}: run "npm run build"`);
  return (JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }).sources;
}

/** What among `modules` (file URLs or paths) a server-only app must not load, named. */
function forbiddenIn(modules: readonly string[]): string[] {
  const found = new Set<string>();
  for (const module of modules) {
    const path = module.startsWith('file:') ? fileURLToPath(module) : module;
    for (const [pattern, name] of FORBIDDEN) if (pattern.test(path)) found.add(name);
    if (path.startsWith(`${DIST}/`) && path.endsWith('.js')) {
      for (const source of sourcesOf(path)) {
        const m = FORBIDDEN_SOURCES.exec(source);
        if (m !== null) found.add(`src/${m[2]} (${path.slice(DIST.length + 1)})`);
      }
    }
  }
  return [...found].sort();
}

const RECORDER = moduleRecorder("'./hooks.mjs'");

// A server-only app: imports the package, serves one mTLS request with a STRICT server from a
// staticIdentity (material issued by the parent; the client is node:https, so only the server's
// side is the package's), then lists its modules. `control` adds what must load the forbidden
// modules, so the detection is shown to work.
const APP = `
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { once } from 'node:events';
const control = process.argv[2];
const m = JSON.parse(readFileSync('material.json', 'utf8'));
const sidecarless = await import('sidecarless');
const { createMtlsServer, getPeer, staticIdentity, X509Bundle } = sidecarless;
const bundles = X509Bundle.parse('cluster.local', m.ca);
const identity = staticIdentity({ certChain: m.serverCert, key: m.serverKey, bundles });
const server = createMtlsServer(
  { identity, mode: 'STRICT', ...(control === 'http2' ? { protocol: 'http2' } : {}) },
  (req, res) => res.end(String(getPeer(req).id)),
);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const body = await new Promise((resolve, reject) => {
  https
    .get(
      {
        host: '127.0.0.1',
        port: server.address().port,
        ca: m.ca,
        cert: m.clientCert,
        key: m.clientKey,
        checkServerIdentity: () => undefined,
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      },
    )
    .on('error', reject);
});
if (control === 'dispatcher') {
  const dispatcher = sidecarless.createMtlsDispatcher({
    identity: staticIdentity({ certChain: m.clientCert, key: m.clientKey, bundles }),
    destinations: { '*': { expect: '*' } },
  });
  await dispatcher.close();
}
if (control === 'local-ca') await sidecarless.createLocalCa({ trustDomain: 'cluster.local' }).close();
if (control === 'istio') await import('sidecarless/istio');
await new Promise((resolve) => server.close(resolve));
const esm = await globalThis.recordedModules();
const cjs = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ body, esm, cjs, builtins: process.moduleLoadList }));
`;

interface AppRun {
  readonly body: string;
  readonly esm: string[];
  readonly cjs: string[];
  readonly builtins: string[];
}

let dir = '';

beforeAll(() => {
  if (!built) return;
  dir = mkdtempSync(join(tmpdir(), 'sidecarless-import-'));
  mkdirSync(join(dir, 'node_modules/sidecarless'), { recursive: true });
  symlinkSync(join(ROOT, 'package.json'), join(dir, 'node_modules/sidecarless/package.json'));
  symlinkSync(DIST, join(dir, 'node_modules/sidecarless/dist'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules/sidecarless/node_modules'));
  writeFileSync(join(dir, 'hooks.mjs'), RESOLVE_HOOKS);
  writeFileSync(join(dir, 'recorder.mjs'), RECORDER);
  writeFileSync(join(dir, 'app.mjs'), APP);
  const ca = createLocalCa({ trustDomain: 'cluster.local' });
  const pem = (svid: ReturnType<typeof ca.issue>) => ({
    cert: svid.certChainPem(),
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  });
  const server = pem(ca.issue('/ns/demo/sa/boards'));
  const client = pem(ca.issue('/ns/demo/sa/app-ui'));
  writeFileSync(
    join(dir, 'material.json'),
    JSON.stringify({
      serverCert: server.cert,
      serverKey: server.key,
      clientCert: client.cert,
      clientKey: client.key,
      ca: ca.bundle().toPem(),
    }),
  );
  return ca.close();
});
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function runApp(control: 'none' | 'dispatcher' | 'local-ca' | 'http2' | 'istio'): Promise<AppRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(join(dir, 'recorder.mjs')).href, 'app.mjs', control],
      { cwd: dir, timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err !== null)
          reject(
            new Error(
              `app.mjs ${control} failed (${err.code ?? err.signal}): ${err.message}\n${stderr}\n${stdout}`,
            ),
          );
        else resolve(JSON.parse(stdout) as AppRun);
      },
    );
  });
}

describe.skipIf(!built && !process.env.CI)('importing the built package, for a server-only app', () => {
  it('a STRICT server serving mTLS loads no undici, yaml, prom-client, OpenTelemetry, gRPC, ASN.1, CLI or http2 module', async () => {
    const app = await runApp('none');
    expect(app.body).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
    // The recording saw the package itself, as an ES module, and Node's built-ins it uses.
    expect(app.esm).toContain(pathToFileURL(join(DIST, 'index.js')).href);
    expect(app.builtins).toContain('NativeModule tls');
    expect(forbiddenIn([...app.esm, ...app.cjs])).toEqual([]);
    expect(app.cjs.filter((path) => path.includes('/node_modules/'))).toEqual([]);
    expect(forbiddenBuiltinsIn(app.builtins)).toEqual([]);
  });

  it('controls: the first dispatcher loads undici, the local CA the ASN.1 library, an HTTP/2 server node:http2, sidecarless/istio yaml, and the CLI is recognised', async () => {
    const [dispatcher, localCa, h2, istio] = await Promise.all([
      runApp('dispatcher'),
      runApp('local-ca'),
      runApp('http2'),
      runApp('istio'),
    ]);
    expect(forbiddenIn([...dispatcher.esm, ...dispatcher.cjs])).toEqual(['undici']);
    expect(forbiddenIn([...localCa.esm, ...localCa.cjs])).toEqual(
      expect.arrayContaining(['@peculiar', 'asn1js', 'pvtsutils', 'tslib']),
    );
    expect(forbiddenBuiltinsIn(localCa.builtins)).toEqual([]);
    expect(h2.body).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
    expect(forbiddenBuiltinsIn(h2.builtins)).toEqual(['node:http2']);
    expect(forbiddenIn([...h2.esm, ...h2.cjs])).toEqual([]);
    expect(forbiddenIn([...istio.esm, ...istio.cjs])).toEqual(
      expect.arrayContaining(['yaml', expect.stringMatching(/^src\/istio /)]),
    );
    expect(forbiddenIn([join(DIST, 'cli/bin.js')])).toEqual([expect.stringMatching(/^src\/cli /)]);
  });

  it.runIf(Number(process.versions.node.split('.')[0]) >= 24)(
    "control: on Node 24, importing node:http as an ES module loads Node's bundled undici",
    async () => {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            "await import('node:http'); console.log(JSON.stringify(process.moduleLoadList))",
          ],
          (err, stdout) => (err === null ? resolve(stdout) : reject(err)),
        ),
      );
      expect(forbiddenBuiltinsIn(JSON.parse(out) as string[])).toContain("Node's bundled undici");
    },
  );
});
