// gRPC over the library's mTLS: real grpc-js servers and clients on loopback, real handshakes,
// certificates from the library's own CAs. The forgeries are the case grpc-js's own TLS accepts:
// a federated partner's root signing an ID in our trust domain.

import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { setCallPeer } from '../../src/grpc/connections.js';
import { createMtlsChannelCredentials, createMtlsGrpcServer, getGrpcPeer } from '../../src/grpc/index.js';
import { THIN_CALL_FITS, thinCallFits } from '../../src/grpc/server.js';
import { createLocalCa } from '../../src/index.js';
import type { AuthorizationEvent, RejectEvent } from '../../src/observe/channels.js';
import { fakePeer } from '../../src/testing/index.js';
import { makeLeaf, rootSigner } from '../helpers/certs.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { onCleanup, record } from '../helpers/server.js';
import { BoardsClient, chat, clientOf, serve, service, stream, unary } from './support.js';

const ours = createLocalCa({ trustDomain: 'cluster.local' });
const partner = createLocalCa({ trustDomain: 'partner.example' });
afterAll(async () => {
  await ours.close();
  await partner.close();
});

const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const federated = { federatedBundles: partner.bundles().bundles() };

const boardsIdentity = () => ours.identity('/ns/demo/sa/boards', federated);
const uiIdentity = () => ours.identity('/ns/demo/sa/app-ui', federated);
const uiCredentials = (expect: string = BOARDS) =>
  createMtlsChannelCredentials({ identity: uiIdentity(), expect });

const pem = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;

/** A certificate for an ID of our trust domain, signed by the partner's root (which we trust for partner.example only). */
function forged(id: string) {
  const leaf = makeLeaf(rootSigner(partner), { uris: [id] });
  return {
    chain: Buffer.from(pem(leaf.der)),
    key: Buffer.from(leaf.key.export({ format: 'pem', type: 'pkcs8' }) as string),
  };
}

/** Every bundle we trust, merged: the CA list grpc-js's own TLS would verify against. */
const mergedRoots = Buffer.from(ours.bundle().toPem() + partner.bundle().toPem());

describe('createMtlsGrpcServer with createMtlsChannelCredentials', () => {
  it('serves a unary call and shows handlers the verified caller', async () => {
    const served = await serve({ identity: boardsIdentity() });
    const peers = record(served.listener, 'peer');
    const client = clientOf(served.port, uiCredentials());
    const reply = await unary(client, 'hello', { board: 7 });
    expect(reply).toEqual({ ok: true, value: { id: UI, mtls: true, request: { board: 7 } } });
    expect(peers).toHaveLength(1);
    // A second call rides the same connection.
    expect(await unary(client, 'hello')).toMatchObject({ ok: true, value: { id: UI } });
    expect(peers).toHaveLength(1);
    expect(served.listener.describe().edges[0]).toMatchObject({ source: UI, requests: 2 });
  });

  it('serves a server-streaming call, each message from the handler that saw the caller', async () => {
    const served = await serve({ identity: boardsIdentity() });
    const client = clientOf(served.port, uiCredentials());
    const got = await stream(client);
    expect(got).toEqual({
      ok: true,
      value: [0, 1, 2].map((i) => ({ i, id: UI, mtls: true })),
    });
  });

  it('authorizes each call by its method path: a denied call is PERMISSION_DENIED and no handler runs', async () => {
    const served = await serve({
      identity: boardsIdentity(),
      authorize: { '/demo.Boards/*': UI, '/demo.Admin/*': 'spiffe://cluster.local/ns/ops/*' },
    });
    const decisions = record<AuthorizationEvent>(served.listener, 'authorization');
    const client = clientOf(served.port, uiCredentials());
    expect(await unary(client, 'hello')).toMatchObject({ ok: true });
    const denied = await unary(client, 'reset');
    expect(denied).toEqual({
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details: 'sidecarless: peer_not_allowed',
    });
    expect(served.calls).toEqual({ hello: 1, list: 0, reset: 0, chat: 0 });
    expect(decisions.map((d) => [d.path, d.allowed, d.rule])).toEqual([
      ['/demo.Boards/Hello', true, '/demo.Boards/*'],
      ['/demo.Admin/Reset', false, '/demo.Admin/*'],
    ]);
    // The connection stays up: the next allowed call is served.
    expect(await unary(client, 'hello')).toMatchObject({ ok: true });
    const ops = clientOf(
      served.port,
      createMtlsChannelCredentials({ identity: ours.identity('/ns/ops/sa/admin'), expect: BOARDS }),
    );
    expect(await unary(ops, 'reset')).toEqual({
      ok: true,
      value: { id: 'spiffe://cluster.local/ns/ops/sa/admin', mtls: true },
    });
    expect(served.listener.describe().totals.denied).toBe(1);
  });

  it("decisions kept per connection and path: every call still reports and counts, another peer's connection decides for itself", async () => {
    const served = await serve({
      identity: boardsIdentity(),
      authorize: { '/demo.Boards/*': UI, '/demo.Admin/*': 'spiffe://cluster.local/ns/ops/*' },
    });
    const decisions = record<AuthorizationEvent>(served.listener, 'authorization');
    const client = clientOf(served.port, uiCredentials());
    for (let i = 0; i < 3; i++) {
      expect(await unary(client, 'hello')).toMatchObject({ ok: true });
      expect(await unary(client, 'reset')).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    }
    expect(decisions.map((d) => [d.path, d.allowed, d.peer])).toEqual(
      Array.from({ length: 3 }, () => [
        ['/demo.Boards/Hello', true, UI],
        ['/demo.Admin/Reset', false, UI],
      ]).flat(),
    );
    expect(served.listener.describe().totals.denied).toBe(3);
    expect(served.listener.describe().edges[0]).toMatchObject({ source: UI, requests: 6 });
    // Same paths, another peer, another connection: its own decisions.
    const OPS = 'spiffe://cluster.local/ns/ops/sa/admin';
    const ops = clientOf(
      served.port,
      createMtlsChannelCredentials({ identity: ours.identity('/ns/ops/sa/admin'), expect: BOARDS }),
    );
    expect(await unary(ops, 'reset')).toMatchObject({ ok: true, value: { id: OPS } });
    expect(await unary(ops, 'hello')).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await unary(client, 'reset')).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(served.calls).toEqual({ hello: 3, list: 0, reset: 1, chat: 0 });
  });

  it('deny rules and a compiled policy apply to gRPC paths', async () => {
    const served = await serve({
      identity: boardsIdentity(),
      authorize: { '*': 'spiffe://cluster.local/*' },
      deny: { '/demo.Boards/List': UI },
    });
    const client = clientOf(served.port, uiCredentials());
    expect(await unary(client, 'hello')).toMatchObject({ ok: true });
    expect(await stream(client)).toEqual({
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details: 'sidecarless: denied_by_rule',
    });
    expect(served.calls.list).toBe(0);
  });

  it('STRICT: a client without a certificate, and a plaintext client, get UNAVAILABLE at connect', async () => {
    const served = await serve({ identity: boardsIdentity() });
    const rejects = record<RejectEvent>(served.listener, 'reject');
    const noCert = clientOf(
      served.port,
      grpc.credentials.createSsl(Buffer.from(ours.bundle().toPem()), null, null, {
        checkServerIdentity: () => undefined,
      }),
    );
    expect(await unary(noCert, 'hello')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    const plain = clientOf(served.port, grpc.credentials.createInsecure());
    expect(await unary(plain, 'hello')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(served.calls.hello).toBe(0);
    expect(rejects.map((r) => r.reason)).toEqual(
      expect.arrayContaining(['ERR_NO_CLIENT_CERTIFICATE', 'ERR_PLAINTEXT_REFUSED']),
    );
  });

  it('the channel refuses a server whose ID is not the expected one', async () => {
    const served = await serve({ identity: boardsIdentity() });
    const client = clientOf(served.port, uiCredentials('spiffe://cluster.local/ns/demo/sa/other'));
    const outcome = await unary(client, 'hello');
    expect(outcome).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    // grpc-js puts the connection error's message in the details.
    expect((outcome as { details: string }).details).toContain(
      `the server presented ${BOARDS}, but spiffe://cluster.local/ns/demo/sa/other was expected`,
    );
    expect(served.calls.hello).toBe(0);
  });

  it("a caller's metadata cannot name a peer: getGrpcPeer reads only what the gate recorded", async () => {
    const served = await serve({ identity: boardsIdentity() });
    const client = clientOf(served.port, uiCredentials());
    const metadata = new grpc.Metadata();
    metadata.set('x-spiffe-id', 'spiffe://cluster.local/ns/ops/sa/admin');
    metadata.set('x-forwarded-client-cert', 'URI=spiffe://cluster.local/ns/ops/sa/admin');
    expect(await unary(client, 'hello', {}, metadata)).toMatchObject({ ok: true, value: { id: UI } });
    expect(() => getGrpcPeer({ metadata: new grpc.Metadata() })).toThrow(
      expect.objectContaining({ code: 'ERR_NO_PEER' }),
    );
  });

  it("the recorded peer stays on the call's own metadata: not in a clone, a derived object, or anything sent", () => {
    const peer = fakePeer(UI);
    const metadata = new grpc.Metadata();
    metadata.set('x-board', '7');
    setCallPeer(metadata, peer);
    expect(getGrpcPeer({ metadata })).toBe(peer);
    for (const other of [metadata.clone(), Object.create(metadata) as grpc.Metadata]) {
      expect(() => getGrpcPeer({ metadata: other })).toThrow(
        expect.objectContaining({ code: 'ERR_NO_PEER' }),
      );
    }
    expect(metadata.getMap()).toEqual({ 'x-board': '7' });
    expect(Object.keys(metadata.toHttp2Headers())).toEqual(['x-board']);
    expect(JSON.stringify(metadata.toJSON())).not.toContain('spiffe');
  });
});

describe("the per-call layer (AuthorizingCall, in place of grpc-js's generic interceptor)", () => {
  it('is the one in use with the installed grpc-js, and is refused for a call interface with a method it lacks', () => {
    expect(THIN_CALL_FITS).toBe(true);
    expect(thinCallFits()).toBe(true);
    const future = Object.create(grpc.ServerInterceptingCall.prototype, {
      getFutureThing: { value: () => undefined },
    });
    const names = [...Object.getOwnPropertyNames(grpc.ServerInterceptingCall.prototype), 'getFutureThing'];
    const shape = Object.fromEntries(names.map((n) => [n, future[n]]));
    expect(thinCallFits(shape)).toBe(false);
  });

  it('a bidirectional call: every message in order, the half-close, the replies, the call details', async () => {
    const served = await serve({ identity: boardsIdentity() });
    const client = clientOf(served.port, uiCredentials());
    const got = await chat(client, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(got).toEqual({
      ok: true,
      value: [1, 2, 3].map((n) => ({ echo: { n }, id: UI, mtls: true })),
    });
    expect(served.chats).toHaveLength(1);
    const [seen] = served.chats;
    expect(seen).toMatchObject({ received: [{ n: 1 }, { n: 2 }, { n: 3 }], ended: true });
    expect(seen?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    // The client's deadline (grpc-js hands the handler the number it parsed from grpc-timeout).
    expect(seen?.deadline).toBeGreaterThan(Date.now());
  });

  it('a denied streaming call: PERMISSION_DENIED, the handler never runs and reads none of the messages', async () => {
    const served = await serve({
      identity: boardsIdentity(),
      authorize: { '/demo.Boards/Chat': 'spiffe://cluster.local/ns/ops/*', '*': '*' },
    });
    const client = clientOf(served.port, uiCredentials());
    expect(await chat(client, [{ n: 1 }, { n: 2 }])).toEqual({
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details: 'sidecarless: peer_not_allowed',
    });
    expect(served.calls.chat).toBe(0);
    expect(served.chats).toEqual([]);
    // The same connection serves what is allowed.
    expect(await unary(client, 'hello')).toMatchObject({ ok: true, value: { id: UI } });
  });

  it("a client's cancel reaches the handler", async () => {
    const served = await serve({ identity: boardsIdentity() });
    const client = clientOf(served.port, uiCredentials());
    expect(await chat(client, [{ n: 1 }], 1)).toMatchObject({ ok: false, code: grpc.status.CANCELLED });
    await vi.waitFor(() => expect(served.chats[0]?.cancelled).toBe(true));
    // grpc-js emits 'cancelled' only from the call listener's onCancel, which the layer forwards.
    expect(served.chats[0]).toMatchObject({ received: [{ n: 1 }] });
  });
});

describe('cross-domain forgeries (a federated root signing an ID in our trust domain)', () => {
  it("control: grpc-js's own TLS, verifying against the merged bundles, accepts the forged server", async () => {
    const fake = forged(BOARDS);
    const server = new grpc.Server();
    let served = 0;
    server.addService(service, {
      hello: (_call: unknown, done: grpc.sendUnaryData<unknown>) => {
        served++;
        done(null, { id: 'forged' });
      },
      list: () => {},
      reset: () => {},
      chat: () => {},
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(null, [{ cert_chain: fake.chain, private_key: fake.key }]),
        (err, p) => (err ? reject(err) : resolve(p)),
      ),
    );
    onCleanup(() => server.forceShutdown());
    // What createSsl offers: one CA list, and a hostname check (replaced here by the SPIFFE ID
    // check an application would write): the forged SAN passes both.
    const grpcOwn = clientOf(
      port,
      grpc.credentials.createSsl(mergedRoots, null, null, {
        checkServerIdentity: (_host, cert) =>
          cert.subjectaltname === `URI:${BOARDS}` ? undefined : new Error('wrong id'),
      }),
    );
    expect(await unary(grpcOwn, 'hello')).toEqual({ ok: true, value: { id: 'forged' } });
    // The library's channel, with the same trust, refuses it before any call is sent.
    const ours_ = clientOf(port, uiCredentials());
    const outcome = await unary(ours_, 'hello');
    expect(outcome).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect((outcome as { details: string }).details).toContain(
      'was not issued by any authority in the bundle of trust domain cluster.local',
    );
    expect(served).toBe(1);
  });

  it('the server refuses a client presenting an ID of our trust domain signed by the partner root', async () => {
    const served = await serve({ identity: boardsIdentity(), authorize: { '*': '*' } });
    const rejects = record<RejectEvent>(served.listener, 'reject');
    const fake = forged(UI);
    const forger = clientOf(
      served.port,
      grpc.credentials.createSsl(mergedRoots, fake.key, fake.chain, {
        checkServerIdentity: () => undefined,
      }),
    );
    expect(await unary(forger, 'hello')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(served.calls.hello).toBe(0);
    expect(rejects.some((r) => r.reason.startsWith('ERR_SVID'))).toBe(true);
    // Control: a genuine partner workload, under its own trust domain, is served.
    const genuine = clientOf(
      served.port,
      createMtlsChannelCredentials({
        identity: partner.identity('/ns/x/sa/y', { federatedBundles: ours.bundles().bundles() }),
        expect: BOARDS,
      }),
    );
    expect(await unary(genuine, 'hello')).toMatchObject({
      ok: true,
      value: { id: 'spiffe://partner.example/ns/x/sa/y' },
    });
  });
});

describe('rotation and trust changes mid-run', () => {
  it("new handshakes use the server's new SVID at once; live connections keep serving", async () => {
    const start = await boardsIdentity().ready();
    const identity = mutableIdentity(start.svid, start.bundles);
    const served = await serve({ identity });
    const before = clientOf(served.port, uiCredentials());
    expect(await unary(before, 'hello')).toMatchObject({ ok: true });
    identity.update({ svid: ours.issue('/ns/demo/sa/boards-v2') });
    // The live connection is not dropped.
    expect(await unary(before, 'hello')).toMatchObject({ ok: true });
    expect(served.listener.describe().id).toBe('spiffe://cluster.local/ns/demo/sa/boards-v2');
    // A new channel meets the new SVID: expecting the old ID fails, the new one passes.
    const old = await unary(clientOf(served.port, uiCredentials()), 'hello');
    expect(old).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect((old as { details: string }).details).toContain(
      'presented spiffe://cluster.local/ns/demo/sa/boards-v2, but',
    );
    const renewed = clientOf(served.port, uiCredentials('spiffe://cluster.local/ns/demo/sa/boards-v2'));
    expect(await unary(renewed, 'hello')).toMatchObject({ ok: true, value: { id: UI } });
  });

  it("removing a trust domain from the bundles closes its callers' connections, and they cannot come back", async () => {
    const start = await boardsIdentity().ready();
    const identity = mutableIdentity(start.svid, start.bundles);
    const served = await serve({ identity, authorize: { '*': '*' } });
    const rejects = record<RejectEvent>(served.listener, 'reject');
    const partnerClient = clientOf(
      served.port,
      createMtlsChannelCredentials({
        identity: partner.identity('/ns/x/sa/y', { federatedBundles: ours.bundles().bundles() }),
        expect: BOARDS,
      }),
    );
    const uiClient = clientOf(served.port, uiCredentials());
    expect(await unary(partnerClient, 'hello')).toMatchObject({ ok: true });
    expect(await unary(uiClient, 'hello')).toMatchObject({ ok: true });
    // The partner's connection holds an allow decision for this path: it must not outlive the trust.
    identity.update({ bundles: ours.bundles() });
    expect(rejects.map((r) => r.reason)).toContain('ERR_PEER_NO_LONGER_TRUSTED');
    const after = await unary(partnerClient, 'hello');
    expect(after).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(served.calls.hello).toBe(2);
    // Our own caller is untouched.
    expect(await unary(uiClient, 'hello')).toMatchObject({ ok: true, value: { id: UI } });
  });
});

describe('identity withdrawal and audit', () => {
  it('a withdrawn server identity closes its connections and refuses new ones', async () => {
    const start = await boardsIdentity().ready();
    const identity = mutableIdentity(start.svid, start.bundles);
    const served = await serve({ identity });
    const rejects = record<RejectEvent>(served.listener, 'reject');
    const client = clientOf(served.port, uiCredentials());
    expect(await unary(client, 'hello')).toMatchObject({ ok: true });
    identity.withdraw();
    expect(rejects.map((r) => r.reason)).toContain('ERR_NO_IDENTITY');
    expect(await unary(client, 'hello')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(served.calls.hello).toBe(1);
    // Control: the identity comes back, and so does service.
    identity.update({});
    expect(await unary(clientOf(served.port, uiCredentials()), 'hello')).toMatchObject({ ok: true });
  });

  it('audit mode reports the denial and lets the call through', async () => {
    const served = await serve({
      identity: boardsIdentity(),
      authorize: { '/demo.Admin/*': 'spiffe://cluster.local/ns/ops/*', '*': '*' },
      authorizationMode: 'audit',
    });
    const decisions = record<AuthorizationEvent>(served.listener, 'authorization');
    const client = clientOf(served.port, uiCredentials());
    expect(await unary(client, 'reset')).toMatchObject({ ok: true, value: { id: UI } });
    expect(decisions).toEqual([
      expect.objectContaining({ path: '/demo.Admin/Reset', verdict: 'deny', allowed: true, mode: 'audit' }),
    ]);
  });
});

describe('connections grpc-js cannot tell apart', () => {
  it('refuses a connection on a unix socket (no four-tuple to name it) with ERR_GRPC_UNTRACKABLE', async () => {
    const server = new grpc.Server();
    let served = 0;
    server.addService(service, {
      hello: (_call: unknown, done: grpc.sendUnaryData<unknown>) => {
        served++;
        done(null, {});
      },
      list: () => {},
      reset: () => {},
      chat: () => {},
    });
    const listener = createMtlsGrpcServer({ identity: boardsIdentity() }, server);
    const rejects = record<RejectEvent>(listener, 'reject');
    const path = join(mkdtempSync(join(tmpdir(), 'sidecarless-grpc-')), 'grpc.sock');
    await new Promise<void>((resolve) => listener.listen(path, resolve));
    onCleanup(async () => {
      server.forceShutdown();
      await new Promise((resolve) => listener.close(resolve));
    });
    const client = new BoardsClient(`unix:${path}`, uiCredentials());
    onCleanup(() => client.close());
    expect(await unary(client, 'hello')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(rejects.map((r) => r.reason)).toContain('ERR_GRPC_UNTRACKABLE');
    expect(served).toBe(0);
  });
});

describe('options', () => {
  it('refuses unknown options, a non-server and a map that is not one', async () => {
    const server = new grpc.Server();
    const identity = boardsIdentity();
    const { createMtlsGrpcServer } = await import('../../src/grpc/index.js');
    expect(() => createMtlsGrpcServer({ identity, mode: 'PERMISSIVE' } as never, server)).toThrow(
      expect.objectContaining({ code: 'ERR_OPTION_INVALID' }),
    );
    expect(() => createMtlsGrpcServer({ identity }, {} as never)).toThrow(
      expect.objectContaining({ code: 'ERR_OPTION_INVALID', detail: { field: 'grpcServer' } }),
    );
    expect(() =>
      createMtlsGrpcServer({ identity, authorize: 'spiffe://cluster.local/*' as never }, server),
    ).toThrow(expect.objectContaining({ code: 'ERR_OPTION_INVALID', detail: { field: 'authorize' } }));
    expect(() => createMtlsChannelCredentials({ identity, expect: 'unauthenticated' })).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_INVALID' }),
    );
    const unused = server as unknown as { address?: () => AddressInfo };
    expect(unused.address).toBeUndefined();
  });
});
