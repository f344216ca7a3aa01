// `sidecarless check` as a spawned process against real servers in the test process: STRICT,
// PERMISSIVE and DISABLE, with identities from a CA that `ca init` wrote on disk (the server on
// fileIdentity, check on --cert-dir) and from createLocalCa served over a fake Workload API.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsServer,
  fileIdentity,
  type IdentitySource,
  type MtlsMode,
} from '../../src/index.js';
import { createFakeWorkloadApi } from '../../src/testing/index.js';
import { runCli, runCliJson, useTempDir } from '../helpers/cli.js';
import { listen } from '../helpers/server.js';

const TD = 'cluster.local';
const BOARDS = `spiffe://${TD}/ns/demo/sa/boards`;
const APP_UI = `spiffe://${TD}/ns/demo/sa/app-ui`;

interface CheckReport {
  ok: boolean;
  mode: string;
  reason: string;
  listener: Record<string, string>;
  probes: Record<
    string,
    { outcome: string; status?: number; how?: string; code?: string; handshake?: boolean }
  >;
  server: {
    presented: boolean;
    verified: boolean;
    id: string | null;
    error?: { code: string };
    chain: unknown[];
  };
  identity: { id: string; accepted: boolean; from: string } | null;
  rbac: string;
}

const sources: IdentitySource[] = [];
afterAll(async () => {
  for (const s of sources) await s.close();
});

async function boards(mode: MtlsMode, identity: IdentitySource, authorize?: Record<string, string>) {
  sources.push(identity);
  const server = createMtlsServer(
    { identity, mode, ...(authorize === undefined ? {} : { authorize }) },
    (req, res) => {
      res.end(`hello from ${req.url}`);
    },
  );
  const { port } = await listen(server);
  return port;
}

describe('sidecarless check against servers on a CA written by ca init', () => {
  const tmp = useTempDir('check');
  const ca = join(tmp, 'ca');
  const boardsDir = join(tmp, 'boards');
  const appUiDir = join(tmp, 'app-ui');
  beforeAll(async () => {
    for (const args of [
      ['ca', 'init', '--dir', ca, '--intermediate'],
      ['ca', 'issue', '--dir', ca, '--id', BOARDS, '--out', boardsDir],
      ['ca', 'issue', '--dir', ca, '--id', APP_UI, '--out', appUiDir],
    ]) {
      const r = await runCli(args);
      if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    }
  });
  const serverIdentity = () => fileIdentity({ preset: 'istio', dir: boardsDir, watch: false });

  const modes: [MtlsMode, { plaintext: string; tls: string; cell: string }][] = [
    ['STRICT', { plaintext: 'refused', tls: 'refused', cell: 'yes (STRICT)' }],
    ['PERMISSIVE', { plaintext: 'answered', tls: 'answered', cell: 'yes (PERMISSIVE)' }],
    ['DISABLE', { plaintext: 'answered', tls: 'refused', cell: 'no (DISABLE)' }],
  ];
  for (const [mode, want] of modes) {
    it(`${mode}: infers the mode, verifies the server, and says whether our identity is accepted`, async () => {
      const port = await boards(mode, serverIdentity());
      const { code, json } = await runCliJson<CheckReport>([
        'check',
        `127.0.0.1:${port}`,
        '--cert-dir',
        appUiDir,
      ]);
      expect(json.mode).toBe(mode);
      expect(code).toBe(0);
      expect(json.ok).toBe(true);
      expect(json.probes.plaintext?.outcome).toBe(want.plaintext);
      expect(json.probes.tls?.outcome).toBe(want.tls);
      expect(json.listener.LISTENER).toBe(`127.0.0.1_${port}`);
      expect(json.listener['mTLS (MODE)']).toBe(want.cell);
      expect(json.listener.RBAC).toBe('unknown (see describe)');
      expect(json.identity).toMatchObject({ id: APP_UI, accepted: mode !== 'DISABLE' });
      if (mode === 'DISABLE') {
        expect(json.server.presented).toBe(false);
        expect(json.listener.CERTIFICATE).toBe('none (no TLS)');
      } else {
        expect(json.server).toMatchObject({ presented: true, verified: true, id: BOARDS });
        expect(json.server.chain).toHaveLength(2);
        expect(json.listener.CERTIFICATE).toMatch(
          new RegExp(`^${BOARDS} \\(expires in (\\d+d\\d+h|\\d+h\\d+m)\\)$`),
        );
        expect(json.probes.mtls).toMatchObject({ outcome: 'answered', status: 200 });
      }
    });
  }

  it('STRICT: a plaintext reset and a TLS certificate-required alert, shown as the listener table', async () => {
    const port = await boards('STRICT', serverIdentity());
    const { code, stdout } = await runCli([
      'check',
      `127.0.0.1:${port}`,
      '--path',
      '/shareditems',
      '--cert-dir',
      appUiDir,
    ]);
    expect(code).toBe(0);
    const [header, row] = stdout.split('\n');
    expect(header).toMatch(/^LISTENER +CERTIFICATE +mTLS \(MODE\) +RBAC$/);
    expect(row).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1_${port} +${BOARDS} \\(expires in \\S+\\) +yes \\(STRICT\\) +unknown \\(see describe\\)$`,
      ),
    );
    expect(stdout).toMatch(/^probes on \/shareditems:$/m);
    expect(stdout).toMatch(/plaintext HTTP +refused: connection reset by peer/);
    expect(stdout).toMatch(
      /TLS without client cert +refused: TLS alert certificate required \(handshake completed, TLSv1\.3\)/,
    );
    expect(stdout).toMatch(/mTLS with our identity +answered: HTTP 200/);
    expect(stdout).toContain(`server: ${BOARDS}, verified against our bundle`);
    expect(stdout).toContain(`our identity ${APP_UI}: accepted (HTTP 200)`);
    expect(stdout).toMatch(/^RBAC: unknown \(see describe\)/m);
  });

  it('without an identity: skips mTLS and shows the server certificate as UNVERIFIED', async () => {
    const port = await boards('STRICT', serverIdentity());
    const { code, json } = await runCliJson<CheckReport>(['check', `localhost:${port}`]);
    expect(code).toBe(0);
    expect(json.mode).toBe('STRICT');
    expect(json.probes.mtls?.outcome).toBe('skipped');
    expect(json.server).toMatchObject({ presented: true, verified: false, id: BOARDS });
    expect(json.listener.CERTIFICATE).toMatch(/ UNVERIFIED \(expires in/);
    expect(json.identity).toBeNull();
    const text = await runCli(['check', `127.0.0.1:${port}`]);
    expect(text.stdout).toContain(`server: claims ${BOARDS}, UNVERIFIED: no identity given`);
    expect(text.stdout).toMatch(/mTLS with our identity +skipped: no identity/);
  });

  it('the server is refused when its chain does not verify against our bundle (another CA, same trust domain)', async () => {
    const impostorCa = createLocalCa({ trustDomain: TD });
    const port = await boards('STRICT', impostorCa.identity('/ns/demo/sa/boards'));
    const { code, json } = await runCliJson<CheckReport>([
      'check',
      `127.0.0.1:${port}`,
      '--cert-dir',
      appUiDir,
    ]);
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(json.server).toMatchObject({ presented: true, verified: false, id: BOARDS });
    expect(json.server.error?.code).toBe('ERR_SVID_UNTRUSTED');
    expect(json.probes.mtls).toMatchObject({ outcome: 'refused', code: 'ERR_SVID_UNTRUSTED' });
    expect(json.listener.CERTIFICATE).toContain('UNVERIFIED');
    await impostorCa.close();
  });

  it('our identity refused: we trust the server, the server does not trust our CA', async () => {
    // A server of another CA; our cert-dir trusts both CAs, and holds an SVID of ours only.
    const serverCa = createLocalCa({ trustDomain: TD });
    const port = await boards('STRICT', serverCa.identity('/ns/demo/sa/boards'));
    const dir = join(tmp, 'trusts-both');
    await runCli(['ca', 'issue', '--dir', ca, '--id', APP_UI, '--out', dir]);
    writeFileSync(
      join(dir, 'root-cert.pem'),
      readFileSync(join(dir, 'root-cert.pem'), 'utf8') + serverCa.bundle().toPem(),
    );
    const { code, json } = await runCliJson<CheckReport>(['check', `127.0.0.1:${port}`, '--cert-dir', dir]);
    expect(json.server).toMatchObject({ verified: true, id: BOARDS });
    expect(json.mode).toBe('STRICT');
    expect(json.reason).toMatch(/ours was refused/);
    expect(json.identity).toMatchObject({ id: APP_UI, accepted: false });
    expect(json.probes.mtls).toMatchObject({ outcome: 'refused', code: 'ERR_REFUSED_BY_SERVER' });
    expect(code).toBe(1);
    await serverCa.close();
  });

  it('--expect: a server that proves another ID is refused (secure naming)', async () => {
    const port = await boards('STRICT', serverIdentity());
    const { code, json } = await runCliJson<CheckReport>([
      'check',
      `127.0.0.1:${port}`,
      '--cert-dir',
      appUiDir,
      '--expect',
      `spiffe://${TD}/ns/demo/sa/other`,
    ]);
    expect(code).toBe(1);
    expect(json.probes.mtls).toMatchObject({ outcome: 'refused', code: 'ERR_PEER_ID_MISMATCH' });
    const control = await runCliJson<CheckReport>([
      'check',
      `127.0.0.1:${port}`,
      '--cert-dir',
      appUiDir,
      '--expect',
      BOARDS,
    ]);
    expect(control.code).toBe(0);
  });

  it('an authorization refusal (403) is still an accepted identity; RBAC stays unknown', async () => {
    const port = await boards('STRICT', serverIdentity(), { '*': `spiffe://${TD}/ns/ops/sa/*` });
    const { code, json } = await runCliJson<CheckReport>([
      'check',
      `127.0.0.1:${port}`,
      '--cert-dir',
      appUiDir,
    ]);
    expect(code).toBe(0);
    expect(json.probes.mtls).toMatchObject({ outcome: 'answered', status: 403 });
    expect(json.identity?.accepted).toBe(true);
    expect(json.rbac).toBe('unknown');
  });

  it('nothing that answers: UNKNOWN, exit 1', async () => {
    // A port that accepts and closes at once: neither plaintext nor TLS.
    const closer = createNetServer((socket) => socket.destroy());
    closer.listen(0, '127.0.0.1');
    await once(closer, 'listening');
    const port = (closer.address() as { port: number }).port;
    const { code, json } = await runCliJson<CheckReport>(['check', `127.0.0.1:${port}`, '--timeout', '2s']);
    expect(code).toBe(1);
    expect(json.mode).toBe('UNKNOWN');
    expect(json.listener['mTLS (MODE)']).toBe('unknown (UNKNOWN)');
    closer.close();
  });

  it('an unreadable --cert-dir fails with the library code, exit 1', async () => {
    const { code, stderr } = await runCli(['check', '127.0.0.1:1', '--cert-dir', join(tmp, 'absent')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/ERR_\w+: .*absent/);
  });

  it('usage errors name the argument or flag and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['check'], /missing <host:port>/],
      [['check', 'boards'], /must be host:port/],
      [['check', '::1:8080'], /must be host:port/],
      [['check', '127.0.0.1:70000'], /the port must be 1 to 65535/],
      [['check', '127.0.0.1:80', '--path', 'x'], /--path must start with "\/"/],
      [['check', '127.0.0.1:80', '--path', '/a b'], /--path must start with/],
      [['check', '127.0.0.1:80', '--cert-dir', 'a', '--workload-api', 'unix:///x'], /give one/],
      [['check', '127.0.0.1:80', '--timeout', 'soon'], /--timeout must be a duration/],
      [['check', '127.0.0.1:80', '--expect', 'not an id'], /--expect: /],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.stderr).toMatch(message);
    }
  });

  it('--help documents the probes and the exit codes', async () => {
    const { code, stdout } = await runCli(['check', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Usage: sidecarless check <host:port>/);
    expect(stdout).toMatch(/SPIFFE_ENDPOINT_SOCKET/);
    expect(stdout).toMatch(/Exit codes: 0 .*\n.*1 no mode could be inferred/);
  });
});

describe('sidecarless check with a Workload API identity', () => {
  const ca = createLocalCa({ trustDomain: TD });
  let api: Awaited<ReturnType<typeof createFakeWorkloadApi>>;
  beforeAll(async () => {
    api = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/app-ui'] });
  });
  afterAll(async () => {
    await api.close();
    await ca.close();
  });

  it('takes SPIFFE_ENDPOINT_SOCKET by default, and --workload-api when given', async () => {
    const port = await boards('PERMISSIVE', ca.identity('/ns/demo/sa/boards'));
    const byEnv = await runCliJson<CheckReport>(['check', `127.0.0.1:${port}`], {
      SPIFFE_ENDPOINT_SOCKET: api.address,
    });
    expect(byEnv.code).toBe(0);
    expect(byEnv.json.mode).toBe('PERMISSIVE');
    expect(byEnv.json.identity).toMatchObject({
      id: APP_UI,
      accepted: true,
      from: `SPIFFE_ENDPOINT_SOCKET ${api.address}`,
    });
    expect(byEnv.json.server).toMatchObject({ verified: true, id: BOARDS });
    const byFlag = await runCliJson<CheckReport>([
      'check',
      `127.0.0.1:${port}`,
      '--workload-api',
      api.address,
    ]);
    expect(byFlag.code).toBe(0);
    expect(byFlag.json.identity?.from).toBe(`--workload-api ${api.address}`);
  });
});
