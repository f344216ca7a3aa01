// The public types the fake Workload API's signatures use, taken from the package's main entry
// point (as public-types.ts does), so `sidecarless/testing` refers to `sidecarless`'s declarations.
export type { LocalCa, X509Bundle, X509Svid } from 'sidecarless';
