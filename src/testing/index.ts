// sidecarless/testing: fakes for users' tests. Each export is listed by name.
export type { BadSvid } from './bad-svid.js';
export { type BadSvidKind, badSvidKinds } from './bad-svid-kinds.js';
export { type FakePeerOptions, fakePeer } from './fake-peer.js';
export { createTestCa, type TestCa, type TestCaOptions } from './test-ca.js';
