// sidecarless/testing: fakes for users' tests. Each export is listed by name.
export type { BadSvid } from './bad-svid.js';
export { type BadSvidKind, badSvidKinds } from './bad-svid-kinds.js';
export { type FakePeerOptions, fakePeer } from './fake-peer.js';
export {
  createFakeWorkloadApi,
  type FakeSvidSpec,
  type FakeWorkloadApi,
  type FakeWorkloadApiCalls,
  type FakeWorkloadApiOptions,
  type FakeWorkloadApiStatus,
} from './fake-workload-api.js';
export { type MalformedResponseKind, malformedResponseKinds } from './fake-workload-api-messages.js';
export { createTestCa, type TestCa, type TestCaOptions } from './test-ca.js';
