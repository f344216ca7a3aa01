import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeResponse, encodeResponse } from '../../src/identity/workload-api-proto.js';
import { parseX509BundlesResponse, parseX509SvidResponse } from '../../src/identity/workload-api-response.js';
import { createLocalCa } from '../../src/index.js';
import { derOf, svidEntry } from '../../src/testing/fake-workload-api-messages.js';
import { check, typedOnly } from './settings.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ca.close());
const svid = ca.issue('/ns/demo/sa/app-ui');
const entry = svidEntry(svid, ca.bundle());
const good = encodeResponse('FetchX509SVID', { svids: [entry], crl: [], federated_bundles: {} });
const goodBundles = encodeResponse('FetchX509Bundles', {
  crl: [],
  bundles: { 'spiffe://cluster.local': derOf(ca.bundle()) },
});

function mutateBytes(bytes: Buffer) {
  return fc.oneof(
    fc
      .array(fc.tuple(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      })
      .map((flips) => {
        const copy = Buffer.from(bytes);
        for (const [at, x] of flips) copy[at] = (copy[at] as number) ^ x;
        return copy;
      }),
    fc.integer({ min: 0, max: bytes.length }).map((n) => bytes.subarray(0, n)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.concat([bytes, b])),
  );
}

// Fields replaced by odd values, well-formed on the wire: the decoder passes them, the parser judges.
const field = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  fc.constant(Buffer.from(svid.certChainPem())),
  fc.constant(entry.x509_svid),
  fc.constant(entry.x509_svid_key),
);
const structured = fc
  .record({
    spiffe_id: fc.constantFrom(entry.spiffe_id, '', 'spiffe://cluster.local/ns/x', 'not an id'),
    x509_svid: field,
    x509_svid_key: field,
    bundle: field,
    hint: fc.string({ maxLength: 4 }),
  })
  .map((e) => encodeResponse('FetchX509SVID', { svids: [e], crl: [], federated_bundles: {} }));

describe('fuzz: Workload API message decoding', () => {
  it('control: the well-formed messages decode and parse', () => {
    const decoded = decodeResponse('FetchX509SVID', good);
    expect('message' in decoded && parseX509SvidResponse(decoded.message).svids[0]?.id.toString()).toBe(
      svid.id.toString(),
    );
    const bundles = decodeResponse('FetchX509Bundles', goodBundles);
    expect('message' in bundles && parseX509BundlesResponse(bundles.message).trustDomains().length).toBe(1);
  });

  it('X509SVIDResponse: decoding never throws; parsing throws only typed errors', () => {
    check(
      'workload-api-svid-response',
      fc.property(fc.oneof(mutateBytes(good), structured), (bytes) => {
        const decoded = typedOnly(() => decodeResponse('FetchX509SVID', bytes));
        expect(decoded.ok).toBe(true);
        const value = decoded.ok ? decoded.value : undefined;
        if (value !== undefined && 'message' in value) {
          const parsed = typedOnly(() => parseX509SvidResponse(value.message));
          if (!parsed.ok) expect(parsed.code).toBe('ERR_WORKLOAD_API_RESPONSE_INVALID');
        }
      }),
      1_500,
    );
  });

  it('X509BundlesResponse: decoding never throws; parsing throws only typed errors', () => {
    check(
      'workload-api-bundles-response',
      fc.property(mutateBytes(goodBundles), (bytes) => {
        const decoded = typedOnly(() => decodeResponse('FetchX509Bundles', bytes));
        expect(decoded.ok).toBe(true);
        const value = decoded.ok ? decoded.value : undefined;
        if (value !== undefined && 'message' in value) {
          const parsed = typedOnly(() => parseX509BundlesResponse(value.message));
          if (!parsed.ok) expect(parsed.code).toBe('ERR_WORKLOAD_API_RESPONSE_INVALID');
        }
      }),
      1_500,
    );
  });
});
