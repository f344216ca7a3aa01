// What a server-only app loads: importing the package's main entry and serving mTLS with a STRICT
// server must not load undici, yaml, prom-client, OpenTelemetry, gRPC or the CLI (issue 14, "a
// lighter import"). Run on the built package, in a child process that records every module it
// resolves: ES modules through a module.register() resolve hook, CommonJS through require.cache.
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
];

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

// The hooks thread tells the main thread every URL it resolved, in order; a last import of a
// marker URL tells the child that every earlier one has arrived.
const HOOKS = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage(result.url);
  return result;
}
`;

const RECORDER = `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const resolved = [];
const waiting = new Map();
port1.on('message', (url) => {
  resolved.push(url);
  waiting.get(url)?.();
});
port1.unref();
register('./hooks.mjs', import.meta.url, { data: { port: port2 }, transferList: [port2] });
globalThis.recordedModules = async () => {
  const marker = 'data:text/javascript,export%20default%201;//' + Math.random();
  const arrived = new Promise((resolve) => waiting.set(marker, resolve));
  // Held open until the marker's message arrives (an unref'd port lets the process end first).
  port1.ref();
  await import(marker);
  await arrived;
  port1.unref();
  return resolved.filter((url) => url !== marker);
};
`;

// A server-only app: imports the package, serves one mTLS request with a STRICT server (the
// client is node:https, so only the server's side is the package's), then lists its modules.
// `control` adds what must load the forbidden modules, so the detection is shown to work.
const APP = `
import { createRequire } from 'node:module';
import https from 'node:https';
import { once } from 'node:events';
const control = process.argv[2];
const sidecarless = await import('sidecarless');
const { createLocalCa, createMtlsServer, getPeer } = sidecarless;
const ca = createLocalCa({ trustDomain: 'cluster.local' });
const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards'), mode: 'STRICT' }, (req, res) =>
  res.end(String(getPeer(req).id)),
);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const client = ca.issue('/ns/demo/sa/app-ui');
const body = await new Promise((resolve, reject) => {
  https
    .get(
      {
        host: '127.0.0.1',
        port: server.address().port,
        ca: ca.bundle().toPem(),
        cert: client.certChainPem(),
        key: client.privateKey.export({ format: 'pem', type: 'pkcs8' }),
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
  const dispatcher = sidecarless.createMtlsDispatcher({ identity: ca.identity('/ns/demo/sa/app-ui'), destinations: { '*': { expect: '*' } } });
  await dispatcher.close();
}
if (control === 'istio') await import('sidecarless/istio');
await new Promise((resolve) => server.close(resolve));
await ca.close();
const esm = await globalThis.recordedModules();
const cjs = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ body, esm, cjs }));
`;

interface AppRun {
  readonly body: string;
  readonly esm: string[];
  readonly cjs: string[];
}

let dir = '';

beforeAll(() => {
  if (!built) return;
  dir = mkdtempSync(join(tmpdir(), 'sidecarless-import-'));
  mkdirSync(join(dir, 'node_modules/sidecarless'), { recursive: true });
  symlinkSync(join(ROOT, 'package.json'), join(dir, 'node_modules/sidecarless/package.json'));
  symlinkSync(DIST, join(dir, 'node_modules/sidecarless/dist'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules/sidecarless/node_modules'));
  writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
  writeFileSync(join(dir, 'recorder.mjs'), RECORDER);
  writeFileSync(join(dir, 'app.mjs'), APP);
});
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function runApp(control: 'none' | 'dispatcher' | 'istio'): Promise<AppRun> {
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
  it('a STRICT server serving mTLS loads no undici, yaml, prom-client, OpenTelemetry, gRPC or CLI module', async () => {
    const app = await runApp('none');
    expect(app.body).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
    // The recording saw the package itself: its entry as an ES module, its X.509 parser as CommonJS.
    expect(app.esm).toContain(pathToFileURL(join(DIST, 'index.js')).href);
    expect(app.cjs.some((path) => path.includes('/node_modules/@peculiar/asn1-x509/'))).toBe(true);
    expect(forbiddenIn([...app.esm, ...app.cjs])).toEqual([]);
  });

  it('controls: the first dispatcher loads undici, sidecarless/istio loads yaml, and the CLI is recognised', async () => {
    const [dispatcher, istio] = await Promise.all([runApp('dispatcher'), runApp('istio')]);
    expect(forbiddenIn([...dispatcher.esm, ...dispatcher.cjs])).toEqual(['undici']);
    expect(forbiddenIn([...istio.esm, ...istio.cjs])).toEqual(
      expect.arrayContaining(['yaml', expect.stringMatching(/^src\/istio /)]),
    );
    expect(forbiddenIn([join(DIST, 'cli/bin.js')])).toEqual([expect.stringMatching(/^src\/cli /)]);
  });
});
