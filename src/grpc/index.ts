// sidecarless/grpc: gRPC over the library's mTLS, with @grpc/grpc-js. Every export is listed by
// name. This entry point (and only it, with the Workload API client) loads grpc-js.
export {
  createMtlsChannelCredentials,
  type MtlsChannelCredentialsOptions,
} from './channel.js';
export { type GrpcCall, getGrpcPeer } from './peer.js';
export { createMtlsGrpcServer, type MtlsGrpcServer, type MtlsGrpcServerOptions } from './server.js';
