import type { SecureContext } from 'node:tls';
import type { WorkloadIdentity } from '../identity/source.js';
import { nodeTls as tls } from '../internal/builtins.js';
import { tlsMaterialOf } from '../tls/material.js';

const contexts = new WeakMap<WorkloadIdentity, SecureContext>();

/**
 * The client SecureContext of an identity snapshot, built once per identity generation and shared
 * by every connection made under it. Measured (docs/node-tls.md §1): building one costs 0.6-2.9 ms,
 * which per connection would take 40% off the handshake rate on Node 20.
 *
 * It holds no `ca`: the decision is sidecarless's (verifyServer), against the bundle of the server's
 * own trust domain, so OpenSSL's verdict against a merged list would be dead work (a signature
 * check per full handshake), and with no trusted authority Node also skips building the detailed
 * certificate object it hands `checkServerIdentity` (about 180 µs per full handshake on Node 24;
 * bench/README.md, pair). The server's whole chain stays exposed all the same (docs/node-tls.md §5).
 */
export function clientContextOf(identity: WorkloadIdentity): SecureContext {
  let context = contexts.get(identity);
  if (context === undefined) {
    const material = tlsMaterialOf(identity);
    context = tls.createSecureContext({ key: material.key, cert: material.cert });
    contexts.set(identity, context);
  }
  return context;
}
