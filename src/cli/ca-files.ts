// A development CA on disk, in the layout of Istio's `cacerts` secret (so the directory can be
// plugged into istiod as it is): root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem, plus
// ca.json for what the certificates do not say (the trust domain, the default SVID lifetime).
// Everything read back goes through createLocalCa's plug-in checks: a tampered or mismatched
// file is refused with the library's error code, naming the file.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { SidecarlessError } from '../errors.js';
import { createLocalCa, generateKey, type LocalCa, localCaInternals } from '../identity/local-ca.js';
import { TrustDomain } from '../spiffe/trust-domain.js';
import { buildCertificate, buildName, ext } from '../x509/build.js';
import type { CertificateInfo } from '../x509/certificate.js';
import { encodePem } from '../x509/pem.js';
import { parsePrivateKey } from '../x509/private-key.js';
import { readCertificates } from '../x509/read-certificates.js';

/** The file names of a CA directory. */
export const CA_FILES = Object.freeze({
  meta: 'ca.json',
  root: 'root-cert.pem',
  rootKey: 'root-key.pem',
  signer: 'ca-cert.pem',
  signerKey: 'ca-key.pem',
  chain: 'cert-chain.pem',
});

/** What ca.json holds. */
export interface CaMeta {
  readonly format: 1;
  readonly trustDomain: string;
  /** Default SVID lifetime of `ca issue`, in ms. */
  readonly ttl: number;
}

/** A CA's certificates and keys, ready to be written or used. */
export interface CaMaterial {
  readonly trustDomain: TrustDomain;
  readonly root: CertificateInfo;
  /** Written only when the root key is ours to keep (a generated root under an intermediate). */
  readonly rootKeyPem: string | undefined;
  /** The certificate that signs SVIDs (the root itself, or an intermediate), then its issuers below the root. */
  readonly signerChain: readonly Buffer[];
  readonly signerKeyPem: string;
}

const FILE_LIMIT = 1024 * 1024;

function unreadable(file: string, err: unknown): SidecarlessError {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SidecarlessError(
    'ERR_FILE_UNREADABLE',
    `cannot read ${file}: ${reason}`,
    { file },
    { cause: err },
  );
}

/** A file's bytes; a missing, unreadable or oversized file is ERR_FILE_UNREADABLE naming it. */
export function readInput(file: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw unreadable(file, err);
  }
  if (data.length > FILE_LIMIT) {
    throw new SidecarlessError(
      'ERR_FILE_UNREADABLE',
      `cannot read ${file}: larger than ${FILE_LIMIT} bytes`,
      {
        file,
      },
    );
  }
  return data;
}

/**
 * Runs `fn`, naming `file` in a library error instead of the option it was given as (the CLI
 * passes files' bytes as createLocalCa options), keeping the error's code.
 */
export function namingFiles<T>(files: Readonly<Record<string, string>>, fn: () => T, fallback?: string): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof SidecarlessError)) throw err;
    let message = err.message;
    let file: string | undefined;
    for (const [field, name] of Object.entries(files)) {
      const spelled = `option "${field}"`;
      if (message.includes(spelled) || err.detail.field === field) {
        message = message.includes(spelled) ? message.replaceAll(spelled, name) : `${name}: ${message}`;
        file = name;
      }
    }
    if (file === undefined) {
      // A check that names no option (a certificate's profile): the file(s) it came from.
      if (fallback === undefined) throw err;
      message = `${fallback}: ${message}`;
      file = fallback;
    }
    throw new SidecarlessError(err.code, message, { ...err.detail, file }, { cause: err });
  }
}

/** The material of a CA created by createLocalCa (generated or plugged in), read from its internals. */
function materialOf(ca: LocalCa, keepRootKey: boolean): CaMaterial {
  const authority = localCaInternals(ca).active();
  const pkcs8 = (key: { export(o: { format: 'pem'; type: 'pkcs8' }): string | Buffer }) =>
    key.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    trustDomain: ca.trustDomain,
    root: authority.root,
    rootKeyPem: keepRootKey && authority.rootKey !== undefined ? pkcs8(authority.rootKey) : undefined,
    signerChain: authority.signer === authority.root ? [authority.root.der] : [...authority.chain],
    signerKeyPem: pkcs8(authority.signerKey),
  };
}

/** How `ca init` was asked to make the CA. */
export type CaPlan =
  | { readonly kind: 'generate'; readonly intermediate: boolean }
  | {
      readonly kind: 'root';
      readonly rootCert: string;
      readonly rootKey: string;
      readonly intermediate: boolean;
    }
  | {
      readonly kind: 'intermediate';
      readonly rootCert: string;
      readonly rootKey: string | undefined;
      readonly caCert: string;
      readonly caKey: string;
    };

/** Creates (generates, or checks plug-in files for) a CA's material. Writes nothing. */
export async function createCaMaterial(
  trustDomain: TrustDomain,
  plan: CaPlan,
  rootTtl: number,
): Promise<CaMaterial> {
  if (plan.kind === 'generate') {
    const ca = createLocalCa({ trustDomain, intermediate: plan.intermediate, rootTtl });
    try {
      return materialOf(ca, plan.intermediate);
    } finally {
      await ca.close();
    }
  }
  const files: Record<string, string> = { 'root.certificate': plan.rootCert };
  const root = readInput(plan.rootCert);
  if (plan.kind === 'root' && !plan.intermediate) {
    files['root.key'] = plan.rootKey;
    const ca = namingFiles(
      files,
      () => createLocalCa({ trustDomain, root: { certificate: root, key: readInput(plan.rootKey) } }),
      plan.rootCert,
    );
    try {
      return materialOf(ca, false);
    } finally {
      await ca.close();
    }
  }
  let intermediate: { certificate: Buffer; key: Buffer | string };
  let rootKey: Buffer | undefined;
  if (plan.kind === 'root') {
    // A generated intermediate under the operator's root: createLocalCa checks the root and its
    // key, then the intermediate built here is checked again as a plug-in intermediate below.
    files['root.key'] = plan.rootKey;
    rootKey = readInput(plan.rootKey);
    const rootCa = namingFiles(
      files,
      () => createLocalCa({ trustDomain, root: { certificate: root, key: rootKey as Buffer } }),
      plan.rootCert,
    );
    const authority = localCaInternals(rootCa).active();
    await rootCa.close();
    intermediate = generateIntermediate(trustDomain, authority.root, authority.signerKey, rootTtl);
  } else {
    files['intermediate.certificate'] = plan.caCert;
    files['intermediate.key'] = plan.caKey;
    if (plan.rootKey !== undefined) {
      files['root.key'] = plan.rootKey;
      rootKey = readInput(plan.rootKey);
    }
    intermediate = { certificate: readInput(plan.caCert), key: readInput(plan.caKey) };
  }
  const ca = namingFiles(
    files,
    () =>
      createLocalCa({
        trustDomain,
        root: rootKey === undefined ? { certificate: root } : { certificate: root, key: rootKey },
        intermediate,
      }),
    plan.kind === 'intermediate' ? `${plan.rootCert} with ${plan.caCert}` : plan.rootCert,
  );
  try {
    return materialOf(ca, false);
  } finally {
    await ca.close();
  }
}

/** An intermediate signed by a plug-in root, with the profile the local CA gives its own. */
function generateIntermediate(
  trustDomain: TrustDomain,
  root: CertificateInfo,
  rootKey: import('node:crypto').KeyObject,
  ttl: number,
): { certificate: Buffer; key: string } {
  const now = Date.now();
  const keys = generateKey('ec-p256');
  const der = buildCertificate({
    subject: buildName([
      ['O', 'sidecarless'],
      ['CN', `${trustDomain.name} intermediate`],
    ]),
    issuer: root.subjectName,
    publicKey: keys.publicKey,
    signingKey: rootKey,
    notBefore: new Date(now - 60_000),
    // Never outliving the root: a path through an expired root verifies nowhere.
    notAfter: new Date(Math.min(now + ttl, root.notAfter)),
    extensions: [
      ext.basicConstraints(true, 0),
      ext.keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
      ext.subjectAltName({ uris: [trustDomain.idString()] }),
      ext.subjectKeyIdentifier(keys.publicKey),
      ext.authorityKeyIdentifier(root.publicKey),
    ],
  });
  return { certificate: der, key: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

const pemOf = (ders: readonly Buffer[]) => ders.map((d) => encodePem('CERTIFICATE', d)).join('');

/** One file written by the CLI: its name and mode. */
export interface WrittenFile {
  readonly file: string;
  readonly mode: string;
}

/**
 * Writes a file whole or not at all: to a new file beside it (created with `mode`, so a key is
 * never readable by others even for an instant), synced, then renamed over the target. A reader
 * watching the directory (fileIdentity) never sees half a file. `exclusive` refuses an existing target.
 */
export function writeFileAtomic(file: string, data: string, mode: number, exclusive = false): WrittenFile {
  const aside = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(aside, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(aside, { force: true });
    throw err;
  }
  closeSync(fd);
  // The umask may have taken bits away from `mode`, never added any; set it exactly.
  chmodSync(aside, mode);
  if (exclusive) {
    // link() fails when the target exists: nothing is overwritten, even by a race.
    try {
      linkSync(aside, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new SidecarlessError('ERR_OPTION_INVALID', `${file} already exists: it is not overwritten`, {
        file,
      });
    } finally {
      rmSync(aside, { force: true });
    }
  } else {
    renameSync(aside, file);
  }
  return { file, mode: `0${mode.toString(8)}` };
}

/** Writes a new CA directory; refuses one that holds any of the CA's files. */
export function writeCaDirectory(dir: string, material: CaMaterial, ttl: number): WrittenFile[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const names = Object.values(CA_FILES);
  const taken = names.filter((n) => existsSync(join(dir, n)));
  if (taken.length > 0) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `${dir} already holds a CA (${taken.join(', ')}): choose another --dir or remove it`,
      { file: join(dir, taken[0] as string), field: '--dir' },
    );
  }
  const meta: CaMeta = { format: 1, trustDomain: material.trustDomain.name, ttl };
  const rootPem = pemOf([material.root.der]);
  const signerPem = pemOf(material.signerChain.slice(0, 1));
  const chain = material.signerChain[0]?.equals(material.root.der)
    ? rootPem
    : pemOf([...material.signerChain, material.root.der]);
  const written: WrittenFile[] = [];
  const put = (name: string, data: string, mode: number) =>
    written.push(writeFileAtomic(join(dir, name), data, mode, true));
  // Keys first: a directory with certificates but no key is never left by a crash halfway.
  put(CA_FILES.signerKey, material.signerKeyPem, 0o600);
  if (material.rootKeyPem !== undefined) put(CA_FILES.rootKey, material.rootKeyPem, 0o600);
  put(CA_FILES.signer, signerPem, 0o644);
  put(CA_FILES.chain, chain, 0o644);
  put(CA_FILES.root, rootPem, 0o644);
  put(CA_FILES.meta, `${JSON.stringify(meta, null, 2)}\n`, 0o644);
  return written;
}

/** A CA directory, loaded and checked. */
export interface CaDirectory {
  readonly meta: CaMeta;
  readonly rootPem: Buffer;
  /** The CA, ready to issue; close it after use. */
  open(): LocalCa;
}

function readMeta(dir: string): CaMeta {
  const file = join(dir, CA_FILES.meta);
  const text = readInput(file).toString('utf8');
  let meta: Partial<CaMeta>;
  try {
    meta = JSON.parse(text) as Partial<CaMeta>;
  } catch (err) {
    throw new SidecarlessError('ERR_OPTION_INVALID', `${file} is not JSON: ${(err as Error).message}`, {
      file,
    });
  }
  if (
    meta?.format !== 1 ||
    typeof meta.trustDomain !== 'string' ||
    typeof meta.ttl !== 'number' ||
    !(meta.ttl > 0)
  ) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `${file} must be { "format": 1, "trustDomain": "…", "ttl": <ms> } as "sidecarless ca init" writes it`,
      { file },
    );
  }
  return { format: 1, trustDomain: meta.trustDomain, ttl: meta.ttl };
}

/** Reads a CA directory written by `ca init`. */
export function readCaDirectory(dir: string): CaDirectory {
  const meta = readMeta(dir);
  const trustDomain = TrustDomain.parse(meta.trustDomain);
  const rootFile = join(dir, CA_FILES.root);
  const chainFile = join(dir, CA_FILES.chain);
  const keyFile = join(dir, CA_FILES.signerKey);
  const rootPem = readInput(rootFile);
  const chainPem = readInput(chainFile);
  const key = readInput(keyFile);
  const files = {
    'root.certificate': rootFile,
    'root.key': keyFile,
    'intermediate.certificate': chainFile,
    'intermediate.key': keyFile,
  };
  const [rootDer] = namingFiles(files, () => readCertificates(rootPem, `option "root.certificate"`, 1));
  const chain = namingFiles(files, () => readCertificates(chainPem, `option "intermediate.certificate"`, 8));
  const signedByRoot = chain.length === 1 && rootDer !== undefined && chain[0]?.equals(rootDer) === true;
  // Parsed once here so a bad key is refused before any CA is built.
  namingFiles(files, () => parsePrivateKey(key, `option "root.key"`));
  return {
    meta,
    rootPem,
    open: () =>
      namingFiles(
        files,
        () =>
          createLocalCa({
            trustDomain,
            ttl: meta.ttl,
            ...(signedByRoot
              ? { root: { certificate: rootPem, key } }
              : { root: { certificate: rootPem }, intermediate: { certificate: chainPem, key } }),
          }),
        dir,
      ),
  };
}
