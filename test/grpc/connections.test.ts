// The four-tuple index that names the admitted connection of each gRPC call: real sockets,
// fed the tuples grpc-js would report.
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GrpcConnections } from '../../src/grpc/connections.js';
import type { Connection } from '../../src/server/connections.js';

const connectionOn = () => {
  const raw = new Socket();
  return { raw, connection: { raw } as unknown as Connection };
};
const tuple = (remoteAddress: string, remotePort: number, localPort = 8443, localAddress = '127.0.0.1') => ({
  localAddress,
  localPort,
  remoteAddress,
  remotePort,
});

describe('GrpcConnections', () => {
  it('tells apart connections that share a remote port and differ in one other field', () => {
    const index = new GrpcConnections();
    const a = connectionOn();
    const b = connectionOn();
    const c = connectionOn();
    const d = connectionOn();
    expect(index.add(a.connection, tuple('127.0.0.2', 40000))).toBe(true);
    expect(index.add(b.connection, tuple('127.0.0.3', 40000))).toBe(true);
    expect(index.add(c.connection, tuple('127.0.0.2', 40000, 9443))).toBe(true);
    expect(index.add(d.connection, tuple('127.0.0.2', 40000, 8443, '127.0.0.9'))).toBe(true);
    expect(index.of(tuple('127.0.0.2', 40000))).toBe(a.connection);
    expect(index.of(tuple('127.0.0.3', 40000))).toBe(b.connection);
    expect(index.of(tuple('127.0.0.2', 40000, 9443))).toBe(c.connection);
    expect(index.of(tuple('127.0.0.2', 40000, 8443, '127.0.0.9'))).toBe(d.connection);
    expect(index.of(tuple('127.0.0.4', 40000))).toBeUndefined();
    expect(index.of(tuple('127.0.0.2', 40001))).toBeUndefined();
  });

  it('refuses a tuple already open or incomplete, and forgets a connection once it closes', async () => {
    const index = new GrpcConnections();
    const a = connectionOn();
    const twin = connectionOn();
    expect(index.add(a.connection, tuple('127.0.0.2', 40000))).toBe(true);
    expect(index.add(twin.connection, tuple('127.0.0.2', 40000))).toBe(false);
    expect(index.add(twin.connection, { localAddress: '/tmp/x.sock' })).toBe(false);
    expect(index.of({ localAddress: '/tmp/x.sock' })).toBeUndefined();
    a.raw.destroy();
    // Destroyed: no longer answered, even before its close event.
    expect(index.of(tuple('127.0.0.2', 40000))).toBeUndefined();
    await new Promise((resolve) => a.raw.once('close', resolve));
    // Closed: the tuple may be used again by a new connection.
    expect(index.add(twin.connection, tuple('127.0.0.2', 40000))).toBe(true);
    expect(index.of(tuple('127.0.0.2', 40000))).toBe(twin.connection);
  });
});
