import { inspect } from 'node:util';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ObservedIdentitySource,
  workloadApiIdentity,
} from '../../src/identity/workload-api-identity.js';
import type { WorkloadIdentity } from '../../src/index.js';
import type { FakeWorkloadApi } from '../../src/testing/fake-workload-api.js';
import {
  type MalformedResponseKind,
  malformedResponseKinds,
} from '../../src/testing/fake-workload-api-messages.js';
import { nextUpdate, type Recorded, record, startFake, track } from '../helpers/identity-sources.js';
import { assertNoKeyMaterial } from '../helpers/key-material.js';

// What each malformed message must be refused for: the field named in the error, and the code of
// the lower-level error (the cause), when there is one.
const expected: Partial<Record<MalformedResponseKind, { field: RegExp; cause?: string }>> = {
  'not-protobuf': { field: /not a valid protobuf message/ },
  'no-svids': { field: /svids must hold at least one X509SVID/ },
  'missing-spiffe-id': { field: /svids\[0\]\.spiffe_id is required/ },
  'missing-certificate': { field: /svids\[0\]\.x509_svid is required/ },
  'missing-key': { field: /svids\[0\]\.x509_svid_key is required/ },
  'missing-bundle': { field: /svids\[0\]\.bundle is required/ },
  'id-mismatch': {
    field:
      /svids\[0\]\.spiffe_id "spiffe:\/\/cluster\.local\/ns\/other\/sa\/impostor" is not the certificate's URI SAN/,
  },
  'key-mismatch': { field: /svids\[0\] is not a valid X509-SVID/, cause: 'ERR_KEY_MISMATCH' },
  'garbage-certificate': { field: /svids\[0\] is not a valid X509-SVID/, cause: 'ERR_CERTIFICATE_INVALID' },
  'garbage-key': { field: /svids\[0\] is not a valid X509-SVID/, cause: 'ERR_KEY_INVALID' },
  'pem-certificate': { field: /svids\[0\]\.x509_svid must be ASN\.1 DER, got PEM text/ },
  'encrypted-key': { field: /svids\[0\] is not a valid X509-SVID/, cause: 'ERR_KEY_INVALID' },
  'expired-svid': { field: /svids\[0\] \(spiffe:.*\) does not verify/, cause: 'ERR_SVID_EXPIRED' },
  'leaf-is-ca': { field: /svids\[0\] is not a valid X509-SVID/, cause: 'ERR_SVID_LEAF_IS_CA' },
  'untrusted-chain': { field: /svids\[0\] \(spiffe:.*\) does not verify/, cause: 'ERR_SVID_UNTRUSTED' },
  'second-svid-invalid': { field: /svids\[1\]\.x509_svid_key is required/ },
  'federated-own-trust-domain': {
    field: /federated_bundles\["spiffe:\/\/cluster\.local"\] is the workload's own trust domain; refused/,
  },
  'federated-bad-key': {
    field: /federated_bundles\["spiffe:\/\/partner\.example\/ns\/x"\] key is not a trust domain SPIFFE ID/,
  },
  'federated-garbage-bundle': {
    field: /federated_bundles\["spiffe:\/\/partner\.example"\] is not a valid bundle/,
  },
};

const svidKinds = (Object.keys(malformedResponseKinds) as MalformedResponseKind[]).filter(
  (kind) => malformedResponseKinds[kind].stream !== 'FetchX509Bundles',
);

describe('workloadApiIdentity: a malformed message is discarded whole, the last good identity stays', () => {
  let fake: FakeWorkloadApi;
  let source: ObservedIdentitySource;
  let events: Recorded<WorkloadIdentity>;
  let good: WorkloadIdentity;

  beforeAll(async () => {
    fake = await startFake({ svids: ['/ns/demo/sa/web'] });
    source = track(workloadApiIdentity({ address: fake.address, retry: { initialDelay: 10, maxDelay: 50 } }));
    events = record(source);
    good = await source.ready({ timeout: 5_000 });
  });

  it('covers every kind of the FetchX509SVID stream', () => {
    expect(Object.keys(expected).sort()).toEqual([...svidKinds].sort());
  });

  it.each(svidKinds)('%s', async (kind) => {
    const before = events.errors.length;
    expect(fake.sendMalformed(kind)).toBe(1);
    await vi.waitFor(() => expect(events.errors.length).toBe(before + 1));
    const err = events.errors[before];
    expect(err?.code).toBe('ERR_WORKLOAD_API_RESPONSE_INVALID');
    expect(err?.message).toMatch(/^Workload API X509SVIDResponse discarded: /);
    expect(err?.message).toMatch(expected[kind]?.field ?? /never/);
    const cause = expected[kind]?.cause;
    if (cause !== undefined) expect((err?.cause as { code?: string } | undefined)?.code).toBe(cause);
    // Nothing partial became current, nothing was published, the stream stays open.
    expect(source.current()).toBe(good);
    expect(events.updates).toEqual([good]);
    expect(fake.openStreams()).toBe(1);
    const text = `${err?.message}\n${JSON.stringify(err?.detail)}\n${inspect(err, { depth: 10 })}`;
    assertNoKeyMaterial(text, [good.svid.privateKey], `the ${kind} error`);
  });

  it('accepts the next good message', async () => {
    const next = nextUpdate(source);
    fake.rotate();
    const identity = await next;
    expect(identity.generation).toBe(good.generation + 1);
    expect(events.withdrawn).toEqual([]);
  });
});
