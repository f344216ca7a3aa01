// `sidecarless ca init|issue|bundle` as spawned processes: the files on disk, their modes, and
// what the library makes of them (fileIdentity loads the SVID, verifyPeerChain accepts it against
// the bundle); plug-in roots and intermediates made by openssl; every refusal names its flag or file.
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fileIdentity, verifyPeerChain, X509Bundle } from '../../src/index.js';
import { runCli, runCliJson, useTempDir } from '../helpers/cli.js';
import { makePluginCas, type PluginCas } from '../helpers/plugin-ca.js';

const TD = 'cluster.local';
const BOARDS = `spiffe://${TD}/ns/demo/sa/boards`;
const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

async function loadIssued(dir: string) {
  const identity = fileIdentity({ preset: 'istio', dir, watch: false });
  try {
    return await identity.ready({ timeout: 5_000 });
  } finally {
    await identity.close();
  }
}

describe('sidecarless ca init + issue + bundle (generated root)', () => {
  const tmp = useTempDir('ca');

  it('writes the cacerts layout with 0600 keys, and issues SVIDs fileIdentity loads', async () => {
    const dir = join(tmp, 'plain');
    const init = await runCliJson<{
      ok: boolean;
      trustDomain: string;
      intermediate: boolean;
      files: { file: string; mode: string }[];
    }>(['ca', 'init', '--dir', dir, '--trust-domain', 'example.org', '--ttl', '2h']);
    expect(init.code).toBe(0);
    expect(init.json).toMatchObject({ ok: true, trustDomain: 'example.org', intermediate: false });
    expect(readdirSync(dir).sort()).toEqual([
      'ca-cert.pem',
      'ca-key.pem',
      'ca.json',
      'cert-chain.pem',
      'root-cert.pem',
    ]);
    expect(mode(dir)).toBe('700');
    expect(mode(join(dir, 'ca-key.pem'))).toBe('600');
    expect(mode(join(dir, 'root-cert.pem'))).toBe('644');
    // No intermediate: the root signs, as Istio's self-signed cacerts (ca-cert.pem is the root).
    expect(readFileSync(join(dir, 'ca-cert.pem'), 'utf8')).toBe(
      readFileSync(join(dir, 'root-cert.pem'), 'utf8'),
    );

    const out = join(tmp, 'plain-web');
    const before = Date.now();
    const issue = await runCliJson<{ id: string; notAfter: string; chain: number }>([
      'ca',
      'issue',
      '--dir',
      dir,
      '--id',
      'spiffe://example.org/web',
      '--out',
      out,
    ]);
    expect(issue.code).toBe(0);
    expect(issue.json).toMatchObject({ id: 'spiffe://example.org/web', chain: 1 });
    // The CA's --ttl 2h is the default lifetime.
    const lifetime = Date.parse(issue.json.notAfter) - before;
    expect(lifetime).toBeGreaterThan(2 * 3_600_000 - 5_000);
    expect(lifetime).toBeLessThan(2 * 3_600_000 + 5_000);
    expect(readdirSync(out).sort()).toEqual(['cert-chain.pem', 'key.pem', 'root-cert.pem']);
    expect(mode(join(out, 'key.pem'))).toBe('600');
    const identity = await loadIssued(out);
    expect(identity.svid.id.toString()).toBe('spiffe://example.org/web');

    const pem = await runCli(['ca', 'bundle', '--dir', dir]);
    expect(pem.code).toBe(0);
    const bundle = X509Bundle.parse('example.org', pem.stdout);
    expect(verifyPeerChain(identity.svid.certificates, bundle).id.toString()).toBe(
      'spiffe://example.org/web',
    );
    const spiffe = await runCli(['ca', 'bundle', '--dir', dir, '--format', 'spiffe']);
    expect(spiffe.code).toBe(0);
    expect(X509Bundle.parse('example.org', spiffe.stdout, { format: 'jwks' }).equals(bundle)).toBe(true);
    const json = await runCliJson<{ trustDomain: string; authorities: unknown[] }>([
      'ca',
      'bundle',
      '--dir',
      dir,
    ]);
    expect(json.json.trustDomain).toBe('example.org');
    expect(json.json.authorities).toHaveLength(1);
  });

  it('--intermediate: SVIDs carry the intermediate, the root key is kept 0600, --ttl per SVID', async () => {
    const dir = join(tmp, 'int');
    const init = await runCliJson(['ca', 'init', '--dir', dir, '--intermediate']);
    expect(init.code).toBe(0);
    expect(init.json).toMatchObject({ trustDomain: TD, intermediate: true });
    expect(mode(join(dir, 'root-key.pem'))).toBe('600');
    expect(mode(join(dir, 'ca-key.pem'))).toBe('600');
    const out = join(tmp, 'int-boards');
    const issue = await runCliJson<{ notAfter: string; chain: number }>([
      'ca',
      'issue',
      '--dir',
      dir,
      '--id',
      '/ns/demo/sa/boards',
      '--out',
      out,
      '--ttl',
      '10m',
    ]);
    expect(issue.code).toBe(0);
    expect(issue.json.chain).toBe(2);
    expect(Date.parse(issue.json.notAfter) - Date.now()).toBeLessThan(11 * 60_000);
    const identity = await loadIssued(out);
    expect(identity.svid.id.toString()).toBe(BOARDS);
    const root = X509Bundle.parse(TD, readFileSync(join(dir, 'root-cert.pem')));
    expect(verifyPeerChain(identity.svid.certificates, root).verifiedChain).toHaveLength(3);

    // Re-issuing into the same directory replaces the files; the key stays 0600.
    const again = await runCliJson<{ serial: string }>([
      'ca',
      'issue',
      '--dir',
      dir,
      '--id',
      BOARDS,
      '--out',
      out,
    ]);
    expect(again.code).toBe(0);
    expect(mode(join(out, 'key.pem'))).toBe('600');
    expect((await loadIssued(out)).svid.leaf.serialNumber).toBe(again.json.serial);
    expect(readdirSync(out).sort()).toEqual(['cert-chain.pem', 'key.pem', 'root-cert.pem']);
  });

  it('refuses to overwrite a CA, and leaves its files untouched', async () => {
    const dir = join(tmp, 'once');
    expect((await runCli(['ca', 'init', '--dir', dir])).code).toBe(0);
    const key = readFileSync(join(dir, 'ca-key.pem'), 'utf8');
    const second = await runCliJson<{ error: { code: string; message: string } }>([
      'ca',
      'init',
      '--dir',
      dir,
    ]);
    expect(second.code).toBe(1);
    expect(second.json.error.code).toBe('ERR_OPTION_INVALID');
    expect(second.json.error.message).toMatch(/already holds a CA/);
    expect(readFileSync(join(dir, 'ca-key.pem'), 'utf8')).toBe(key);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses an ID of another trust domain or a bad one, naming --id; writes nothing', async () => {
    const dir = join(tmp, 'ids');
    expect((await runCli(['ca', 'init', '--dir', dir])).code).toBe(0);
    const out = join(tmp, 'ids-out');
    const other = await runCliJson<{ error: { code: string; message: string } }>([
      'ca',
      'issue',
      '--dir',
      dir,
      '--id',
      'spiffe://evil.org/ns/demo/sa/boards',
      '--out',
      out,
    ]);
    expect(other.code).toBe(1);
    expect(other.json.error).toMatchObject({ code: 'ERR_OPTION_INVALID' });
    expect(other.json.error.message).toMatch(/^--id: .*trust domain cluster\.local/);
    const bad = await runCliJson<{ error: { code: string; message: string } }>([
      'ca',
      'issue',
      '--dir',
      dir,
      '--id',
      'spiffe://cluster.local/ns/../x',
      '--out',
      out,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.json.error.code).toBe('ERR_SPIFFE_ID_INVALID');
    expect(bad.json.error.message).toMatch(/^--id: .*dot segments/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a tampered CA directory with the library code, naming the file', async () => {
    const dir = join(tmp, 'tampered');
    expect((await runCli(['ca', 'init', '--dir', dir])).code).toBe(0);
    const other = join(tmp, 'tampered-other');
    expect((await runCli(['ca', 'init', '--dir', other])).code).toBe(0);
    // Another CA's key beside this CA's certificate.
    writeFileSync(join(dir, 'ca-key.pem'), readFileSync(join(other, 'ca-key.pem')));
    const r = await runCliJson<{ error: { code: string; message: string } }>([
      'ca',
      'issue',
      '--dir',
      dir,
      '--id',
      BOARDS,
      '--out',
      join(tmp, 'tampered-out'),
    ]);
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('ERR_KEY_MISMATCH');
    expect(r.json.error.message).toContain(join(dir, 'ca-key.pem'));
    const missing = await runCliJson<{ error: { code: string; message: string } }>([
      'ca',
      'bundle',
      '--dir',
      join(tmp, 'nope'),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.json.error.code).toBe('ERR_FILE_UNREADABLE');
    expect(missing.json.error.message).toContain(join(tmp, 'nope', 'ca.json'));
  });

  it('usage errors name the flag and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['ca', 'init'], /--dir is required/],
      [['ca', 'init', '--dir', join(tmp, 'u1'), '--ttl', '1 day'], /--ttl must be a duration/],
      [['ca', 'init', '--dir', join(tmp, 'u2'), '--trust-domain', 'Bad_Domain!'], /--trust-domain: /],
      [['ca', 'init', '--dir', join(tmp, 'u3'), '--root-key', 'k.pem'], /--root-key needs --root-cert/],
      [['ca', 'init', '--dir', join(tmp, 'u4'), '--root-cert', 'r.pem'], /--root-cert needs --root-key/],
      [['ca', 'issue', '--dir', join(tmp, 'plain'), '--out', join(tmp, 'u5')], /--id is required/],
      [
        ['ca', 'bundle', '--dir', join(tmp, 'plain'), '--format', 'der'],
        /--format must be one of pem, spiffe/,
      ],
      [['ca', 'init', '--dir', join(tmp, 'u6'), 'extra'], /unexpected argument "extra"/],
      [['ca', 'nope'], /unknown command "ca nope"/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.stderr).toMatch(message);
    }
    for (const d of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']) expect(existsSync(join(tmp, d))).toBe(false);
  });

  it('--help documents each command and its exit codes', async () => {
    for (const sub of ['init', 'issue', 'bundle']) {
      const r = await runCli(['ca', sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: sidecarless ca ${sub} --dir D`));
      expect(r.stdout).toMatch(/Exit codes: 0 .*, 1 .*, 2 bad usage/);
    }
    const group = await runCli(['ca', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/ca init +create a development CA/);
  });
});

describe('sidecarless ca init with a plug-in CA (openssl-made, Istio cacerts)', () => {
  const tmp = useTempDir('ca-plugin');
  let pki: PluginCas;
  const file = (name: string, data: string) => {
    const path = join(tmp, name);
    writeFileSync(path, data);
    return path;
  };
  beforeAll(() => {
    pki = makePluginCas();
  });

  async function issueUnder(dir: string): Promise<X509Certificate[]> {
    const out = `${dir}-svid`;
    const r = await runCli(['ca', 'issue', '--dir', dir, '--id', BOARDS, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    return [...(await loadIssued(out)).svid.certificates];
  }

  it('--root-cert --root-key: the given root signs', async () => {
    const dir = join(tmp, 'root');
    const r = await runCliJson([
      'ca',
      'init',
      '--dir',
      dir,
      '--root-cert',
      file('root.pem', pki.root.certificate),
      '--root-key',
      file('root.key', pki.root.key),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ intermediate: false, root: { plugin: true } });
    // The operator's root key is never copied into the CA directory under another name.
    expect(existsSync(join(dir, 'root-key.pem'))).toBe(false);
    const chain = await issueUnder(dir);
    expect(chain).toHaveLength(1);
    expect(verifyPeerChain(chain, X509Bundle.parse(TD, pki.root.certificate)).id.toString()).toBe(BOARDS);
  });

  it('--root-cert --root-key --intermediate: a generated intermediate under the given root', async () => {
    const dir = join(tmp, 'root-int');
    const r = await runCliJson([
      'ca',
      'init',
      '--dir',
      dir,
      '--intermediate',
      '--root-cert',
      file('root2.pem', pki.root.certificate),
      '--root-key',
      file('root2.key', pki.root.key),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ intermediate: true });
    expect(existsSync(join(dir, 'root-key.pem'))).toBe(false);
    const chain = await issueUnder(dir);
    expect(chain).toHaveLength(2);
    expect(verifyPeerChain(chain, X509Bundle.parse(TD, pki.root.certificate)).verifiedChain).toHaveLength(3);
  });

  it('--root-cert --ca-cert --ca-key: the given intermediate signs, no root key needed', async () => {
    const dir = join(tmp, 'cacerts');
    const r = await runCliJson([
      'ca',
      'init',
      '--dir',
      dir,
      '--root-cert',
      file('root3.pem', pki.root.certificate),
      '--ca-cert',
      file('ca-cert.pem', pki.intermediate.certificate),
      '--ca-key',
      file('ca-key.pem', pki.intermediate.key),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const chain = await issueUnder(dir);
    expect(chain[1]?.raw.equals(new X509Certificate(pki.intermediate.certificate).raw)).toBe(true);
    expect(verifyPeerChain(chain, X509Bundle.parse(TD, pki.root.certificate)).id.toString()).toBe(BOARDS);
  });

  it("refuses a key that is not the root's, an intermediate of another root, a non-CA root: code and file named", async () => {
    const cases: [string, string[], string, string][] = [
      [
        'wrong-key',
        [
          '--root-cert',
          file('r4.pem', pki.root.certificate),
          '--root-key',
          file('other.key', pki.otherRoot.key),
        ],
        'ERR_KEY_MISMATCH',
        'other.key',
      ],
      [
        'foreign-int',
        [
          '--root-cert',
          file('r5.pem', pki.root.certificate),
          '--ca-cert',
          file('foreign.pem', pki.foreignIntermediate.certificate),
          '--ca-key',
          file('foreign.key', pki.foreignIntermediate.key),
        ],
        'ERR_SVID_CHAIN_ORDER',
        'foreign.pem',
      ],
      [
        'not-ca',
        [
          '--root-cert',
          file('notca.pem', pki.notCa.certificate),
          '--root-key',
          file('notca.key', pki.notCa.key),
        ],
        'ERR_SVID_SIGNER_NOT_CA',
        'notca.pem',
      ],
      [
        'missing',
        ['--root-cert', join(tmp, 'absent.pem'), '--root-key', file('r6.key', pki.root.key)],
        'ERR_FILE_UNREADABLE',
        'absent.pem',
      ],
    ];
    for (const [name, flags, code, named] of cases) {
      const dir = join(tmp, `bad-${name}`);
      const r = await runCliJson<{ error: { code: string; message: string } }>([
        'ca',
        'init',
        '--dir',
        dir,
        ...flags,
      ]);
      expect([name, r.code, r.json.error.code]).toEqual([name, 1, code]);
      expect(r.json.error.message).toContain(named);
      expect(existsSync(join(dir, 'ca.json'))).toBe(false);
    }
  });
});
