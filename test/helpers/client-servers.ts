// Servers for client tests: what a client of sidecarless meets on the other end (a raw Node
// https server with any certificate, a plain HTTP server, servers that misbehave on purpose).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import type { X509Bundle } from '../../src/index.js';
import { listen, onCleanup } from './server.js';

/** What a server saw of one request. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  /** The URI SAN of the client certificate, or null without one. */
  readonly clientId: string | null;
}

export interface TestServer<S> {
  readonly server: S;
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Every byte received, on every connection (to prove nothing was sent in plaintext). */
  readonly bytes: () => Buffer;
  /** Connections that reached the server's handler (TLS: after the handshake). */
  readonly connections: () => number;
  /** TCP connections accepted. */
  readonly tcpConnections: () => number;
}

function recordBytes(server: net.Server, on: 'connection' | 'secureConnection' = 'connection') {
  const chunks: Buffer[] = [];
  let connections = 0;
  let tcp = 0;
  server.on(on, (socket: net.Socket) => {
    connections++;
    socket.on('data', (d: Buffer) => chunks.push(d));
  });
  server.on('connection', () => {
    tcp++;
  });
  return { bytes: () => Buffer.concat(chunks), connections: () => connections, tcpConnections: () => tcp };
}

/** Lets a test hold a request before it is answered. */
export type Hold = (req: http.IncomingMessage) => Promise<void> | undefined;

function handler(seen: SeenRequest[], hold?: Hold): http.RequestListener {
  return (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', async () => {
      await hold?.(req);
      const socket = req.socket as tls.TLSSocket;
      const san =
        typeof socket.getPeerCertificate === 'function'
          ? socket.getPeerCertificate().subjectaltname
          : undefined;
      const clientId = san?.startsWith('URI:') ? san.slice(4) : null;
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, clientId });
      // A server that tries to tell the client who it is: the client must not believe it.
      res.setHeader(PEER_ID_HEADER, 'spiffe://cluster.local/ns/evil/sa/spoofed');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, body, clientId }));
    });
  };
}

/** Server-side TLS credentials: a chain and key (PEM), and the CAs it accepts clients from. */
export interface ServerCredentials {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string | readonly string[];
}

/** PEM credentials of an SVID or a BadSvid. */
export function pemOf(svid: {
  certChainPem(): string;
  privateKeyPem?: () => string;
  privateKey: { export(o: object): string | Buffer };
}): { cert: string; key: string } {
  const key = svid.privateKeyPem?.() ?? svid.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return { cert: svid.certChainPem(), key };
}

/**
 * A raw node:https server with the given certificate, asking for a client certificate from `ca`
 * (rejected in JS when it does not verify), recording every request.
 */
export async function httpsServer(
  credentials: ServerCredentials,
  options: https.ServerOptions = {},
  hold?: Hold,
): Promise<TestServer<https.Server>> {
  const seen: SeenRequest[] = [];
  const server = https.createServer(
    {
      cert: credentials.cert,
      key: credentials.key,
      ...(credentials.ca === undefined ? {} : { ca: [credentials.ca].flat() as string[] }),
      requestCert: credentials.ca !== undefined,
      rejectUnauthorized: credentials.ca !== undefined,
      ...options,
    },
    handler(seen, hold),
  );
  const recorder = recordBytes(server, 'secureConnection');
  const { port } = await listen(server);
  return { server, port, seen, ...recorder };
}

/** A plain HTTP server, recording every request and every byte. */
export async function plainServer(): Promise<TestServer<http.Server>> {
  const seen: SeenRequest[] = [];
  const server = http.createServer(handler(seen));
  const recorder = recordBytes(server);
  const { port } = await listen(server);
  return { server, port, seen, ...recorder };
}

/** A TCP server doing `onConnection` with each connection (to misbehave on purpose). */
export async function tcpServer(onConnection: (socket: net.Socket) => void): Promise<TestServer<net.Server>> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  const recorder = recordBytes(server);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { server, port: (server.address() as net.AddressInfo).port, seen: [], ...recorder };
}

/** The bundle's CAs as PEM, for a server's `ca`. */
export function caOf(bundle: X509Bundle): string {
  return bundle.toPem();
}
