// The fallback: with a grpc-js whose server call interface has a method the library's thin
// AuthorizingCall does not implement, createMtlsGrpcServer uses grpc-js's own generic
// ServerInterceptingCall, with the same checks. Simulated by giving the installed grpc-js's
// ServerInterceptingCall one more method while the library's gRPC module is first evaluated
// (vitest evaluates src modules afresh for each test file); the method is removed at once.

import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalCa } from '../../src/index.js';

const proto = grpc.ServerInterceptingCall.prototype as unknown as Record<string, unknown>;
proto.getFutureThing = () => undefined;
const { createMtlsChannelCredentials } = await import('../../src/grpc/index.js');
const { THIN_CALL_FITS } = await import('../../src/grpc/server.js');
const { chat, clientOf, serve, stream, unary } = await import('./support.js');
delete proto.getFutureThing;

const ours = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ours.close());
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const ui = () =>
  createMtlsChannelCredentials({ identity: ours.identity('/ns/demo/sa/app-ui'), expect: BOARDS });

describe("grpc-js's generic interceptor layer, when the thin one does not fit", () => {
  it('is the one in use', () => {
    expect(THIN_CALL_FITS).toBe(false);
  });

  it('serves and authorizes unary, streaming and bidirectional calls as the thin layer does', async () => {
    const served = await serve({
      identity: ours.identity('/ns/demo/sa/boards'),
      authorize: { '/demo.Admin/*': 'spiffe://cluster.local/ns/ops/*', '*': '*' },
    });
    const client = clientOf(served.port, ui());
    expect(await unary(client, 'hello', { board: 1 })).toEqual({
      ok: true,
      value: { id: UI, mtls: true, request: { board: 1 } },
    });
    expect(await stream(client)).toMatchObject({ ok: true, value: [{ i: 0, id: UI }, { i: 1 }, { i: 2 }] });
    expect(await chat(client, [{ n: 1 }, { n: 2 }])).toEqual({
      ok: true,
      value: [1, 2].map((n) => ({ echo: { n }, id: UI, mtls: true })),
    });
    expect(served.chats[0]).toMatchObject({ received: [{ n: 1 }, { n: 2 }], ended: true });
    expect(await unary(client, 'reset')).toEqual({
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details: 'sidecarless: peer_not_allowed',
    });
    expect(served.calls).toEqual({ hello: 1, list: 1, reset: 0, chat: 1 });
  });
});
