import { isAbsolute, resolve } from 'node:path';
import { SidecarlessError } from '../errors.js';
import { checkOptions, durationOption, invalidOption } from '../internal/options.js';
import { TrustDomain } from '../spiffe/trust-domain.js';
import { expiryWarningOption } from './expiry-watch.js';
import type { IdentityFiles } from './file-identity-load.js';

/**
 * The file names well-known agents write, by preset name:
 *
 * - `istio`: the Istio agent's `OUTPUT_CERTS` directory (`cert-chain.pem`, `key.pem`, `root-cert.pem`)
 * - `cert-manager`: cert-manager's csi-driver-spiffe volume (`tls.crt`, `tls.key`, `ca.crt`)
 * - `spiffe-helper`: spiffe-helper's `cert_dir` (`svid.pem`, `svid_key.pem`, `svid_bundle.pem`)
 *
 * @example
 * ```ts
 * import { fileIdentityPresets } from 'sidecarless';
 * console.log(fileIdentityPresets.istio.certChain); // 'cert-chain.pem'
 * ```
 */
export const fileIdentityPresets = Object.freeze({
  istio: Object.freeze({ certChain: 'cert-chain.pem', key: 'key.pem', bundle: 'root-cert.pem' }),
  'cert-manager': Object.freeze({ certChain: 'tls.crt', key: 'tls.key', bundle: 'ca.crt' }),
  'spiffe-helper': Object.freeze({ certChain: 'svid.pem', key: 'svid_key.pem', bundle: 'svid_bundle.pem' }),
});

/**
 * A preset name of {@link fileIdentityPresets}.
 * @example
 * ```ts
 * import { fileIdentity, type FileIdentityPreset } from 'sidecarless';
 * const preset: FileIdentityPreset = 'spiffe-helper';
 * fileIdentity({ preset, dir: '/run/spiffe/certs' });
 * ```
 */
export type FileIdentityPreset = keyof typeof fileIdentityPresets;

/**
 * Options of {@link fileIdentity}: the three files (or a preset and its directory), federated
 * bundles, and how changes are noticed.
 * @example
 * ```ts
 * import { fileIdentity } from 'sidecarless';
 * const identity = fileIdentity({
 *   certChain: '/etc/certs/cert-chain.pem',
 *   key: '/etc/certs/key.pem',
 *   bundle: '/etc/certs/root-cert.pem',
 *   federatedBundles: { 'partner.example': '/etc/federation/partner.example.json' },
 * });
 * ```
 */
export interface FileIdentityOptions {
  /** The SVID's certificate chain, leaf first (PEM or DER). Relative paths are resolved against `dir`. */
  readonly certChain?: string;
  /** The SVID's private key (PEM or DER; PKCS#8, SEC1 or PKCS#1; unencrypted). */
  readonly key?: string;
  /** The bundle of the SVID's own trust domain (PEM, DER or SPIFFE bundle JSON). */
  readonly bundle?: string;
  /** Bundles of other trust domains, by trust domain name (or `spiffe://` ID), each a file path. */
  readonly federatedBundles?: Readonly<Record<string, string>>;
  /** Take the file names from a well-known agent's layout (needs `dir`). */
  readonly preset?: FileIdentityPreset;
  /** The directory of the files: relative paths and preset names are resolved against it. */
  readonly dir?: string;
  /** Watch the directories with fs.watch (default true); false polls instead. */
  readonly watch?: boolean;
  /** How often to poll when not watching, in ms (default 1000). */
  readonly pollInterval?: number;
  /**
   * Warn (the `expiring` event, the `sidecarless:identity:expiring` channel) when the SVID or
   * a bundle authority has less than this share of its lifetime left (default 0.2: 20 %).
   */
  readonly expiryWarning?: number;
}

const KNOWN: (keyof FileIdentityOptions)[] = [
  'expiryWarning',
  'certChain',
  'key',
  'bundle',
  'federatedBundles',
  'preset',
  'dir',
  'watch',
  'pollInterval',
];

function pathOption(field: string, value: unknown, dir: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw invalidOption(field, 'a file path', value);
  }
  return isAbsolute(value) ? value : resolve(dir, value);
}

/** Checks the options once and returns the absolute paths and watch settings. */
export function fileIdentityFiles(options: FileIdentityOptions): {
  files: IdentityFiles;
  watch: boolean;
  pollInterval: number;
  expiryWarning: number;
} {
  const opts = checkOptions<FileIdentityOptions>(options, KNOWN, 'fileIdentity');
  let preset: (typeof fileIdentityPresets)[FileIdentityPreset] | undefined;
  if (opts.preset !== undefined) {
    if (!Object.hasOwn(fileIdentityPresets, opts.preset)) {
      throw invalidOption('preset', `one of ${Object.keys(fileIdentityPresets).join(', ')}`, opts.preset);
    }
    // A preset without a directory would read from wherever the process happens to start.
    if (opts.dir === undefined)
      throw invalidOption('dir', `the directory of the ${opts.preset} files`, undefined);
    preset = fileIdentityPresets[opts.preset];
  }
  const dir = opts.dir === undefined ? process.cwd() : pathOption('dir', opts.dir, process.cwd());
  const pick = (field: 'certChain' | 'key' | 'bundle'): string => {
    const value = opts[field] ?? preset?.[field];
    if (value === undefined) {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `fileIdentity: option "${field}" is required (or give "preset" and "dir")`,
        { field },
      );
    }
    return pathOption(field, value, dir);
  };
  const federated: { trustDomain: TrustDomain; path: string }[] = [];
  if (opts.federatedBundles !== undefined) {
    const map = opts.federatedBundles;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw invalidOption('federatedBundles', 'an object of trust domain -> bundle file path', map);
    }
    for (const [name, path] of Object.entries(map)) {
      const trustDomain = TrustDomain.parse(name);
      if (federated.some((f) => f.trustDomain.equals(trustDomain))) {
        throw invalidOption('federatedBundles', 'one file per trust domain', name);
      }
      federated.push({ trustDomain, path: pathOption(`federatedBundles["${trustDomain.name}"]`, path, dir) });
    }
  }
  if (opts.watch !== undefined && typeof opts.watch !== 'boolean') {
    throw invalidOption('watch', 'a boolean', opts.watch);
  }
  const pollInterval = durationOption('pollInterval', opts.pollInterval, 1_000);
  if (pollInterval < 10) throw invalidOption('pollInterval', 'at least 10 ms', opts.pollInterval);
  return {
    files: Object.freeze({
      certChain: pick('certChain'),
      key: pick('key'),
      bundle: pick('bundle'),
      federated: Object.freeze(federated),
    }),
    watch: opts.watch ?? true,
    pollInterval,
    expiryWarning: expiryWarningOption(opts.expiryWarning),
  };
}
