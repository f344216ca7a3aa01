// Real peers for the interop matrix: temporary files, free ports, processes started once per
// file and killed after it, the Go fixture built into a temporary directory, and SVIDs of every
// key type. Verification is never turned off on the peer's side: where a peer checks a host
// name, the server SVID carries the DNS SAN `localhost` as well as its URI SAN.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { generateKey, type KeyType, type LocalCa } from '../../src/identity/local-ca.js';
import type { IdentitySource } from '../../src/identity/source.js';
import { staticIdentity } from '../../src/index.js';
import { ext } from '../../src/x509/build.js';
import type { X509Svid } from '../../src/x509/svid.js';
import { makeLeaf, rootSigner } from '../helpers/certs.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** The key types of SVIDs, as the test CA names them. */
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'ed25519'];

/** A temporary directory removed after the file's tests; `write` returns the path. */
export function workDir(prefix: string): { dir: string; write(name: string, data: string): string } {
  const dir = mkdtempSync(join(tmpdir(), `sidecarless-interop-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    write(name, data) {
      const path = join(dir, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, data);
      return path;
    },
  };
}

export async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A started peer: its process and everything it printed so far. */
/** Waits until a running peer's output matches (a log line lands after the response it describes). */
export async function outputOf(peer: Peer, pattern: RegExp, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(peer.output()) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return peer.output();
}

export interface Peer {
  readonly child: ChildProcess;
  output(): string;
}

const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  running.delete(child);
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** Kills every peer this file started, with whatever they started. Runs after each file's tests. */
export function stopPeers(): void {
  for (const child of [...running]) killGroup(child);
}

// Registered when a test file imports this module, so it runs after that file's tests (an
// afterAll called from inside a beforeAll hook is never run). Exit: a worker that dies early.
afterAll(stopPeers);
process.on('exit', stopPeers);

/**
 * Starts `command` and waits (at most 10 s) until `port` accepts TCP connections; the process is
 * killed after the file's tests.
 */
export async function startPeer(command: string, args: readonly string[], port: number): Promise<Peer> {
  // Its own process group, killed whole: a launcher (a pyenv shim, a shell) may run the peer as its child.
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
  const kill = () => killGroup(child);
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      kill();
      throw new Error(`${command} did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { child, output: () => output };
}

/** Runs a command to its end (bounded by `timeout`); never rejects on a non-zero exit. */
export function runPeer(
  command: string,
  args: readonly string[],
  options: { input?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { timeout: options.timeout ?? 8_000, env: options.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr, output: `${stdout}${stderr}` });
      },
    );
    // A peer that exits before reading its input (nginx refusing, curl failing) closes the pipe:
    // EPIPE on our write is not a test failure, the exit code and output tell what happened.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

/**
 * Builds test/interop/fixtures/peer.go with `go build` into `dir` (standard library only); the
 * build cache lives in a temporary directory too. Returns the binary's path.
 */
export async function buildGoPeer(dir: string): Promise<string> {
  const out = join(dir, 'go-peer');
  const env = {
    ...process.env,
    GOCACHE: join(tmpdir(), 'sidecarless-interop-gocache'),
    GOPATH: join(dir, 'gopath'),
    GO111MODULE: 'off',
    GOFLAGS: '',
  };
  const built = await runPeer('go', ['build', '-o', out, join(FIXTURES, 'peer.go')], {
    env,
    timeout: 120_000,
  });
  if (built.code !== 0) throw new Error(`go build failed:\n${built.output}`);
  return out;
}

/**
 * PEM files of an SVID: `<name>.pem` (the chain, leaf first), `<name>.key`, `<name>-both.pem`
 * (chain then key, for haproxy) and `<name>-chain.pem` (the intermediates only, for openssl).
 */
export function writeSvid(
  files: ReturnType<typeof workDir>,
  name: string,
  svid: X509Svid,
): { cert: string; key: string; both: string; chain: string } {
  const chain = svid.certChainPem();
  const key = svid.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    cert: files.write(`${name}.pem`, chain),
    key: files.write(`${name}.key`, key),
    both: files.write(`${name}-both.pem`, chain + key),
    chain: files.write(`${name}-chain.pem`, svid.intermediates.map((c) => c.toString()).join('')),
  };
}

/**
 * A server identity whose SVID also carries the DNS SAN `localhost`, so that peers which check a
 * host name (curl, nginx, Go, Python) verify it without any check turned off. Signed by the CA's
 * root (a `createLocalCa` CA: its root key is reachable); the SVID profile allows DNS SANs
 * beside the one URI SAN.
 */
export function localhostIdentity(
  ca: LocalCa,
  path: string,
  keyType: KeyType = 'ec-p256',
): {
  identity: IdentitySource;
  chainPem: string;
  keyPem: string;
} {
  const id = `spiffe://${ca.trustDomain.name}${path}`;
  const keys = generateKey(keyType);
  const leaf = makeLeaf(rootSigner(ca), {
    keys,
    san: ext.subjectAltName({ uris: [id], dns: ['localhost'] }),
  });
  const chainPem = leaf.x509.toString();
  const keyPem = keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    identity: staticIdentity({ certChain: chainPem, key: keyPem, bundles: ca.bundles() }),
    chainPem,
    keyPem,
  };
}
