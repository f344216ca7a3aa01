import type { ErrorCode } from './public-types.js';

/**
 * Every kind of bad certificate chain the test CA can build, with the code `verifyPeerChain`
 * must refuse it with and what is wrong with it.
 *
 * @example
 * ```ts
 * import { badSvidKinds } from 'sidecarless/testing';
 * for (const [kind, { code }] of Object.entries(badSvidKinds)) console.log(kind, code);
 * ```
 */
export const badSvidKinds = Object.freeze({
  'no-uri-san': { code: 'ERR_SVID_NO_URI_SAN', description: 'leaf without any SAN' },
  'two-uri-sans': { code: 'ERR_SVID_MULTIPLE_URI_SANS', description: 'leaf with two URI SANs' },
  'dns-only-san': { code: 'ERR_SVID_NO_URI_SAN', description: 'leaf with a DNS SAN and no URI SAN' },
  'non-spiffe-scheme': { code: 'ERR_SVID_ID_INVALID', description: 'URI SAN with an https:// scheme' },
  'uppercase-trust-domain': {
    code: 'ERR_SVID_ID_INVALID',
    description: 'URI SAN with an uppercase trust domain',
  },
  'root-path': { code: 'ERR_SVID_ID_NO_PATH', description: 'URI SAN that is a trust domain ID (no path)' },
  'query-in-id': { code: 'ERR_SVID_ID_INVALID', description: 'URI SAN with a query' },
  'fragment-in-id': { code: 'ERR_SVID_ID_INVALID', description: 'URI SAN with a fragment' },
  'percent-encoded-id': { code: 'ERR_SVID_ID_INVALID', description: 'URI SAN with percent-encoding' },
  'id-too-long': { code: 'ERR_SVID_ID_INVALID', description: 'URI SAN longer than 2048 bytes' },
  'leaf-is-ca': { code: 'ERR_SVID_LEAF_IS_CA', description: 'leaf with basicConstraints cA=true' },
  'leaf-key-cert-sign': {
    code: 'ERR_SVID_LEAF_KEY_CERT_SIGN',
    description: 'leaf with keyUsage keyCertSign',
  },
  'leaf-crl-sign': { code: 'ERR_SVID_LEAF_CRL_SIGN', description: 'leaf with keyUsage cRLSign' },
  'no-digital-signature': {
    code: 'ERR_SVID_NO_DIGITAL_SIGNATURE',
    description: 'leaf keyUsage without digitalSignature',
  },
  'no-key-usage': { code: 'ERR_SVID_NO_KEY_USAGE', description: 'leaf without a keyUsage extension' },
  expired: { code: 'ERR_SVID_EXPIRED', description: 'leaf whose notAfter has passed' },
  'not-yet-valid': { code: 'ERR_SVID_NOT_YET_VALID', description: 'leaf whose notBefore is in the future' },
  'wrong-root': {
    code: 'ERR_SVID_UNTRUSTED',
    description: 'leaf signed by another CA of the same trust domain (not in the bundle)',
  },
  'foreign-trust-domain-ca': {
    code: 'ERR_SVID_UNTRUSTED',
    description:
      "leaf claiming our trust domain, signed by another trust domain's CA that is trusted for that domain",
  },
  'intermediate-not-ca': { code: 'ERR_SVID_SIGNER_NOT_CA', description: 'intermediate with cA=false' },
  'intermediate-no-key-cert-sign': {
    code: 'ERR_SVID_SIGNER_NO_KEY_CERT_SIGN',
    description: 'intermediate whose keyUsage lacks keyCertSign',
  },
  'intermediate-expired': {
    code: 'ERR_SVID_SIGNER_EXPIRED',
    description: 'intermediate whose notAfter has passed',
  },
  'root-expired': { code: 'ERR_SVID_AUTHORITY_EXPIRED', description: 'expired root in the bundle' },
  'path-len-exceeded': {
    code: 'ERR_SVID_PATH_LEN',
    description: 'intermediate with pathLen 0 above another intermediate',
  },
  'name-constraint-violated': {
    code: 'ERR_SVID_NAME_CONSTRAINT',
    description: 'intermediate permitting only URIs of another host signs a leaf of our trust domain',
  },
  'unknown-critical-extension': {
    code: 'ERR_SVID_UNKNOWN_CRITICAL_EXTENSION',
    description: 'leaf with an unknown extension marked critical',
  },
  'chain-too-long': {
    code: 'ERR_SVID_CHAIN_TOO_LONG',
    description: 'leaf plus 8 intermediates (9 certificates)',
  },
  'sha1-signature': { code: 'ERR_SVID_WEAK_ALGORITHM', description: 'leaf signed with ecdsa-with-SHA1' },
  'rsa-1024': { code: 'ERR_SVID_WEAK_KEY', description: 'leaf with a 1024-bit RSA key' },
  'explicit-curve': {
    code: 'ERR_SVID_EXPLICIT_CURVE',
    description: 'leaf whose P-256 key spells out its curve parameters instead of naming the curve',
  },
  'intermediate-explicit-curve': {
    code: 'ERR_SVID_EXPLICIT_CURVE',
    description: 'intermediate whose P-256 key spells out its curve parameters',
  },
  'chain-order': {
    code: 'ERR_SVID_CHAIN_ORDER',
    description: 'two intermediates presented in the wrong order',
  },
  'signature-tampered': {
    code: 'ERR_SVID_BAD_SIGNATURE',
    description: 'leaf whose signature was altered after signing (issued by an intermediate)',
  },
  'certificate-too-large': {
    code: 'ERR_SVID_CERTIFICATE_TOO_LARGE',
    description: 'leaf over the 16 KiB certificate size limit',
  },
} as const satisfies Record<string, { code: ErrorCode; description: string }>);

/**
 * A kind of bad certificate chain; see {@link badSvidKinds}.
 * @example
 * ```ts
 * import { type BadSvidKind, createTestCa } from 'sidecarless/testing';
 * const kinds: BadSvidKind[] = ['leaf-is-ca', 'foreign-trust-domain-ca'];
 * const ca = createTestCa();
 * const chains = kinds.map((kind) => ca.issueBad(kind));
 * ```
 */
export type BadSvidKind = keyof typeof badSvidKinds;
