import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { inspect } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parseWorkloadApiAddress } from '../../src/identity/workload-api-address.js';
import {
  decodeResponse,
  METHOD_PATHS,
  type WorkloadApiMethod,
  type X509BundlesResponseMessage,
  type X509SvidResponseMessage,
} from '../../src/identity/workload-api-proto.js';
import { createLocalCa, X509Svid } from '../../src/index.js';
import { createFakeWorkloadApi } from '../../src/testing/fake-workload-api.js';
import { createTestCa } from '../../src/testing/index.js';
import { expectCodeAsync } from '../helpers/expect-code.js';
import { afterFile, startFake } from '../helpers/identity-sources.js';
import { assertNoKeyMaterial } from '../helpers/key-material.js';

interface RawResult<T> {
  messages: T[];
  status: grpc.StatusObject;
}

/** Calls the fake with plain grpc-js, as any client would, and collects `count` messages. */
function rawCall<T>(
  address: string,
  method: WorkloadApiMethod,
  header: string | undefined,
  count = 1,
): Promise<RawResult<T>> {
  const client = new grpc.Client(parseWorkloadApiAddress(address).target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (header !== undefined) metadata.set('workload.spiffe.io', header);
  const call = client.makeServerStreamRequest(
    METHOD_PATHS[method],
    () => Buffer.alloc(0),
    (bytes: Buffer) => {
      const decoded = decodeResponse(method, bytes);
      if ('undecodable' in decoded) throw new Error(decoded.undecodable);
      return decoded.message as T;
    },
    {},
    metadata,
  );
  const messages: T[] = [];
  return new Promise((resolve) => {
    call.on('data', (message: T) => {
      messages.push(message);
      if (messages.length === count) call.cancel();
    });
    call.on('error', () => {});
    call.on('status', (status) => {
      client.close();
      resolve({ messages, status });
    });
  });
}

describe('createFakeWorkloadApi: the security header', () => {
  it.each([
    { name: 'without the header', header: undefined },
    { name: 'with "false"', header: 'false' },
    { name: 'with "TRUE" (the value is case sensitive)', header: 'TRUE' },
  ])('refuses a call $name with INVALID_ARGUMENT, as a real agent does', async ({ header }) => {
    const fake = await startFake();
    for (const method of ['FetchX509SVID', 'FetchX509Bundles'] as const) {
      const { messages, status } = await rawCall(fake.address, method, header);
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toContain('workload.spiffe.io: true');
      expect(messages).toEqual([]);
    }
    expect(fake.calls()).toEqual({ FetchX509SVID: 1, FetchX509Bundles: 1, missingHeader: 2 });
  });

  it('serves a call with "workload.spiffe.io: true" (the passing control)', async () => {
    const fake = await startFake();
    const { messages, status } = await rawCall<X509SvidResponseMessage>(
      fake.address,
      'FetchX509SVID',
      'true',
    );
    expect(status.code).toBe(grpc.status.CANCELLED);
    expect(messages).toHaveLength(1);
    expect(fake.calls().missingHeader).toBe(0);
  });
});

describe('createFakeWorkloadApi: what it sends', () => {
  it('sends each SVID as concatenated DER, its key as PKCS#8 DER, its bundle, hint and federated bundles', async () => {
    const ca = createTestCa({ intermediate: true });
    const partner = createLocalCa({ trustDomain: 'partner.example' });
    afterFile(() => Promise.all([ca.close(), partner.close()]));
    const fake = await startFake({ ca, svids: ['/a', { path: '/b', hint: 'internal' }] });
    fake.setFederated('partner.example', partner.bundle());
    const { messages } = await rawCall<X509SvidResponseMessage>(fake.address, 'FetchX509SVID', 'true');
    const [message] = messages;
    expect(message?.svids.map((s) => [s.spiffe_id, s.hint])).toEqual([
      ['spiffe://cluster.local/a', ''],
      ['spiffe://cluster.local/b', 'internal'],
    ]);
    const entry = message?.svids[0];
    if (entry === undefined) throw new Error('no SVID');
    const svid = X509Svid.parse(entry.x509_svid, entry.x509_svid_key);
    expect(svid.certificates).toHaveLength(2);
    expect(svid.leaf.serialNumber).toBe(fake.svids()[0]?.leaf.serialNumber);
    expect(
      new X509Certificate(Buffer.from(entry.bundle)).raw.equals(ca.bundle().authorities[0]?.raw as Buffer),
    ).toBe(true);
    expect(Object.keys(message?.federated_bundles ?? {})).toEqual(['spiffe://partner.example']);

    const bundles = await rawCall<X509BundlesResponseMessage>(fake.address, 'FetchX509Bundles', 'true');
    expect(Object.keys(bundles.messages[0]?.bundles ?? {}).sort()).toEqual([
      'spiffe://cluster.local',
      'spiffe://partner.example',
    ]);
  });

  it('pushes the full state on every change to every open stream', async () => {
    const fake = await startFake({ svids: ['/a'] });
    const pending = rawCall<X509SvidResponseMessage>(fake.address, 'FetchX509SVID', 'true', 3);
    while (fake.openStreams() === 0) await new Promise((r) => setTimeout(r, 5));
    const [rotated] = fake.rotate();
    fake.setSvids(['/a', '/c']);
    const { messages } = await pending;
    expect(messages.map((m) => m.svids.length)).toEqual([1, 1, 2]);
    const second = messages[1]?.svids[0];
    expect(second && X509Svid.parse(second.x509_svid, second.x509_svid_key).leaf.serialNumber).toBe(
      rotated?.leaf.serialNumber,
    );
  });

  it('delays the first message of new streams', async () => {
    const fake = await startFake();
    fake.delayFirstResponse(300);
    const started = performance.now();
    const { messages } = await rawCall(fake.address, 'FetchX509SVID', 'true');
    // Timers never fire early: the lower bound is safe to assert, an upper bound would not be.
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(messages).toHaveLength(1);
  });

  it('never shows key material in inspect()', async () => {
    const fake = await startFake({ svids: ['/a'] });
    expect(inspect(fake)).toMatch(
      /^FakeWorkloadApi\(unix:\/\/\/.*agent\.sock, 1 SVID\(s\), 0 open stream\(s\)\)$/,
    );
    assertNoKeyMaterial(inspect(fake, { depth: 6 }), [fake.svids()[0]?.privateKey as never]);
  });
});

describe('createFakeWorkloadApi: options and lifecycle', () => {
  it('refuses bad options', async () => {
    await expectCodeAsync(() => createFakeWorkloadApi({ transport: 'udp' as never }), 'ERR_OPTION_INVALID');
    await expectCodeAsync(() => createFakeWorkloadApi({ svids: [] }), 'ERR_OPTION_INVALID');
    await expectCodeAsync(() => createFakeWorkloadApi({ svids: [42 as never] }), 'ERR_OPTION_INVALID');
    await expectCodeAsync(() => createFakeWorkloadApi({ svids: ['no-slash'] }), 'ERR_SPIFFE_ID_INVALID');
    await expectCodeAsync(() => createFakeWorkloadApi({ ttl: 0 }), 'ERR_OPTION_INVALID');
    await expectCodeAsync(() => createFakeWorkloadApi({ port: 1 } as never), 'ERR_OPTION_INVALID');
  });

  it('refuses unknown malformed kinds and statuses', async () => {
    const fake = await startFake();
    expect(() => fake.sendMalformed('nope' as never)).toThrow(/unknown malformed response kind/);
    expect(() => fake.fail('OK' as never)).toThrow(/option "status"/);
  });

  it('closes idempotently: ends streams, removes the socket directory, closes the CA it made', async () => {
    const fake = await createFakeWorkloadApi();
    const socket = fake.address.slice('unix://'.length);
    expect(existsSync(socket)).toBe(true);
    const pending = rawCall(fake.address, 'FetchX509SVID', 'true', 2);
    while (fake.openStreams() === 0) await new Promise((r) => setTimeout(r, 5));
    await fake.close();
    await fake.close();
    const { status } = await pending;
    expect(status.code).not.toBe(grpc.status.OK);
    expect(existsSync(dirname(socket))).toBe(false);
    expect(() => fake.ca.issue('/x')).toThrow(/closed/);
  });

  it('leaves a given CA open', async () => {
    const ca = createLocalCa({ trustDomain: 'example.org' });
    afterFile(() => ca.close());
    const fake = await createFakeWorkloadApi({ ca, svids: ['/x'] });
    await fake.close();
    expect(ca.issue('/y').id.toString()).toBe('spiffe://example.org/y');
  });
});
