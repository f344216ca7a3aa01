// What clients report of their connections: outbound edges (per destination host:port), the
// sidecarless:client:peer and :reject channels. One place for both the dispatcher and the agent.
import type { TLSSocket } from 'node:tls';
import { isSidecarlessError, type SidecarlessError } from '../errors.js';
import { publishClientPeer, publishClientReject, publishClientResponse } from '../observe/channels.js';
import type { Edge, EdgeTable } from '../observe/edges.js';
import { peerOf } from '../tls/peer-registry.js';
import type { Target } from './target.js';

/** The edge a client socket counts its responses on. */
interface Attached {
  readonly table: EdgeTable;
  readonly edge: Edge;
  readonly mtls: boolean;
  readonly destination: string;
  readonly address: string;
  /** This workload's SPIFFE ID when the connection was made. */
  readonly source: string;
  /** The SPIFFE ID the server proved, or null. */
  readonly peer: string | null;
}

// Per socket, for every client: a socket belongs to one dispatcher or agent, and the response
// paths (undici's handler, node:http's 'response') know the socket, not the client.
const attached = new WeakMap<object, Attached>();

/** A new connection is ready: its edge, its TLS facts, and the client:peer channel. */
export function connected(table: EdgeTable, source: string, target: Target, socket: object): void {
  const peer = peerOf(socket);
  const mtls = peer?.mtls === true;
  const edge = table.edge(source, target.address);
  const peerId = mtls ? (peer?.id?.toString() ?? null) : null;
  table.connected(edge, socket, peerId);
  attached.set(socket, {
    table,
    edge,
    mtls,
    destination: target.destination.key,
    address: target.address,
    source,
    peer: peerId,
  });
  publishClientPeer(() =>
    Object.freeze({
      destination: target.destination.key,
      address: target.address,
      id: mtls ? (peer?.id?.toString() ?? null) : null,
      mtls,
      tls: peer?.tls === true,
      serial: peer?.certificate?.serialNumber ?? null,
      notAfter: peer?.notAfter ?? null,
      remoteAddress: peer?.remoteAddress ?? null,
      alpn: peer?.alpn ?? null,
      resumed: peer?.resumed === true,
      tlsVersion: edge.tlsVersion,
      keyExchange: edge.keyExchange,
    }),
  );
}

/** A response (final, or 101) arrived on `socket`: one request on its edge, and the client:response channel. */
export function responded(socket: object | null | undefined, statusCode: number): void {
  if (socket === null || socket === undefined) return;
  const a = attached.get(socket);
  if (a === undefined) return;
  a.table.request(a.edge, a.mtls);
  publishClientResponse(() =>
    Object.freeze({
      destination: a.destination,
      address: a.address,
      source: a.source,
      peer: a.peer,
      mtls: a.mtls,
      statusCode,
    }),
  );
}

function rejectEvent(
  err: SidecarlessError,
  phase: 'connect' | 'request',
  destination: string | null,
  address: string | null,
) {
  const peer = err.detail.peer;
  return Object.freeze({
    reason: err.code,
    phase,
    message: err.message,
    destination,
    address,
    peer: typeof peer === 'string' ? peer : null,
  });
}

/**
 * A new connection failed. Checks (SidecarlessError) count on the destination's edge and are
 * published; network errors are the caller's to see (an edge shows refusals, not outages).
 */
export function connectFailed(
  table: EdgeTable | undefined,
  source: string,
  where: { destination: string | null; address: string | null },
  err: unknown,
): void {
  if (!isSidecarlessError(err)) return;
  if (table !== undefined && where.destination !== null && where.address !== null) {
    table.refused(table.edge(source, where.address), err.code, err.message);
  }
  publishClientReject(rejectEvent(err, 'connect', where.destination, where.address));
}

/** The server refused us on a connection already handed over (refusal.ts). */
export function refusedAfterHandover(socket: TLSSocket, err: SidecarlessError): void {
  const a = attached.get(socket);
  if (a !== undefined) a.table.refused(a.edge, err.code, err.message);
  publishClientReject(rejectEvent(err, 'request', a?.destination ?? null, a?.address ?? null));
}
