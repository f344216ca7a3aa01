import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import {
  type FileIdentityOptions,
  fileIdentity,
  fileIdentityPresets,
} from '../../src/identity/file-identity.js';
import { createLocalCa, verifyPeerChain } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { expectCode, rejectionOf } from '../helpers/expect-code.js';
import { svidFiles } from '../helpers/identity-files.js';
import { afterFile, record, tempDir, track } from '../helpers/identity-sources.js';
import { assertNoKeyMaterial } from '../helpers/key-material.js';

const ca = createTestCa();
const partner = createLocalCa({ trustDomain: 'partner.example' });
afterFile(() => Promise.all([ca.close(), partner.close()]));
const WEB = '/ns/demo/sa/web';

/** A file identity closed after the file's tests; its errors are recorded, not printed as warnings. */
function open(options: FileIdentityOptions) {
  const source = track(fileIdentity(options));
  record(source);
  return source;
}

/** A directory holding an SVID's files under the given names. */
function filesIn(names: { certChain: string; key: string; bundle: string }, svid = ca.issue(WEB)) {
  const dir = tempDir();
  const contents = svidFiles(svid, ca.bundle());
  writeFileSync(join(dir, names.certChain), contents.certChain);
  writeFileSync(join(dir, names.key), contents.key);
  writeFileSync(join(dir, names.bundle), contents.bundle);
  return { dir, svid };
}

describe('fileIdentity: presets and formats', () => {
  it.each(Object.entries(fileIdentityPresets))('reads the %s layout', async (preset, names) => {
    const { dir, svid } = filesIn(names);
    const source = open({ preset: preset as keyof typeof fileIdentityPresets, dir });
    const identity = await source.ready({ timeout: 5_000 });
    expect(identity.svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    expect(identity.generation).toBe(1);
    expect(identity.bundles.get('cluster.local')?.equals(ca.bundle())).toBe(true);
    expect(verifyPeerChain(identity.svid.certificates, identity.bundles).id.toString()).toContain(WEB);
  });

  it('names the preset files as the agents do', () => {
    expect(fileIdentityPresets).toEqual({
      istio: { certChain: 'cert-chain.pem', key: 'key.pem', bundle: 'root-cert.pem' },
      'cert-manager': { certChain: 'tls.crt', key: 'tls.key', bundle: 'ca.crt' },
      'spiffe-helper': { certChain: 'svid.pem', key: 'svid_key.pem', bundle: 'svid_bundle.pem' },
    });
  });

  it('takes explicit paths (absolute, or relative to dir) over preset names', async () => {
    const { dir, svid } = filesIn({ certChain: 'chain.pem', key: 'k.pem', bundle: 'b.pem' });
    const source = open({
      preset: 'istio',
      dir,
      certChain: 'chain.pem',
      key: join(dir, 'k.pem'),
      bundle: 'b.pem',
    });
    expect((await source.ready({ timeout: 5_000 })).svid.id.equals(svid.id)).toBe(true);
  });

  it('reads SPIFFE bundle JSON and DER bundles, DER chains and SEC1 keys', async () => {
    const dir = tempDir();
    const svid = ca.issue(WEB);
    writeFileSync(join(dir, 'chain.der'), Buffer.concat(svid.certChainDer()));
    writeFileSync(join(dir, 'key.der'), svid.privateKey.export({ format: 'der', type: 'sec1' }));
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify(ca.bundle().toJwks()));
    writeFileSync(join(dir, 'bundle.der'), Buffer.concat(ca.bundle().authorities.map((c) => c.raw)));
    for (const bundle of ['bundle.json', 'bundle.der']) {
      const source = open({ dir, certChain: 'chain.der', key: 'key.der', bundle });
      expect((await source.ready({ timeout: 5_000 })).svid.leaf.serialNumber).toBe(svid.leaf.serialNumber);
    }
  });

  it('trusts each federated bundle for its own trust domain', async () => {
    const { dir } = filesIn(fileIdentityPresets.istio);
    writeFileSync(join(dir, 'partner.pem'), partner.bundle().toPem());
    const source = open({
      preset: 'istio',
      dir,
      federatedBundles: { 'spiffe://partner.example': 'partner.pem' },
    });
    const { bundles } = await source.ready({ timeout: 5_000 });
    expect(
      bundles
        .trustDomains()
        .map((td) => td.name)
        .sort(),
    ).toEqual(['cluster.local', 'partner.example']);
    expect(verifyPeerChain(partner.issue('/api').certificates, bundles).id.toString()).toBe(
      'spiffe://partner.example/api',
    );
  });

  it('never shows key material in inspect() or errors', async () => {
    const { dir, svid } = filesIn(fileIdentityPresets['cert-manager']);
    const source = open({ preset: 'cert-manager', dir });
    const identity = await source.ready({ timeout: 5_000 });
    expect(inspect(source)).toMatch(
      /^FileIdentity\(.*tls\.crt, watch, spiffe:\/\/cluster\.local\/ns\/demo\/sa\/web, generation 1\)$/,
    );
    // A key given where the certificate belongs: the error names the files, not the bytes.
    const bad = tempDir();
    const contents = svidFiles(svid, ca.bundle());
    writeFileSync(join(bad, 'tls.crt'), contents.key);
    writeFileSync(join(bad, 'tls.key'), contents.key);
    writeFileSync(join(bad, 'ca.crt'), contents.bundle);
    const err = await rejectionOf(open({ preset: 'cert-manager', dir: bad }).ready({ timeout: 10_000 }));
    expect(err.code).toBe('ERR_PEM_INVALID');
    expect(err.message).toContain(join(bad, 'tls.crt'));
    assertNoKeyMaterial(`${inspect(source)}\n${inspect(identity)}\n${inspect(err, { depth: 8 })}`, [
      svid.privateKey,
    ]);
  });
});

describe('fileIdentity: options', () => {
  const cases: { name: string; options: unknown; field: string }[] = [
    { name: 'no certChain', options: { key: 'k', bundle: 'b' }, field: 'certChain' },
    { name: 'no key', options: { certChain: 'c', bundle: 'b' }, field: 'key' },
    { name: 'no bundle', options: { certChain: 'c', key: 'k' }, field: 'bundle' },
    { name: 'a preset without dir', options: { preset: 'istio' }, field: 'dir' },
    { name: 'an unknown preset', options: { preset: 'linkerd', dir: '/x' }, field: 'preset' },
    { name: 'an empty path', options: { preset: 'istio', dir: '/x', key: '' }, field: 'key' },
    {
      name: 'a path that is not a string',
      options: { preset: 'istio', dir: '/x', bundle: 7 },
      field: 'bundle',
    },
    { name: 'a bad watch', options: { preset: 'istio', dir: '/x', watch: 'yes' }, field: 'watch' },
    {
      name: 'a tiny pollInterval',
      options: { preset: 'istio', dir: '/x', pollInterval: 1 },
      field: 'pollInterval',
    },
    { name: 'an unknown option', options: { preset: 'istio', dir: '/x', bundles: 'b' }, field: 'bundles' },
    {
      name: 'a bad federatedBundles',
      options: { preset: 'istio', dir: '/x', federatedBundles: ['a'] },
      field: 'federatedBundles',
    },
  ];
  it.each(cases)('refuses $name', ({ options, field }) => {
    const err = expectCode(() => fileIdentity(options as FileIdentityOptions), 'ERR_OPTION_INVALID');
    expect(err.detail.field).toBe(field);
  });

  it('refuses a federated trust domain that is not one', () => {
    expectCode(
      () => fileIdentity({ preset: 'istio', dir: '/x', federatedBundles: { 'Partner.Example': 'p.pem' } }),
      'ERR_TRUST_DOMAIN_INVALID',
    );
  });
});

describe('fileIdentity: bad files at start', () => {
  it('rejects ready() with ERR_FILE_UNREADABLE naming the path and the reason, then recovers', async () => {
    const dir = tempDir();
    const source = open({ preset: 'istio', dir });
    const events = record(source);
    const err = await rejectionOf(source.ready({ timeout: 5_000 }), 'ERR_FILE_UNREADABLE');
    expect(err.message).toMatch(/^fileIdentity: \w+ file .* is unreadable: no such file \(ENOENT\)$/);
    expect(err.detail.file).toMatch(new RegExp(`^${dir}/(cert-chain|key|root-cert)\\.pem$`));
    expect(events.errors[0]?.code).toBe('ERR_FILE_UNREADABLE');
    expectCode(() => source.current(), 'ERR_NO_IDENTITY');
    // The source keeps watching: once the files are there, a later ready() resolves.
    const svid = ca.issue(WEB);
    const contents = svidFiles(svid, ca.bundle());
    writeFileSync(join(dir, 'root-cert.pem'), contents.bundle);
    writeFileSync(join(dir, 'key.pem'), contents.key);
    writeFileSync(join(dir, 'cert-chain.pem'), contents.certChain);
    await vi.waitFor(() => expect(source.current().svid.leaf.serialNumber).toBe(svid.leaf.serialNumber), {
      timeout: 5_000,
    });
    await expect(source.ready()).resolves.toMatchObject({ generation: 1 });
  });

  it('says a directory is not a regular file', async () => {
    const { dir } = filesIn(fileIdentityPresets.istio);
    mkdirSync(join(dir, 'dir.pem'));
    const err = await rejectionOf(
      open({ preset: 'istio', dir, key: 'dir.pem' }).ready(),
      'ERR_FILE_UNREADABLE',
    );
    expect(err.message).toBe(
      `fileIdentity: key file ${join(dir, 'dir.pem')} is unreadable: not a regular file`,
    );
  });

  it.skipIf(process.getuid?.() === 0)('says permission denied (EACCES)', async () => {
    const { dir } = filesIn(fileIdentityPresets.istio);
    chmodSync(join(dir, 'key.pem'), 0o000);
    const err = await rejectionOf(open({ preset: 'istio', dir }).ready(), 'ERR_FILE_UNREADABLE');
    expect(err.message).toContain('permission denied (EACCES)');
  });

  it('rejects ready() once the retries are spent, with the rule that failed and the files it read', async () => {
    const rogue = createLocalCa({ trustDomain: 'cluster.local' });
    afterFile(() => rogue.close());
    const { dir } = filesIn(fileIdentityPresets.istio, rogue.issue(WEB));
    const source = open({ preset: 'istio', dir });
    const events = record(source);
    const err = await rejectionOf(source.ready({ timeout: 10_000 }), 'ERR_SVID_UNTRUSTED');
    expect(err.message).toMatch(
      new RegExp(`^fileIdentity: ${join(dir, 'cert-chain.pem')} against ${join(dir, 'root-cert.pem')}: `),
    );
    expect(err.detail.file).toBe(join(dir, 'cert-chain.pem'));
    expect(events.errors.map((e) => e.code)).toEqual(['ERR_SVID_UNTRUSTED']);
    // Until the files change, every ready() says the same at once.
    await rejectionOf(source.ready({ timeout: 10_000 }), 'ERR_SVID_UNTRUSTED');
  });

  it("refuses a federated bundle for the SVID's own trust domain", async () => {
    const { dir } = filesIn(fileIdentityPresets.istio);
    const source = open({ preset: 'istio', dir, federatedBundles: { 'cluster.local': 'root-cert.pem' } });
    const err = await rejectionOf(source.ready({ timeout: 10_000 }), 'ERR_OPTION_INVALID');
    expect(err.message).toContain("names cluster.local, the SVID's own trust domain");
  });

  it('refuses an expired SVID', async () => {
    const bad = ca.issueBad('expired', WEB);
    const dir = tempDir();
    writeFileSync(join(dir, 'cert-chain.pem'), bad.certChainPem());
    writeFileSync(join(dir, 'key.pem'), bad.privateKeyPem());
    writeFileSync(join(dir, 'root-cert.pem'), ca.bundle().toPem());
    await rejectionOf(open({ preset: 'istio', dir }).ready({ timeout: 10_000 }), 'ERR_SVID_EXPIRED');
  });
});
