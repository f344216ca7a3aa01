// The public types testing signatures use, taken from the package's main entry point, so the
// published types of `sidecarless/testing` refer to `sidecarless` (one declaration, not a copy).
export type { BundleSet, ErrorCode, LocalCa, LocalCaOptions, Peer, SpiffeId, X509Svid } from 'sidecarless';
