import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { WorkloadIdentity } from '../identity/source.js';
import { buildEmptyCrlDer } from '../x509/crl.js';
import { encodePem } from '../x509/pem.js';
import { privateKeyPemOf } from '../x509/svid.js';

/** What node:tls needs of an identity, encoded once per identity snapshot. */
export interface TlsMaterial {
  readonly identity: WorkloadIdentity;
  /** The default SVID's key, PKCS#8 PEM. Never logged. */
  readonly key: string;
  /** The default SVID's chain, leaf first, PEM. */
  readonly cert: string;
  /** Every trusted authority of every bundle, PEM: what OpenSSL builds paths to and advertises. */
  readonly ca: readonly string[];
}

const cache = new WeakMap<WorkloadIdentity, TlsMaterial>();

/** The TLS material of an identity snapshot; encoded once (snapshots are immutable). */
export function tlsMaterialOf(identity: WorkloadIdentity): TlsMaterial {
  let material = cache.get(identity);
  if (material === undefined) {
    const ca = identity.bundles.bundles().flatMap((b) => b.authorities.map((a) => a.toString()));
    material = Object.freeze({
      identity,
      key: privateKeyPemOf(identity.svid),
      cert: identity.svid.certChainPem(),
      ca: Object.freeze(ca),
    });
    cache.set(identity, material);
  }
  return material;
}

let noMatchCrl: string | undefined;

/**
 * An empty CRL from an issuer that exists nowhere else. Given to a server's context, it turns on
 * OpenSSL's CRL checks, which then fail for every client chain (`UNABLE_TO_GET_CRL`) after the
 * chain is built. Measured (Node 20.20, 24.21): a verified client's chain is not exposed on Node 24,
 * a failed one is, on both. So OpenSSL still advertises the real CA names (clients that filter
 * their certificate by them keep working) and sidecarless verifies the whole exposed chain itself,
 * anchored per trust domain. Re-test on every Node major.
 */
export function noMatchCrlPem(): string {
  if (noMatchCrl === undefined) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = Date.now();
    const der = buildEmptyCrlDer(
      [
        ['O', 'sidecarless'],
        ['CN', `no CRL issuer ${randomBytes(12).toString('hex')}`],
      ],
      privateKey,
      new Date(now - 3_600_000),
      new Date(now + 100 * 365 * 86_400_000),
    );
    noMatchCrl = encodePem('X509 CRL', der);
  }
  return noMatchCrl;
}
