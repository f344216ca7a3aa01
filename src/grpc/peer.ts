import type { Peer } from '../authz/peer.js';
import { SidecarlessError } from '../errors.js';
import { callPeerOf } from './connections.js';

/**
 * A grpc-js server call, as handlers receive it (`ServerUnaryCall`, `ServerWritableStream`, …):
 * only its request metadata is read.
 * @example
 * ```ts
 * import type { GrpcCall } from 'sidecarless/grpc';
 * const hasCall = (call: GrpcCall) => call.metadata !== undefined;
 * ```
 */
export interface GrpcCall {
  /** The call's request metadata, as grpc-js handed it to the handler. */
  readonly metadata: object;
}

/**
 * The caller of a gRPC call served by {@link createMtlsGrpcServer}: the `Peer` its connection was
 * admitted with (verified SPIFFE ID, trust domain, chain, notAfter). It is recorded by the
 * library after the call was authorized, never taken from what the caller sent (no metadata key
 * can set it).
 *
 * @param call - the call object a grpc-js handler receives
 * @returns the caller's `Peer`
 * @throws SidecarlessError `ERR_NO_PEER` for a call no `createMtlsGrpcServer` admitted (another
 *   port of the same grpc-js server, or metadata an interceptor replaced)
 * @example
 * ```ts
 * import type * as grpc from '@grpc/grpc-js';
 * import { getGrpcPeer } from 'sidecarless/grpc';
 * function hello(call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) {
 *   done(null, { caller: getGrpcPeer(call).id?.toString() });
 * }
 * ```
 */
export function getGrpcPeer(call: GrpcCall): Peer {
  const metadata = (call as Partial<GrpcCall> | null)?.metadata;
  const peer = typeof metadata === 'object' && metadata !== null ? callPeerOf(metadata as never) : undefined;
  if (peer === undefined) {
    throw new SidecarlessError(
      'ERR_NO_PEER',
      'getGrpcPeer(): no peer is known for this call; pass the call of a handler served through createMtlsGrpcServer',
      {},
    );
  }
  return peer;
}
