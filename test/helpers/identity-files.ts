import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { X509Bundle, X509Svid } from '../../src/index.js';

/** The contents of an SVID's three files, as agents write them (PEM, PKCS#8 key). */
export function svidFiles(
  svid: X509Svid,
  bundle: X509Bundle,
): { certChain: string; key: string; bundle: string } {
  return {
    certChain: svid.certChainPem(),
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    bundle: bundle.toPem(),
  };
}

/** Writes a file the way most agents do: a temporary file, then an atomic rename over the old one. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * A Kubernetes secret/CSI volume as kubelet's AtomicWriter lays it out: the files live in a
 * timestamped directory, `..data` links to it, and each visible name links through `..data`:
 *
 *   tls.crt -> ..data/tls.crt
 *   ..data  -> ..2026_11_23_10_00_00.123
 *
 * An update writes a new timestamped directory, points `..data_tmp` at it, renames `..data_tmp`
 * over `..data` (the atomic swap), then removes the old directory.
 */
export class KubernetesVolume {
  readonly dir: string;
  #version = 0;
  #current: string | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  write(files: Record<string, string>): string {
    const stamp = `..2026_11_23_10_00_${String(this.#version).padStart(2, '0')}.${123 + this.#version}`;
    this.#version++;
    mkdirSync(join(this.dir, stamp));
    for (const [name, data] of Object.entries(files)) writeFileSync(join(this.dir, stamp, name), data);
    symlinkSync(stamp, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      if (!existsSync(join(this.dir, name))) symlinkSync(join('..data', name), join(this.dir, name));
    }
    if (this.#current !== undefined) rmSync(join(this.dir, this.#current), { recursive: true, force: true });
    this.#current = stamp;
    return stamp;
  }
}
