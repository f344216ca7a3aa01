// A small gRPC service for the tests, defined without protobuf: JSON messages, grpc-js's generic
// client, a real grpc-js Server behind the library's listener.
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createMtlsGrpcServer, getGrpcPeer, type MtlsGrpcServerOptions } from '../../src/grpc/index.js';
import type { MtlsTlsServer } from '../../src/server/server-types.js';
import { onCleanup } from '../helpers/server.js';

const serialize = (value: unknown) => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer) => JSON.parse(bytes.toString()) as unknown;

function method(
  path: string,
  responseStream: boolean,
  requestStream = false,
): grpc.MethodDefinition<unknown, unknown> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

export const service = {
  hello: method('/demo.Boards/Hello', false),
  list: method('/demo.Boards/List', true),
  reset: method('/demo.Admin/Reset', false),
  chat: method('/demo.Boards/Chat', true, true),
} satisfies grpc.ServiceDefinition;

export const BoardsClient = grpc.makeGenericClientConstructor(service, 'Boards');
export type Boards = InstanceType<typeof BoardsClient>;

export interface Served {
  readonly listener: MtlsTlsServer;
  readonly port: number;
  readonly grpcServer: grpc.Server;
  /** Handler invocations, by method name. */
  readonly calls: Record<'hello' | 'list' | 'reset' | 'chat', number>;
  /** What the chat handler saw: messages received, whether it saw the half-close, a cancel. */
  readonly chats: {
    received: unknown[];
    ended: boolean;
    cancelled: boolean;
    peer: string;
    deadline: unknown;
  }[];
}

function callerOf(
  call:
    | grpc.ServerUnaryCall<unknown, unknown>
    | grpc.ServerWritableStream<unknown, unknown>
    | grpc.ServerDuplexStream<unknown, unknown>,
) {
  const peer = getGrpcPeer(call);
  return { id: peer.id?.toString() ?? null, mtls: peer.mtls };
}

/** A grpc-js server with the three methods, served by createMtlsGrpcServer on 127.0.0.1:0. */
export async function serve(options: MtlsGrpcServerOptions): Promise<Served> {
  const grpcServer = new grpc.Server();
  const calls = { hello: 0, list: 0, reset: 0, chat: 0 };
  const chats: Served['chats'][number][] = [];
  grpcServer.addService(service, {
    hello: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      calls.hello++;
      done(null, { ...callerOf(call), request: call.request });
    },
    list: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      calls.list++;
      const caller = callerOf(call);
      for (let i = 0; i < 3; i++) call.write({ i, ...caller });
      call.end();
    },
    reset: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      calls.reset++;
      done(null, callerOf(call));
    },
    // Bidirectional: echoes each message with the caller, ends when the client half-closes.
    chat: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      calls.chat++;
      const caller = callerOf(call);
      const seen = {
        received: [] as unknown[],
        ended: false,
        cancelled: false,
        peer: call.getPeer(),
        deadline: call.getDeadline(),
      };
      chats.push(seen);
      call.on('data', (m: unknown) => {
        seen.received.push(m);
        call.write({ echo: m, ...caller });
      });
      call.on('end', () => {
        seen.ended = true;
        call.end();
      });
      call.on('cancelled', () => {
        seen.cancelled = true;
      });
    },
  });
  const listener = createMtlsGrpcServer(options, grpcServer);
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  onCleanup(async () => {
    grpcServer.forceShutdown();
    await new Promise((resolve) => listener.close(resolve));
  });
  return { listener, port: (listener.address() as AddressInfo).port, grpcServer, calls, chats };
}

/** A client of the service; closed after the test. */
export function clientOf(
  port: number,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions = {},
): Boards {
  const client = new BoardsClient(`127.0.0.1:${port}`, credentials, options);
  onCleanup(() => client.close());
  return client;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: grpc.status; details: string };

const DEADLINE = 5_000;

/** A unary call whose outcome is reported rather than thrown. */
export function unary<T = Record<string, unknown>>(
  client: Boards,
  name: 'hello' | 'reset',
  request: unknown = {},
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    const fn = client[name] as unknown as (
      req: unknown,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res: T) => void,
    ) => void;
    fn.call(client, request, metadata, { deadline: Date.now() + DEADLINE }, (err, res) =>
      resolve(err === null ? { ok: true, value: res } : { ok: false, code: err.code, details: err.details }),
    );
  });
}

/** A server-streaming call: every message, or the error status. */
export function stream<T = Record<string, unknown>>(client: Boards): Promise<Outcome<T[]>> {
  return new Promise((resolve) => {
    const fn = client.list as unknown as (
      req: unknown,
      options: grpc.CallOptions,
    ) => grpc.ClientReadableStream<T>;
    const call = fn.call(client, {}, { deadline: Date.now() + DEADLINE });
    const got: T[] = [];
    call.on('data', (m: T) => got.push(m));
    call.on('error', (err: grpc.ServiceError) =>
      resolve({ ok: false, code: err.code, details: err.details }),
    );
    call.on('end', () => resolve({ ok: true, value: got }));
  });
}

/** A bidirectional call: writes `messages`, half-closes (unless `cancelAfter` replies arrived: cancels), collects the replies. */
export function chat<T = Record<string, unknown>>(
  client: Boards,
  messages: unknown[],
  cancelAfter?: number,
): Promise<Outcome<T[]>> {
  return new Promise((resolve) => {
    const fn = client.chat as unknown as (options: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, T>;
    const call = fn.call(client, { deadline: Date.now() + DEADLINE });
    const got: T[] = [];
    call.on('data', (m: T) => {
      got.push(m);
      if (got.length === cancelAfter) call.cancel();
    });
    call.on('error', (err: grpc.ServiceError) =>
      resolve({ ok: false, code: err.code, details: err.details }),
    );
    call.on('end', () => resolve({ ok: true, value: got }));
    for (const m of messages) call.write(m);
    if (cancelAfter === undefined) call.end();
  });
}
