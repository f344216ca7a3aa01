import { SidecarlessError } from '../errors.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { X509Bundle } from '../x509/bundle.js';
import { BundleSet } from '../x509/bundle-set.js';
import type { PrivateKeyInput } from '../x509/private-key.js';
import type { CertificateInput } from '../x509/read-certificates.js';
import { X509Svid } from '../x509/svid.js';
import { expiryWarningOption } from './expiry-watch.js';
import { IdentityPublisher, validateIdentityUpdate } from './publisher.js';
import type { IdentitySource, ReadyOptions, WorkloadIdentity } from './source.js';
import { ExpiryGuard } from './source-events.js';

/**
 * Options of {@link staticIdentity}: an SVID (or its chain and key) and the bundles to trust.
 * @example
 * ```ts
 * import { createLocalCa, staticIdentity } from 'sidecarless';
 * const ca = createLocalCa({ trustDomain: 'td' });
 * const identity = staticIdentity({ svid: ca.issue('/job'), bundles: ca.bundle() });
 * ```
 */
export interface StaticIdentityOptions {
  /** The SVID; or give `certChain` and `key` instead. */
  readonly svid?: X509Svid;
  /** The SVID's chain, leaf first (PEM, DER, concatenated DER, or `X509Certificate`s). */
  readonly certChain?: CertificateInput;
  /** The SVID's private key (PEM, DER or `KeyObject`). */
  readonly key?: PrivateKeyInput;
  /** The trusted bundles: a `BundleSet`, one `X509Bundle`, or a list of them. */
  readonly bundles: BundleSet | X509Bundle | readonly X509Bundle[];
  /**
   * Warn on the `sidecarless:identity:expiring` channel when the SVID or a bundle authority has
   * less than this share of its lifetime left (default 0.2: 20 %). A static SVID never rotates.
   */
  readonly expiryWarning?: number;
}

const KNOWN: (keyof StaticIdentityOptions)[] = ['svid', 'certChain', 'key', 'bundles', 'expiryWarning'];

function toBundleSet(value: unknown): BundleSet {
  if (value instanceof BundleSet) return value;
  if (value instanceof X509Bundle) return BundleSet.of(value);
  if (Array.isArray(value) && value.every((b) => b instanceof X509Bundle)) return BundleSet.of(...value);
  throw invalidOption('bundles', 'a BundleSet, an X509Bundle or a list of X509Bundles', value);
}

/**
 * An identity that never rotates: for tests, scripts, and certificates managed outside the
 * process. Everything is validated at construction: the SVID must verify against the bundle of
 * its own trust domain now. Once the SVID expires, `current()` throws `ERR_NO_IDENTITY`.
 *
 * @param options - the SVID or its parts, and the bundles
 * @throws SidecarlessError `ERR_OPTION_INVALID` for a malformed option, `ERR_SVID_*`,
 *   `ERR_KEY_*`, `ERR_PEM_INVALID` or `ERR_CERTIFICATE_INVALID` for invalid material
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { staticIdentity, X509Bundle } from 'sidecarless';
 * const identity = staticIdentity({
 *   certChain: readFileSync('/var/run/secrets/tls.crt'),
 *   key: readFileSync('/var/run/secrets/tls.key'),
 *   bundles: X509Bundle.parse('cluster.local', readFileSync('/var/run/secrets/ca.crt')),
 * });
 * ```
 */
export function staticIdentity(options: StaticIdentityOptions): IdentitySource {
  const opts = checkOptions<StaticIdentityOptions>(options, KNOWN, 'staticIdentity');
  const bundles = toBundleSet(opts.bundles);
  let svid: X509Svid;
  if (opts.svid !== undefined) {
    if (opts.certChain !== undefined || opts.key !== undefined) {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        'staticIdentity: give either "svid" or "certChain" and "key", not both',
        {
          field: 'svid',
        },
      );
    }
    if (!(opts.svid instanceof X509Svid)) throw invalidOption('svid', 'an X509Svid', opts.svid);
    svid = opts.svid;
  } else {
    if (opts.certChain === undefined)
      throw invalidOption('certChain', 'the SVID certificate chain', undefined);
    if (opts.key === undefined) throw invalidOption('key', 'the SVID private key', undefined);
    svid = X509Svid.parse(opts.certChain, opts.key, { source: 'option "certChain"' });
  }
  validateIdentityUpdate([svid], bundles);
  const publisher = new IdentityPublisher(
    () => `the static SVID ${svid.id} expired at ${svid.notAfter.toISOString()}`,
    { source: `staticIdentity ${svid.id}`, expiryWarning: expiryWarningOption(opts.expiryWarning) },
  );
  // Withdrawn when it expires, so servers close the connections it made (an unref'd timer).
  const expiry = new ExpiryGuard(publisher, () => {});
  expiry.arm(publisher.publish([svid], bundles));

  const current = (): WorkloadIdentity => {
    expiry.check();
    return publisher.current();
  };
  const close = async () => {
    expiry.cancel();
    publisher.close();
  };
  return Object.freeze({
    // A static identity never arrives later: ready() settles at once.
    ready: (_options?: ReadyOptions) => {
      try {
        return Promise.resolve(current());
      } catch (err) {
        return Promise.reject(err);
      }
    },
    current,
    subscribe: (listener: (identity: WorkloadIdentity) => void) => publisher.subscribe(listener),
    onWithdrawn: (listener: (error: SidecarlessError) => void) => publisher.onWithdrawn(listener),
    close,
    [Symbol.asyncDispose]: close,
  });
}
