// Identities for client tests.
import type { IdentitySource, WorkloadIdentity } from '../../src/identity/source.js';
import type { BundleSet } from '../../src/x509/bundle-set.js';
import type { X509Svid } from '../../src/x509/svid.js';

/**
 * An identity source that serves `svid` with `bundles` as they are, without the validation a real
 * source does: for scenarios whose bundles are odd on purpose (an expired root, another trust
 * domain's CA trusted for ours), where the client's own SVID is beside the point.
 */
export function fixedIdentity(svid: X509Svid, bundles: BundleSet): IdentitySource {
  const identity: WorkloadIdentity = Object.freeze({ svid, svids: [svid], bundles, generation: 1 });
  const close = async () => {};
  return {
    ready: async () => identity,
    current: () => identity,
    subscribe: () => () => {},
    close,
    [Symbol.asyncDispose]: close,
  };
}
