// `sidecarless ca init|issue|bundle`: a development CA on disk for fileIdentity and for Istio's
// plug-in CA layout. The checks are the library's: every certificate and key read goes through
// createLocalCa, every SVID written is one createLocalCa issued.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SidecarlessError } from '../errors.js';
import { TrustDomain } from '../spiffe/trust-domain.js';
import { X509Bundle } from '../x509/bundle.js';
import { privateKeyPemOf } from '../x509/svid.js';
import {
  type CaPlan,
  createCaMaterial,
  readCaDirectory,
  writeCaDirectory,
  writeFileAtomic,
} from './ca-files.js';
import type { Output } from './output.js';
import {
  choiceFlag,
  durationFlag,
  formatDuration,
  optionalFlag,
  positionalArgs,
  requiredFlag,
  UsageError,
} from './usage.js';

const DAY = 86_400_000;

function trustDomainFlag(value: unknown): TrustDomain {
  const name = optionalFlag('--trust-domain', value) ?? 'cluster.local';
  try {
    return TrustDomain.parse(name);
  } catch (err) {
    throw new UsageError(`--trust-domain: ${(err as Error).message}`, '--trust-domain');
  }
}

function planOf(values: Record<string, unknown>): CaPlan {
  const rootCert = optionalFlag('--root-cert', values['root-cert']);
  const rootKey = optionalFlag('--root-key', values['root-key']);
  const caCert = optionalFlag('--ca-cert', values['ca-cert']);
  const caKey = optionalFlag('--ca-key', values['ca-key']);
  const intermediate = values.intermediate === true;
  if (rootCert === undefined) {
    for (const [flag, v] of [
      ['--root-key', rootKey],
      ['--ca-cert', caCert],
      ['--ca-key', caKey],
    ] as const) {
      if (v !== undefined) throw new UsageError(`${flag} needs --root-cert (the root it chains to)`, flag);
    }
    return { kind: 'generate', intermediate };
  }
  if (caCert !== undefined || caKey !== undefined) {
    if (caCert === undefined)
      throw new UsageError('--ca-key needs --ca-cert (the intermediate it signs for)', '--ca-cert');
    if (caKey === undefined)
      throw new UsageError('--ca-cert needs --ca-key (the intermediate signs SVIDs)', '--ca-key');
    if (intermediate)
      throw new UsageError(
        '--intermediate generates an intermediate; --ca-cert gives one: choose one',
        '--intermediate',
      );
    return { kind: 'intermediate', rootCert, rootKey, caCert, caKey };
  }
  if (rootKey === undefined) {
    throw new UsageError(
      '--root-cert needs --root-key (the root signs), or --ca-cert and --ca-key (an intermediate signs)',
      '--root-key',
    );
  }
  return { kind: 'root', rootCert, rootKey, intermediate };
}

function certificateSummary(der: { subject: string; serial: string; notAfter: number }) {
  return { subject: der.subject, serial: der.serial, notAfter: new Date(der.notAfter).toISOString() };
}

export async function runCaInit(
  values: Record<string, unknown>,
  positionals: string[],
  out: Output,
): Promise<number> {
  positionalArgs(positionals, []);
  const dir = resolve(requiredFlag('--dir', values.dir));
  const trustDomain = trustDomainFlag(values['trust-domain']);
  const ttl = durationFlag('--ttl', values.ttl, DAY);
  const rootTtl = durationFlag('--root-ttl', values['root-ttl'], 365 * DAY);
  const plan = planOf(values);
  const material = await createCaMaterial(trustDomain, plan, rootTtl);
  const files = writeCaDirectory(dir, material, ttl);
  const signedByRoot = material.signerChain[0]?.equals(material.root.der) === true;
  const root = certificateSummary(material.root);
  out.line(`CA for trust domain ${trustDomain.name} in ${dir}`);
  out.line(
    `root: ${root.subject} (${plan.kind === 'generate' ? 'generated' : 'plug-in'}), expires ${root.notAfter}`,
  );
  out.line(
    `signs SVIDs: ${signedByRoot ? 'the root' : plan.kind === 'intermediate' ? 'the plug-in intermediate' : 'a generated intermediate'}; default SVID lifetime ${formatDuration(ttl)}`,
  );
  for (const f of files) out.line(`  wrote ${f.file} (${f.mode})`);
  out.line();
  out.line(
    `next: sidecarless ca issue --dir ${dir} --id spiffe://${trustDomain.name}/ns/default/sa/default --out DIR`,
  );
  out.document({
    ok: true,
    dir,
    trustDomain: trustDomain.name,
    ttl,
    root: { ...root, plugin: plan.kind !== 'generate' },
    intermediate: !signedByRoot,
    files,
  });
  return 0;
}

export async function runCaIssue(
  values: Record<string, unknown>,
  positionals: string[],
  out: Output,
): Promise<number> {
  positionalArgs(positionals, []);
  const dir = resolve(requiredFlag('--dir', values.dir));
  const id = requiredFlag('--id', values.id);
  const outDir = resolve(requiredFlag('--out', values.out));
  const ca = readCaDirectory(dir);
  const ttl = durationFlag('--ttl', values.ttl, ca.meta.ttl);
  const local = ca.open();
  try {
    let svid: ReturnType<typeof local.issue>;
    try {
      svid = local.issue(id, { ttl });
    } catch (err) {
      if (
        err instanceof SidecarlessError &&
        (err.detail.field === 'pathOrId' || err.code === 'ERR_SPIFFE_ID_INVALID')
      ) {
        throw new SidecarlessError(err.code, `--id: ${err.message.replace('option "pathOrId"', 'the ID')}`, {
          ...err.detail,
          field: '--id',
        });
      }
      throw err;
    }
    mkdirSync(outDir, { recursive: true, mode: 0o700 });
    // The bundle first, then the key and the chain: a watcher (fileIdentity) meets a new SVID only
    // with its issuer already trusted.
    const files = [
      writeFileAtomic(join(outDir, 'root-cert.pem'), local.bundle().toPem(), 0o644),
      writeFileAtomic(join(outDir, 'key.pem'), privateKeyPemOf(svid), 0o600),
      writeFileAtomic(join(outDir, 'cert-chain.pem'), svid.certChainPem(), 0o644),
    ];
    out.line(`issued ${svid.id.toString()}`);
    out.line(
      `serial ${svid.leaf.serialNumber}, expires ${svid.notAfter.toISOString()}, chain of ${svid.certificates.length}`,
    );
    for (const f of files) out.line(`  wrote ${f.file} (${f.mode})`);
    out.line();
    out.line(
      `use it: fileIdentity({ preset: 'istio', dir: '${outDir}' })  or  sidecarless check HOST:PORT --cert-dir ${outDir}`,
    );
    out.document({
      ok: true,
      id: svid.id.toString(),
      serial: svid.leaf.serialNumber,
      notAfter: svid.notAfter.toISOString(),
      chain: svid.certificates.length,
      dir: outDir,
      files,
    });
    return 0;
  } finally {
    await local.close();
  }
}

export async function runCaBundle(
  values: Record<string, unknown>,
  positionals: string[],
  out: Output,
): Promise<number> {
  positionalArgs(positionals, []);
  const dir = resolve(requiredFlag('--dir', values.dir));
  const format = choiceFlag('--format', values.format, ['pem', 'spiffe'] as const, 'pem');
  const ca = readCaDirectory(dir);
  const bundle = X509Bundle.fromCertificates(ca.meta.trustDomain, ca.rootPem);
  const text = format === 'pem' ? bundle.toPem() : `${JSON.stringify(bundle.toJwks(), null, 2)}\n`;
  if (!out.json) process.stdout.write(text);
  out.document({
    ok: true,
    trustDomain: bundle.trustDomain.name,
    format,
    authorities: bundle.authorities.map((a) => ({
      subject: a.subject,
      serial: a.serialNumber,
      notAfter: new Date(a.validTo).toISOString(),
      sha256: a.fingerprint256,
    })),
    bundle: format === 'pem' ? text : bundle.toJwks(),
  });
  return 0;
}
