import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  decodeRequest,
  encodeResponse,
  METHOD_PATHS,
  type ResponseOf,
  type WorkloadApiMethod,
} from '../identity/workload-api-proto.js';
import type { FakeWorkloadApiStatus } from './fake-workload-api-contract.js';

// The gRPC plumbing of the fake: the service definition (written from the method paths, no .proto
// file at run time), binding, and the statuses it can answer with.

/** The gRPC status of each failure the fake can answer with. */
export const STATUS_CODES: Record<FakeWorkloadApiStatus, grpc.status> = {
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  INTERNAL: grpc.status.INTERNAL,
};

/** The SpiffeWorkloadAPI service: two server streams. */
function service(): grpc.ServiceDefinition {
  const method = (name: WorkloadApiMethod): grpc.MethodDefinition<object, unknown> => ({
    path: METHOD_PATHS[name],
    requestStream: false,
    responseStream: true,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: (bytes: Buffer) => decodeRequest(name, bytes),
    responseSerialize: (value: unknown) => encodeResponse(name, value as ResponseOf[typeof name] | Buffer),
    responseDeserialize: (bytes: Buffer) => bytes,
  });
  return { FetchX509SVID: method('FetchX509SVID'), FetchX509Bundles: method('FetchX509Bundles') };
}

function bind(server: grpc.Server, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });
}

/** A call the fake handles. */
export type FakeHandler = (
  method: WorkloadApiMethod,
  call: grpc.ServerWritableStream<object, unknown>,
) => void;

/**
 * Starts the gRPC server: on a unix socket in a new temporary directory, or on 127.0.0.1 with a
 * free port. @internal
 */
export async function listen(
  transport: 'unix' | 'tcp',
  handle: FakeHandler,
): Promise<{ server: grpc.Server; address: string; dir: string | undefined }> {
  const server = new grpc.Server();
  server.addService(service(), {
    FetchX509SVID: (call: grpc.ServerWritableStream<object, unknown>) => handle('FetchX509SVID', call),
    FetchX509Bundles: (call: grpc.ServerWritableStream<object, unknown>) => handle('FetchX509Bundles', call),
  });
  let dir: string | undefined;
  try {
    if (transport === 'tcp') {
      return { server, address: `tcp://127.0.0.1:${await bind(server, '127.0.0.1:0')}`, dir };
    }
    dir = mkdtempSync(join(tmpdir(), 'sidecarless-fake-'));
    const socket = join(dir, 'agent.sock');
    await bind(server, `unix:${socket}`);
    return { server, address: `unix://${socket}`, dir };
  } catch (err) {
    server.forceShutdown();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
