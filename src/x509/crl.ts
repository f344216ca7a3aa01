// An empty CRL written with the DER writer of ./der.ts: what a server's TLS context needs
// (src/tls/material.ts), without loading an ASN.1 library on the server path.
import { type KeyObject, sign } from 'node:crypto';
import { encodeElement, encodeOid, encodeSmallInteger, encodeTime, TAG } from './der.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const ATTRIBUTES: Record<string, string> = { CN: '2.5.4.3', O: '2.5.4.10' };

/**
 * Builds and signs an empty CRL (version 2, no revoked certificates, no extensions, RFC 5280
 * §5.1) for the issuer named by `issuer` (`CN`/`O` attributes as UTF8String, one per RDN, in
 * order), signed ECDSA with SHA-256 by an EC `signingKey`; returns its DER.
 */
export function buildEmptyCrlDer(
  issuer: readonly (readonly ['CN' | 'O', string])[],
  signingKey: KeyObject,
  thisUpdate: Date,
  nextUpdate: Date,
): Buffer {
  if (signingKey.asymmetricKeyType !== 'ec') throw new Error('the empty CRL is signed with an EC key');
  const algorithm = encodeElement(TAG.sequence, encodeOid(ECDSA_WITH_SHA256));
  const name = encodeElement(
    TAG.sequence,
    ...issuer.map(([attr, value]) =>
      encodeElement(
        TAG.set,
        encodeElement(
          TAG.sequence,
          encodeOid(ATTRIBUTES[attr] as string),
          encodeElement(TAG.utf8String, Buffer.from(value, 'utf8')),
        ),
      ),
    ),
  );
  const tbs = encodeElement(
    TAG.sequence,
    encodeSmallInteger(1), // v2
    algorithm,
    name,
    encodeTime(thisUpdate),
    encodeTime(nextUpdate),
  );
  const signature = sign('sha256', tbs, signingKey);
  return encodeElement(
    TAG.sequence,
    tbs,
    algorithm,
    encodeElement(TAG.bitString, Buffer.from([0]), signature),
  );
}
