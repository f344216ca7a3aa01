// sidecarless: every public export, listed by name. Nothing else is public.
export type { Peer } from './authz/peer.js';
export { type ErrorCode, type ErrorDetail, isSidecarlessError, SidecarlessError } from './errors.js';
export {
  createLocalCa,
  type IssueOptions,
  type KeyType,
  type LocalCa,
  type LocalCaCertificate,
  type LocalCaOptions,
  type LocalIdentityOptions,
} from './identity/local-ca.js';
export type { BundleSource, IdentitySource, ReadyOptions, WorkloadIdentity } from './identity/source.js';
export { type StaticIdentityOptions, staticIdentity } from './identity/static-identity.js';
export { MAX_SPIFFE_ID_BYTES, parseSpiffeId, SpiffeId } from './spiffe/spiffe-id.js';
export { MAX_TRUST_DOMAIN_BYTES, TrustDomain } from './spiffe/trust-domain.js';
export {
  type BundleJwk,
  MAX_BUNDLE_AUTHORITIES,
  X509Bundle,
  type X509BundleParseOptions,
} from './x509/bundle.js';
export { BundleSet } from './x509/bundle-set.js';
export { MAX_CERTIFICATE_BYTES } from './x509/certificate.js';
export type { PrivateKeyInput } from './x509/private-key.js';
export type { CertificateInput } from './x509/read-certificates.js';
export { X509Svid, type X509SvidParseOptions } from './x509/svid.js';
export {
  MAX_CHAIN_LENGTH,
  type VerifiedPeerChain,
  type VerifyPeerChainOptions,
  verifyPeerChain,
} from './x509/verify.js';
