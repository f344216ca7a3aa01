// The X.509 part of the SPIFFE Workload API (spiffe/spiffe standards/workloadapi.proto), written
// from its field numbers as a protobufjs schema, so nothing is read from disk at run time:
//
//   syntax = "proto3";                       // no package: paths are /SpiffeWorkloadAPI/<Method>
//   service SpiffeWorkloadAPI {
//     rpc FetchX509SVID(X509SVIDRequest) returns (stream X509SVIDResponse);
//     rpc FetchX509Bundles(X509BundlesRequest) returns (stream X509BundlesResponse);
//   }
//   message X509SVIDRequest {}
//   message X509SVIDResponse {
//     repeated X509SVID svids = 1; repeated bytes crl = 2; map<string, bytes> federated_bundles = 3;
//   }
//   message X509SVID {
//     string spiffe_id = 1; bytes x509_svid = 2; bytes x509_svid_key = 3; bytes bundle = 4; string hint = 5;
//   }
//   message X509BundlesRequest {}
//   message X509BundlesResponse { repeated bytes crl = 1; map<string, bytes> bundles = 2; }
//
// Loaded lazily by the sources (see workload-api-stream.ts): applications that never use the
// Workload API do not pay for protobufjs and @grpc/grpc-js at import time.
import protobuf from 'protobufjs/light.js';

/** The metadata every Workload API call carries (SPIFFE Workload Endpoint §3, SSRF hardening). */
export const SECURITY_HEADER = 'workload.spiffe.io';

/** The two server-streaming methods, by name. */
export type WorkloadApiMethod = 'FetchX509SVID' | 'FetchX509Bundles';

/** The gRPC paths of the methods: the service has no proto package. */
export const METHOD_PATHS: Readonly<Record<WorkloadApiMethod, string>> = Object.freeze({
  FetchX509SVID: '/SpiffeWorkloadAPI/FetchX509SVID',
  FetchX509Bundles: '/SpiffeWorkloadAPI/FetchX509Bundles',
});

const SCHEMA = {
  nested: {
    X509SVIDRequest: { fields: {} },
    X509SVIDResponse: {
      fields: {
        svids: { rule: 'repeated', type: 'X509SVID', id: 1 },
        crl: { rule: 'repeated', type: 'bytes', id: 2 },
        federated_bundles: { keyType: 'string', type: 'bytes', id: 3 },
      },
    },
    X509SVID: {
      fields: {
        spiffe_id: { type: 'string', id: 1 },
        x509_svid: { type: 'bytes', id: 2 },
        x509_svid_key: { type: 'bytes', id: 3 },
        bundle: { type: 'bytes', id: 4 },
        hint: { type: 'string', id: 5 },
      },
    },
    X509BundlesRequest: { fields: {} },
    X509BundlesResponse: {
      fields: {
        crl: { rule: 'repeated', type: 'bytes', id: 1 },
        bundles: { keyType: 'string', type: 'bytes', id: 2 },
      },
    },
  },
};

/** One `X509SVID` message; absent fields have their proto3 defaults (empty). */
export interface X509SvidMessage {
  readonly spiffe_id: string;
  readonly x509_svid: Uint8Array;
  readonly x509_svid_key: Uint8Array;
  readonly bundle: Uint8Array;
  readonly hint: string;
}

/** An `X509SVIDResponse`. */
export interface X509SvidResponseMessage {
  readonly svids: readonly X509SvidMessage[];
  readonly crl: readonly Uint8Array[];
  readonly federated_bundles: Readonly<Record<string, Uint8Array>>;
}

/** An `X509BundlesResponse`. */
export interface X509BundlesResponseMessage {
  readonly crl: readonly Uint8Array[];
  readonly bundles: Readonly<Record<string, Uint8Array>>;
}

/** What a response decodes to: the message, or why the bytes are not one (never thrown into gRPC). */
export type Decoded<T> = { readonly message: T } | { readonly undecodable: string };

/** Response types by method. */
export interface ResponseOf {
  FetchX509SVID: X509SvidResponseMessage;
  FetchX509Bundles: X509BundlesResponseMessage;
}

let root: protobuf.Root | undefined;

function type(name: string): protobuf.Type {
  root ??= protobuf.Root.fromJSON(SCHEMA);
  return root.lookupType(name);
}

const RESPONSE_TYPES: Record<WorkloadApiMethod, string> = {
  FetchX509SVID: 'X509SVIDResponse',
  FetchX509Bundles: 'X509BundlesResponse',
};
const REQUEST_TYPES: Record<WorkloadApiMethod, string> = {
  FetchX509SVID: 'X509SVIDRequest',
  FetchX509Bundles: 'X509BundlesRequest',
};

const TO_OBJECT = { defaults: true, arrays: true, objects: true } as const;

/**
 * Decodes a response. Never throws: an undecodable message must be reported and discarded, not
 * turned by gRPC into an INTERNAL status that ends the stream.
 */
export function decodeResponse<M extends WorkloadApiMethod>(
  method: M,
  bytes: Uint8Array,
): Decoded<ResponseOf[M]> {
  try {
    const t = type(RESPONSE_TYPES[method]);
    return { message: t.toObject(t.decode(bytes), TO_OBJECT) as unknown as ResponseOf[M] };
  } catch (err) {
    return { undecodable: err instanceof Error ? err.message : 'not a protobuf message' };
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes a response; a Buffer passes through as raw bytes (the fake's malformed messages). */
export function encodeResponse<M extends WorkloadApiMethod>(
  method: M,
  value: ResponseOf[M] | Buffer,
): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const t = type(RESPONSE_TYPES[method]);
  return toBuffer(t.encode(t.fromObject(value as unknown as Record<string, unknown>)).finish());
}

/** Encodes the (empty) request of a method. */
export function encodeRequest(method: WorkloadApiMethod): Buffer {
  const t = type(REQUEST_TYPES[method]);
  return toBuffer(t.encode(t.create({})).finish());
}

/** Decodes a request; the requests have no fields, so only their well-formedness matters. */
export function decodeRequest(method: WorkloadApiMethod, bytes: Uint8Array): object {
  return type(REQUEST_TYPES[method]).decode(bytes);
}
