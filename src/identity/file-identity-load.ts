import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isSidecarlessError, SidecarlessError } from '../errors.js';
import type { TrustDomain } from '../spiffe/trust-domain.js';
import { X509Bundle } from '../x509/bundle.js';
import { BundleSet } from '../x509/bundle-set.js';
import { X509Svid } from '../x509/svid.js';
import { validateIdentityUpdate } from './publisher.js';

// Reading the files of a file identity and building one update from them, all or nothing.

/** The files of a file identity, as absolute paths. */
export interface IdentityFiles {
  readonly certChain: string;
  readonly key: string;
  readonly bundle: string;
  readonly federated: readonly { readonly trustDomain: TrustDomain; readonly path: string }[];
}

/** What the files held at one read. The key bytes are wiped once parsed. */
export interface FileContents {
  readonly certChain: Buffer;
  readonly key: Buffer;
  readonly bundle: Buffer;
  readonly federated: readonly Buffer[];
  /** A digest of everything, to skip an update that changes nothing. */
  readonly digest: string;
}

/** Certificates, keys and bundles are kilobytes; anything this large is the wrong file. */
const MAX_FILE_BYTES = 1 << 20;

const REASONS: Record<string, string> = {
  ENOENT: 'no such file (ENOENT)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'operation not permitted (EPERM)',
  EISDIR: 'is a directory (EISDIR)',
  ELOOP: 'too many symbolic links (ELOOP)',
  ENOTDIR: 'a path component is not a directory (ENOTDIR)',
};

function unreadable(field: string, path: string, reason: string): SidecarlessError {
  return new SidecarlessError(
    'ERR_FILE_UNREADABLE',
    `fileIdentity: ${field} file ${path} is unreadable: ${reason}`,
    {
      field,
      file: path,
    },
  );
}

async function readOne(field: string, path: string): Promise<Buffer> {
  try {
    // stat follows symlinks (tls.crt -> ..data/tls.crt): a FIFO or device would block or never end.
    const info = await stat(path);
    if (!info.isFile()) throw unreadable(field, path, 'not a regular file');
    if (info.size > MAX_FILE_BYTES) throw unreadable(field, path, `larger than ${MAX_FILE_BYTES} bytes`);
    return await readFile(path);
  } catch (err) {
    if (isSidecarlessError(err)) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw unreadable(field, path, REASONS[code] ?? code);
  }
}

/**
 * Reads every file. All are read before anything is parsed, so one read sees one version of each.
 * @throws SidecarlessError `ERR_FILE_UNREADABLE` naming the file and the reason
 */
export async function readIdentityFiles(files: IdentityFiles): Promise<FileContents> {
  const [certChain, key, bundle, ...federated] = await Promise.all([
    readOne('certChain', files.certChain),
    readOne('key', files.key),
    readOne('bundle', files.bundle),
    ...files.federated.map((f) => readOne(`federatedBundles["${f.trustDomain.name}"]`, f.path)),
  ]);
  const hash = createHash('sha256');
  for (const part of [certChain, key, bundle, ...federated] as Buffer[]) {
    hash.update(String(part.length)).update(':').update(part);
  }
  return {
    certChain: certChain as Buffer,
    key: key as Buffer,
    bundle: bundle as Buffer,
    federated: federated as Buffer[],
    digest: hash.digest('hex'),
  };
}

/** The same code and detail, with the files named: a lower-level message may name neither. */
function naming(err: unknown, files: string, field: string, file: string): unknown {
  if (!isSidecarlessError(err)) return err;
  return new SidecarlessError(
    err.code,
    `fileIdentity: ${files}: ${err.message}`,
    { ...err.detail, field, file },
    {
      cause: err,
    },
  );
}

/**
 * Builds an update from the contents: the SVID from the chain and key (which must match), the
 * bundle of the SVID's trust domain, federated bundles; the SVID must verify against its bundle
 * at `now`. Wipes the key bytes, whatever the outcome.
 * @throws SidecarlessError with the code of the rule that failed, the message naming the files
 */
export function buildFileIdentity(
  files: IdentityFiles,
  contents: FileContents,
  now = Date.now(),
): { svid: X509Svid; bundles: BundleSet } {
  let svid: X509Svid;
  try {
    // No `source`: the message is prefixed with both file names below.
    svid = X509Svid.parse(contents.certChain, contents.key);
  } catch (err) {
    throw naming(err, `${files.certChain} with key ${files.key}`, 'certChain', files.certChain);
  } finally {
    contents.key.fill(0);
  }
  const td = svid.id.trustDomain;
  let own: X509Bundle;
  try {
    own = X509Bundle.parse(td, contents.bundle, { source: files.bundle });
  } catch (err) {
    throw naming(err, files.bundle, 'bundle', files.bundle);
  }
  const federated = files.federated.map(({ trustDomain, path }, i) => {
    if (trustDomain.equals(td)) {
      // A federated bundle must never add authorities to the trust domain of our own SVID.
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `fileIdentity: option "federatedBundles" names ${td.name}, the SVID's own trust domain; its bundle is option "bundle"`,
        { field: 'federatedBundles', trustDomain: td.name, file: path },
      );
    }
    try {
      return X509Bundle.parse(trustDomain, contents.federated[i] as Buffer, { source: path });
    } catch (err) {
      throw naming(err, path, `federatedBundles["${trustDomain.name}"]`, path);
    }
  });
  const bundles = BundleSet.of(own, ...federated);
  try {
    validateIdentityUpdate([svid], bundles, now);
  } catch (err) {
    throw naming(err, `${files.certChain} against ${files.bundle}`, 'certChain', files.certChain);
  }
  return { svid, bundles };
}
