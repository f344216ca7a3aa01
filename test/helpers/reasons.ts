// The reason each bad-certificate kind of the testing kit is refused with, on this Node line: its
// own code, except the differences docs/errors.md documents ("Same certificate, same reason").
// test/tls/reason-inventory.test.ts asserts the table; other suites expect exactly these reasons.
import type { ErrorCode } from '../../src/index.js';
import { type BadSvidKind, badSvidKinds } from '../../src/testing/index.js';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
/** Node 20 and 22 read the peer chain from the legacy certificate object (src/tls/peer-chain.ts). */
export const LEGACY_CHAIN = NODE_MAJOR < 24;

/**
 * The documented differences: on Node 20 and 22 the chain node:tls exposes is linked the way
 * OpenSSL links issuers, so an intermediate that cannot issue (no keyCertSign) and the rest of a
 * misordered chain are not in it: the leaf is left without a path, `ERR_SVID_UNTRUSTED`, on both
 * sides. Node 24 exposes the chain as presented. Every other kind gives its own code on every line.
 */
export const LEGACY_REASONS: Partial<Record<BadSvidKind, ErrorCode>> = {
  'intermediate-no-key-cert-sign': 'ERR_SVID_UNTRUSTED',
  'chain-order': 'ERR_SVID_UNTRUSTED',
};

/** The code a peer presenting a `kind` chain is refused with, on this Node line, on either side. */
export function expectedReason(kind: BadSvidKind): ErrorCode {
  return (LEGACY_CHAIN ? LEGACY_REASONS[kind] : undefined) ?? badSvidKinds[kind].code;
}
