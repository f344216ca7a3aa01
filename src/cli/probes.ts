// The three probes of `sidecarless check`, each one connection to the server's port: plaintext
// HTTP, TLS without a client certificate (which also fetches the server's chain), and mTLS with
// our identity through the library's own dispatcher. A probe never throws: it returns what the
// server did, for inferMode (check-mode.ts) to read.
import { connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fetch } from 'undici';
import type { Peer } from '../authz/peer.js';
import type { PeerMatcher } from '../authz/peer-matcher.js';
import { createMtlsDispatcher } from '../client/dispatcher.js';
import type { IdentitySource } from '../identity/source.js';
import { peerChainOf } from '../tls/peer-chain.js';

/** What one probe saw. `answered`: the server sent an HTTP response (any status). */
export type ProbeResult =
  | { readonly outcome: 'answered'; readonly status: number }
  | {
      readonly outcome: 'refused';
      /** How: `reset`, `closed`, `connection refused`, `handshake failed`, `alert …`, an error code. */
      readonly how: string;
      readonly code?: string;
      readonly message: string;
    }
  | { readonly outcome: 'skipped'; readonly reason: string };

/** The TLS probe's result, with what the handshake showed. */
export type TlsProbeResult = ProbeResult & {
  /** The handshake completed: the server speaks TLS on this port. */
  readonly handshake: boolean;
  /** The server's chain as presented, leaf first, DER (empty when no handshake). */
  readonly chain: readonly Buffer[];
  readonly protocol: string | null;
};

/** What the mTLS probe saw, with the server the library authenticated. */
export type MtlsProbeResult = ProbeResult & { readonly server?: Peer };

export interface Target {
  readonly host: string;
  /** The host as it goes in a URL (`[::1]` for IPv6). */
  readonly urlHost: string;
  readonly port: number;
  readonly path: string;
  /** Send an SNI: only for names (RFC 6066 §3: no IP addresses). */
  readonly servername: string | undefined;
}

function request(target: Target): string {
  return `GET ${target.path} HTTP/1.1\r\nHost: ${target.urlHost}:${target.port}\r\nUser-Agent: sidecarless-check\r\nConnection: close\r\n\r\n`;
}

/** TLS alerts a refusing server sends (RFC 8446 §6), by number, as OpenSSL reports them. */
const ALERTS: Readonly<Record<string, string>> = {
  '40': 'handshake failure',
  '42': 'bad certificate',
  '43': 'unsupported certificate',
  '45': 'certificate expired',
  '46': 'certificate unknown',
  '48': 'unknown CA',
  '116': 'certificate required',
};

/** The network error as a word a person reads: reset, refused, timed out. */
function how(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'EPIPE':
      return 'connection closed by peer';
    default:
      // OpenSSL's "error:0A00045C:SSL routines::tlsv13 alert certificate required": the words at the end.
      if (err.code?.startsWith('ERR_SSL_')) {
        const alert = /alert number (\d+)/.exec(err.message)?.[1];
        if (alert !== undefined) return `TLS alert ${ALERTS[alert] ?? alert}`;
      }
      if (err.code?.startsWith('ERR_SSL_')) return err.message.split(':').pop()?.trim() || err.code;
      return err.code ?? err.message;
  }
}

/** Sends one HTTP/1.1 request on `socket` and waits for the status line, a close, an error or the timeout. */
function exchange(socket: Socket, target: Target, timeout: number, onOpen: 'connect' | 'secureConnect') {
  return new Promise<ProbeResult & { opened: boolean }>((resolveProbe) => {
    let data = '';
    let opened = false;
    let done = false;
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolveProbe({ ...result, opened });
    };
    const timer = setTimeout(
      () => finish({ outcome: 'refused', how: 'timed out', message: `no answer within ${timeout} ms` }),
      timeout,
    );
    socket.once(onOpen, () => {
      opened = true;
      socket.write(request(target));
    });
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      // The status line is enough; a bounded read: nothing past the first line is kept.
      const line = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (line !== null) finish({ outcome: 'answered', status: Number(line[1]) });
      else if (data.includes('\n') || data.length > 1024)
        finish({
          outcome: 'refused',
          how: 'not HTTP',
          message: `answered ${JSON.stringify(data.slice(0, 40))}`,
        });
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish({
        outcome: 'refused',
        how: how(err),
        ...(err.code === undefined ? {} : { code: err.code }),
        message: err.message,
      }),
    );
    socket.on('close', () =>
      finish({
        outcome: 'refused',
        how: 'closed',
        message: 'the server closed the connection without an answer',
      }),
    );
  });
}

/** Probe 1: `GET path` in plaintext, as a pod without a sidecar would. */
export async function probePlaintext(target: Target, timeout: number): Promise<ProbeResult> {
  const { opened: _opened, ...result } = await exchange(
    netConnect({ host: target.host, port: target.port }),
    target,
    timeout,
    'connect',
  );
  return result;
}

/**
 * Probe 2: TLS without a client certificate. The server's chain is taken as presented, with no
 * verification here (`rejectUnauthorized: false`): check verifies it against our bundle itself,
 * with verifyPeerChain, so nothing is trusted on this probe's word.
 */
export async function probeTls(target: Target, timeout: number): Promise<TlsProbeResult> {
  let chain: Buffer[] = [];
  let protocol: string | null = null;
  const socket: TLSSocket = tlsConnect({
    host: target.host,
    port: target.port,
    ...(target.servername === undefined ? {} : { servername: target.servername }),
    ALPNProtocols: ['http/1.1'],
    rejectUnauthorized: false,
  });
  socket.once('secureConnect', () => {
    chain = peerChainOf(socket);
    protocol = socket.getProtocol();
  });
  const { opened, ...result } = await exchange(socket, target, timeout, 'secureConnect');
  if (result.outcome === 'refused' && !opened) {
    return { ...result, how: `handshake failed (${result.how})`, handshake: false, chain, protocol };
  }
  return { ...result, handshake: opened, chain, protocol };
}

/** Probe 3: mTLS with our identity, through createMtlsDispatcher as an application would. */
export async function probeMtls(
  target: Target,
  identity: IdentitySource,
  expect: PeerMatcher,
  timeout: number,
): Promise<MtlsProbeResult> {
  let server: Peer | undefined;
  const dispatcher = createMtlsDispatcher({
    identity,
    destinations: { [`${target.urlHost}:${target.port}`]: { expect } },
    onPeer: (peer) => {
      server = peer;
    },
    connectTimeout: timeout,
    headersTimeout: timeout,
  });
  try {
    const res = await fetch(`http://${target.urlHost}:${target.port}${target.path}`, {
      dispatcher,
      headers: { connection: 'close', 'user-agent': 'sidecarless-check' },
      signal: AbortSignal.timeout(timeout),
    });
    await res.body?.cancel();
    return { outcome: 'answered', status: res.status, ...(server === undefined ? {} : { server }) };
  } catch (err) {
    const cause = ((err as { cause?: unknown }).cause ?? err) as NodeJS.ErrnoException & { name?: string };
    const code = typeof cause.code === 'string' ? cause.code : undefined;
    return {
      outcome: 'refused',
      how: code?.startsWith('ERR_') ? code : how(cause),
      ...(code === undefined ? {} : { code }),
      message: cause.message,
    };
  } finally {
    await dispatcher.close();
  }
}
