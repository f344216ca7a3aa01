import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach } from 'vitest';
import type { X509Bundle } from '../../src/index.js';

/** What a TLS client presents: a chain and its key, both PEM. */
export interface ClientCredentials {
  readonly cert: string;
  readonly key: string;
}

/** PEM credentials of an SVID (or of a BadSvid, through its own methods). */
export function credentialsOf(svid: {
  certChainPem(): string;
  privateKey: { export(options: { format: 'pem'; type: 'pkcs8' }): string | Buffer };
}): ClientCredentials {
  return {
    cert: svid.certChainPem(),
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

export interface Response {
  readonly status: number;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Registers a cleanup run after the current test. */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** Listens on 127.0.0.1:0 and closes (and destroys connections) after the test. */
export async function listen<S extends http.Server | tls.Server>(
  server: S,
): Promise<{ server: S; port: number }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
        setTimeout(resolve, 2000).unref();
      }),
  );
  return { server, port: (server.address() as AddressInfo).port };
}

/** An HTTPS request presenting `client` (or nothing), trusting `bundle` for the server. */
export function mtlsRequest(
  port: number,
  path: string,
  client: ClientCredentials | undefined,
  bundle: X509Bundle,
  options: {
    method?: string;
    body?: string;
    headers?: http.OutgoingHttpHeaders;
    /** The client's source address (another loopback address stands for another client). */
    localAddress?: string;
  } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        agent: false,
        ca: bundle.toPem(),
        ...(client ?? {}),
        // These tests are about the server: its identity is checked elsewhere.
        checkServerIdentity: () => undefined,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A plaintext HTTP request. */
export function plainRequest(
  port: number,
  path: string,
  options: { method?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(
  command: string,
  args: readonly string[],
  input?: string,
  timeout = 15_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout }, (err, stdout, stderr) => {
      const code =
        err === null
          ? 0
          : typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

/** A temporary directory with files, removed after the test. */
export function tempFiles(files: Record<string, string>): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-test-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const paths: Record<string, string> = { dir };
  for (const [name, content] of Object.entries(files)) {
    paths[name] = join(dir, name);
    writeFileSync(join(dir, name), content);
  }
  return paths;
}

/** Records every event of the given names on an emitter. */
export function record<T = unknown>(
  emitter: { on(event: string, l: (e: T) => void): unknown },
  event: string,
): T[] {
  const events: T[] = [];
  emitter.on(event, (e) => events.push(e));
  return events;
}

/** A keep-alive HTTPS agent with one socket, presenting `client` (or nothing); destroyed after the test. */
export function keepAliveAgent(
  client: ClientCredentials | undefined,
  bundle: X509Bundle,
  options: https.AgentOptions = {},
): https.Agent {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: bundle.toPem(),
    ...(client ?? {}),
    checkServerIdentity: () => undefined,
    ...options,
  });
  onCleanup(() => agent.destroy());
  return agent;
}

/** A plaintext keep-alive agent with one socket; destroyed after the test. */
export function plainKeepAliveAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  onCleanup(() => agent.destroy());
  return agent;
}

/** A response, with the socket that carried it (to tell a reused keep-alive connection from a new one). */
export interface AgentResponse extends Response {
  readonly socket: Socket;
  /** Whether the TLS session was resumed (null for plaintext), read while the socket was open. */
  readonly reused: boolean | null;
}

/** A request through `agent` (HTTPS for an https.Agent); resolves once the whole body has arrived. */
export function agentRequest(agent: http.Agent, port: number, path: string): Promise<AgentResponse> {
  const request = agent instanceof https.Agent ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      // Read now: a keep-alive agent detaches the socket from the response once it has ended.
      const socket = res.socket;
      const reused = socket instanceof tls.TLSSocket ? socket.isSessionReused() : null;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers, socket, reused }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves when the socket (or session) has closed; at once if it already has. */
export function closed(socket: {
  readonly destroyed: boolean;
  once(event: 'close', l: () => void): unknown;
}): Promise<void> {
  return socket.destroyed
    ? Promise.resolve()
    : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** A handler's gate: requests wait at `reached()` until the test calls `release()`. */
export function createLatch(): { wait(): Promise<void>; release(): void; reached(): Promise<void> } {
  let release = () => {};
  let reach = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const reachedOnce = new Promise<void>((resolve) => {
    reach = resolve;
  });
  return {
    wait: () => {
      reach();
      return released;
    },
    release: () => release(),
    reached: () => reachedOnce,
  };
}

/** What a raw TLS client saw: whether its handshake finished, resumption, what came back, its sessions. */
export interface TlsExchange {
  readonly socket: tls.TLSSocket;
  /** The handshake finished on the client's side (TLS 1.3: also when the server then refuses the peer). */
  readonly secure: boolean;
  readonly reused: boolean;
  /** Everything the server sent before it closed. */
  readonly data: string;
  readonly error: string | undefined;
  /** Sessions the server offered for resumption ('session' events: TLS 1.3 tickets, TLS 1.2 sessions). */
  readonly sessions: readonly Buffer[];
  /** The session as `getSession()` saw it right after the handshake. */
  readonly session: Buffer | undefined;
}

/**
 * Connects with TLS, sends `send` once the handshake is done, and reads until the server closes.
 * Never rejects: a refused peer shows as `data === ''` and/or `error`.
 */
export function tlsExchange(
  port: number,
  options: tls.ConnectionOptions & { send?: string },
): Promise<TlsExchange> {
  const { send, ...connect } = options;
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...connect });
    onCleanup(() => socket.destroy());
    let secure = false;
    let reused = false;
    let data = '';
    let error: string | undefined;
    let session: Buffer | undefined;
    const sessions: Buffer[] = [];
    socket.on('session', (s: Buffer) => sessions.push(s));
    socket.once('secureConnect', () => {
      secure = true;
      reused = socket.isSessionReused();
      session = socket.getSession();
      if (send !== undefined) socket.write(send);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
    });
    socket.on('error', (err: Error & { code?: string }) => {
      error = err.code ?? err.message;
    });
    socket.once('close', () => resolve({ socket, secure, reused, data, error, sessions, session }));
  });
}
