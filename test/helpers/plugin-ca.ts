import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A CA certificate and its PKCS#8 PEM key, made by the openssl CLI. */
export interface OpensslCa {
  readonly certificate: string;
  readonly key: string;
}

/** The CAs of the Istio `cacerts` case, made by openssl, unrelated to sidecarless's own builder. */
export interface PluginCas {
  readonly root: OpensslCa;
  readonly intermediate: OpensslCa;
  /** Another root, and an intermediate it issued (not issued by `root`). */
  readonly otherRoot: OpensslCa;
  readonly foreignIntermediate: OpensslCa;
  /** A self-signed certificate with basicConstraints CA:FALSE. */
  readonly notCa: OpensslCa;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
O = plugin
[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
`;

/** Runs `openssl` in a fresh temporary directory, removed when `fn` returns. */
export function inOpensslDir<T>(fn: (run: (...args: string[]) => void, dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-plugin-ca-'));
  try {
    writeFileSync(join(dir, 'openssl.cnf'), CONFIG);
    const run = (...args: string[]) => {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    };
    return fn(run, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Generates, with the openssl CLI, a root and intermediate CA and the bad variants the tests need. */
export function makePluginCas(): PluginCas {
  return inOpensslDir((run, dir) => {
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    const selfSigned = (name: string, cn: string, extensions: string): OpensslCa => {
      run(
        'req',
        '-x509',
        '-config',
        'openssl.cnf',
        ...EC,
        '-subj',
        `/O=plugin/CN=${cn}`,
        '-days',
        '30',
        '-extensions',
        extensions,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
      );
      return { certificate: read(`${name}.pem`), key: read(`${name}.key`) };
    };
    const issued = (name: string, cn: string, issuer: string): OpensslCa => {
      run(
        'req',
        '-new',
        '-config',
        'openssl.cnf',
        ...EC,
        '-subj',
        `/O=plugin/CN=${cn}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      );
      run(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${issuer}.pem`,
        '-CAkey',
        `${issuer}.key`,
        '-set_serial',
        `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`,
        '-days',
        '30',
        '-extfile',
        'openssl.cnf',
        '-extensions',
        'v3_int',
        '-out',
        `${name}.pem`,
      );
      return { certificate: read(`${name}.pem`), key: read(`${name}.key`) };
    };
    const root = selfSigned('root', 'plugin root', 'v3_root');
    const intermediate = issued('intermediate', 'plugin intermediate', 'root');
    const otherRoot = selfSigned('other-root', 'plugin root', 'v3_root');
    const foreignIntermediate = issued('foreign', 'plugin intermediate', 'other-root');
    const notCa = selfSigned('not-ca', 'not a CA', 'v3_leaf');
    return { root, intermediate, otherRoot, foreignIntermediate, notCa };
  });
}

/**
 * Runs `openssl verify` on a leaf with its intermediates and trusted roots; returns openssl's
 * output, or throws with it when verification fails.
 */
export function opensslVerify(
  leafPem: string,
  intermediatesPem: string,
  rootsPem: string,
  extra: readonly string[] = [],
): string {
  return inOpensslDir((_run, dir) => {
    writeFileSync(join(dir, 'leaf.pem'), leafPem);
    writeFileSync(join(dir, 'roots.pem'), rootsPem);
    const args = ['verify', ...extra, '-CAfile', 'roots.pem'];
    if (intermediatesPem !== '') {
      writeFileSync(join(dir, 'untrusted.pem'), intermediatesPem);
      args.push('-untrusted', 'untrusted.pem');
    }
    args.push('leaf.pem');
    try {
      return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`openssl verify failed: ${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  });
}
