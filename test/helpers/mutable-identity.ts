// An identity source whose SVID and bundles a test swaps at will: what a SPIRE agent or istiod does
// to a workload when it rotates an SVID, removes a CA from a bundle, or revokes the identity.
import { IdentityPublisher, validateIdentityUpdate } from '../../src/identity/publisher.js';
import type { IdentitySource, ReadyOptions, WorkloadIdentity } from '../../src/identity/source.js';
import type { BundleSet } from '../../src/x509/bundle-set.js';
import type { X509Svid } from '../../src/x509/svid.js';

export interface MutableIdentity extends IdentitySource {
  /**
   * Publishes a new identity: the given SVID and/or bundles, the rest kept from the last update.
   * Validated as a real source would (the SVID must verify against the new bundles).
   */
  update(change: { svid?: X509Svid; bundles?: BundleSet }): WorkloadIdentity;
  /** Withdraws the identity: `current()` throws ERR_NO_IDENTITY until the next `update()`. */
  withdraw(reason?: string): void;
}

/** A mutable identity source starting with `svid` and `bundles`. */
export function mutableIdentity(svid: X509Svid, bundles: BundleSet): MutableIdentity {
  let last = { svid, bundles };
  const publisher = new IdentityPublisher(() => 'the test withdrew the identity');
  const update = (change: { svid?: X509Svid; bundles?: BundleSet }): WorkloadIdentity => {
    const next = { svid: change.svid ?? last.svid, bundles: change.bundles ?? last.bundles };
    validateIdentityUpdate([next.svid], next.bundles);
    last = next;
    return publisher.publish([next.svid], next.bundles);
  };
  update({});
  const close = async () => publisher.close();
  return {
    update,
    withdraw: (reason = 'revoked by the test') => publisher.withdraw(reason),
    ready: (options?: ReadyOptions) => publisher.ready(options),
    current: () => publisher.current(),
    subscribe: (listener) => publisher.subscribe(listener),
    onWithdrawn: (listener) => publisher.onWithdrawn(listener),
    close,
    [Symbol.asyncDispose]: close,
  };
}
