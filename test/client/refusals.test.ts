// Clients are told why a server refused them: their own SVID is checked before connecting, and a
// STRICT server's close during authentication (TLS 1.3: after the client's handshake ended) is a
// typed refusal naming this workload, not a bare ECONNRESET.
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsAgent } from '../../src/client/agent.js';
import { connectMtls } from '../../src/client/connect-mtls.js';
import type { Destination } from '../../src/client/destinations.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import type { IdentitySource } from '../../src/identity/source.js';
import { createMtlsServer, isSidecarlessError, type SidecarlessError, X509Svid } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { fixedIdentity } from '../helpers/client-identity.js';
import { caOf, pemOf } from '../helpers/client-servers.js';
import { listen, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const untrustedCa = createTestCa(); // the same trust domain name, another key
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
afterAll(async () => {
  await ca.close();
  await untrustedCa.close();
});

/** Our SVID as issued by `issuer`, trusting our own CA for servers. */
function identityFrom(svid: X509Svid): IdentitySource {
  return fixedIdentity(svid, ca.bundles());
}

const good = () => identityFrom(ca.issue('/ns/demo/sa/app-ui'));
const untrusted = () => identityFrom(untrustedCa.issue('/ns/demo/sa/app-ui'));
const fromBad = (kind: 'expired' | 'not-yet-valid') => {
  const bad = ca.issueBad(kind, '/ns/demo/sa/app-ui');
  return identityFrom(X509Svid.parse(bad.certChainPem(), bad.privateKey));
};

/** A real STRICT server, counting the TCP connections it accepted. */
async function strictServer(): Promise<{ port: number; connections: () => number; requests: string[] }> {
  const requests: string[] = [];
  const server = createMtlsServer(
    { identity: ca.identity('/ns/demo/sa/boards'), mode: 'STRICT', authorize: { '*': '*' } },
    (req, res) => {
      requests.push(req.url ?? '');
      res.end('ok');
    },
  );
  let connections = 0;
  server.on('connection', () => {
    connections++;
  });
  const { port } = await listen(server as unknown as http.Server);
  return { port, connections: () => connections, requests };
}

function dispatcherFor(
  identity: IdentitySource,
  port: number,
  destination: Destination = { expect: BOARDS },
) {
  const dispatcher = createMtlsDispatcher({ identity, destinations: { [`127.0.0.1:${port}`]: destination } });
  onCleanup(() => dispatcher.destroy());
  return dispatcher;
}

function agentFor(identity: IdentitySource, port: number) {
  const agent = createMtlsAgent({ identity, destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } } });
  onCleanup(() => agent.close());
  return agent;
}

async function fetchCause(url: string, dispatcher: ReturnType<typeof dispatcherFor>): Promise<unknown> {
  const err = await undiciFetch(url, { dispatcher, method: 'POST', body: 'secret' }).then(
    () => expect.fail('the request succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TypeError);
  return (err as { cause?: unknown }).cause;
}

function agentError(url: string, agent: https.Agent): Promise<unknown> {
  return new Promise((resolve) => {
    const req = https.request(url, { agent, method: 'POST' }, (res) => {
      res.resume();
      resolve(undefined);
    });
    req.on('error', resolve);
    req.end('secret');
  });
}

function expectCodeOf(err: unknown, code: string): SidecarlessError {
  expect(isSidecarlessError(err), String(err)).toBe(true);
  expect((err as SidecarlessError).code, (err as Error).message).toBe(code);
  return err as SidecarlessError;
}

describe('the client checks its own SVID before connecting', () => {
  it.each([
    ['expired', 'ERR_OWN_SVID_EXPIRED', 'expired'],
    ['not-yet-valid', 'ERR_OWN_SVID_NOT_YET_VALID', 'not valid before'],
  ] as const)('an %s SVID: %s naming our own SPIFFE ID, nothing sent', async (kind, code, words) => {
    const srv = await strictServer();
    const identity = fromBad(kind);
    const url = `https://127.0.0.1:${srv.port}/x`;
    for (const err of [
      await fetchCause(url, dispatcherFor(identity, srv.port)),
      await agentError(url, agentFor(identity, srv.port)),
      await connectMtls({ identity, host: '127.0.0.1', port: srv.port, expect: BOARDS }).then(
        () => expect.fail('connected'),
        (e: unknown) => e,
      ),
    ]) {
      const e = expectCodeOf(err, code);
      expect(e.message).toContain(UI);
      expect(e.message).toContain(words);
      expect(e.message).not.toMatch(/\bpeer\b/);
      expect(e.detail).toMatchObject({ workload: UI, trustDomain: 'cluster.local' });
      expect(e.detail.peer).toBeUndefined();
    }
    expect(srv.connections()).toBe(0);
  });

  it('control: a valid SVID reaches the same server', async () => {
    const srv = await strictServer();
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/ok`, {
      dispatcher: dispatcherFor(good(), srv.port),
    });
    expect(await res.text()).toBe('ok');
  });
});

describe('a STRICT server that does not trust this workload', () => {
  it('fetch: the cause is ERR_REFUSED_BY_SERVER naming our ID, trust domain and the destination', async () => {
    const srv = await strictServer();
    const cause = await fetchCause(`http://127.0.0.1:${srv.port}/x`, dispatcherFor(untrusted(), srv.port));
    const err = expectCodeOf(cause, 'ERR_REFUSED_BY_SERVER');
    expect(err.message).toContain(UI);
    expect(err.message).toContain('cluster.local');
    expect(err.message).toContain(`127.0.0.1:${srv.port}`);
    expect(err.detail).toMatchObject({
      workload: UI,
      trustDomain: 'cluster.local',
      value: `127.0.0.1:${srv.port}`,
    });
    // The network error it stands for is kept as its cause.
    expect((err.cause as NodeJS.ErrnoException).code).toMatch(/^(ECONNRESET|EPIPE|UND_ERR_SOCKET)$/);
    expect(srv.requests).toEqual([]);
  });

  it('an auto destination: the same refusal, and no fallback to plaintext', async () => {
    const srv = await strictServer();
    const dispatcher = dispatcherFor(untrusted(), srv.port, { mode: 'auto', expect: BOARDS });
    const fallbacks: unknown[] = [];
    dispatcher.on('fallback', (e) => fallbacks.push(e));
    expectCodeOf(await fetchCause(`http://127.0.0.1:${srv.port}/x`, dispatcher), 'ERR_REFUSED_BY_SERVER');
    expect(fallbacks).toEqual([]);
  });

  it('createMtlsAgent: the request’s error is ERR_REFUSED_BY_SERVER', async () => {
    const srv = await strictServer();
    const err = await agentError(`https://127.0.0.1:${srv.port}/x`, agentFor(untrusted(), srv.port));
    expect(expectCodeOf(err, 'ERR_REFUSED_BY_SERVER').message).toContain(UI);
    expect(srv.requests).toEqual([]);
  });

  it('control: the same server answers a trusted workload, through both clients', async () => {
    const srv = await strictServer();
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/ok`, {
      dispatcher: dispatcherFor(good(), srv.port),
    });
    expect(await res.text()).toBe('ok');
    expect(await agentError(`https://127.0.0.1:${srv.port}/ok`, agentFor(good(), srv.port))).toBeUndefined();
    expect(srv.requests).toEqual(['/ok', '/ok']);
  });
});

describe('other closes keep undici’s and Node’s errors', () => {
  /** A server that accepts our SVID, answers /ok, and closes the connection on /close. */
  async function closingServer(): Promise<{ port: number; connections: () => number }> {
    const server = https.createServer(
      {
        ...pemOf(ca.issue('/ns/demo/sa/boards')),
        ca: caOf(ca.bundle()),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        // A TLS socket cannot be reset from JS (resetAndDestroy needs a TCP handle): destroyed,
        // with the request body unread, the client sees a close or a reset.
        if (req.url === '/close') req.socket.destroy();
        // Part of a status block, then a clean close: the server answered, then failed.
        else if (req.url === '/partial') req.socket.end('HTTP/1.1 200 OK\r\ncontent-le');
        else res.end('ok');
      },
    );
    let connections = 0;
    server.on('secureConnection', () => {
      connections++;
    });
    await listen(server);
    return { port: (server.address() as AddressInfo).port, connections: () => connections };
  }

  it('fetch: a close on a reused connection is undici’s error; on a fresh one, a refusal', async () => {
    const srv = await closingServer();
    // One connection: undici's pool otherwise opens a second one while it checks an idle socket.
    const dispatcher = createMtlsDispatcher({
      identity: good(),
      destinations: { [`127.0.0.1:${srv.port}`]: { expect: BOARDS } },
      connections: 1,
    });
    onCleanup(() => dispatcher.destroy());
    const url = `http://127.0.0.1:${srv.port}`;
    expect(await (await undiciFetch(`${url}/ok`, { dispatcher })).text()).toBe('ok');
    const reused = await fetchCause(`${url}/close`, dispatcher);
    expect(srv.connections()).toBe(1);
    expect(isSidecarlessError(reused), String(reused)).toBe(false);
    expect((reused as NodeJS.ErrnoException).code).toMatch(/^(ECONNRESET|UND_ERR_SOCKET)$/);
    // The same close as the first request of a fresh connection is what a refusal looks like.
    const fresh = await fetchCause(`${url}/close`, dispatcher);
    expect(srv.connections()).toBe(2);
    expectCodeOf(fresh, 'ERR_REFUSED_BY_SERVER');
  });

  it('a server that sent part of an answer before closing did not refuse: undici’s and Node’s errors', async () => {
    const srv = await closingServer();
    const dispatcher = createMtlsDispatcher({
      identity: good(),
      destinations: { [`127.0.0.1:${srv.port}`]: { expect: BOARDS } },
    });
    onCleanup(() => dispatcher.destroy());
    // The first bytes from the server end the watch, whether or not they complete a response.
    const fetched = await fetchCause(`http://127.0.0.1:${srv.port}/partial`, dispatcher);
    expect(isSidecarlessError(fetched), String(fetched)).toBe(false);
    expect((fetched as { code?: string }).code).toBe('UND_ERR_SOCKET');
    const viaAgent = await agentError(`https://127.0.0.1:${srv.port}/partial`, agentFor(good(), srv.port));
    expect(isSidecarlessError(viaAgent), String(viaAgent)).toBe(false);
    expect((viaAgent as NodeJS.ErrnoException).code).toMatch(/^(ECONNRESET|HPE_INVALID_EOF_STATE)$/);
    expect(srv.connections()).toBe(2);
  });

  it('createMtlsAgent: a close on a reused connection is Node’s error', async () => {
    const srv = await closingServer();
    const agent = agentFor(good(), srv.port);
    const url = `https://127.0.0.1:${srv.port}`;
    expect(await agentError(`${url}/ok`, agent)).toBeUndefined();
    const reused = await agentError(`${url}/close`, agent);
    expect(srv.connections()).toBe(1);
    expect(isSidecarlessError(reused), String(reused)).toBe(false);
    expect((reused as NodeJS.ErrnoException).code).toMatch(/^(ECONNRESET|EPIPE)$/);
  });

  it('connectMtls resolves once the handshake is done; the reset of what it wrote is the refusal', async () => {
    // Under TLS 1.3 the server checks our certificate after our handshake ended: connectMtls
    // cannot wait for a verdict the server never sends when it accepts (see its TSDoc). The
    // server's reset of the first bytes written comes as the socket's error instead.
    const srv = await strictServer();
    const socket = await connectMtls({
      identity: untrusted(),
      host: '127.0.0.1',
      port: srv.port,
      expect: BOARDS,
    });
    const errors: unknown[] = [];
    socket.on('error', (e) => errors.push(e));
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(errors).toHaveLength(1);
    const err = expectCodeOf(errors[0], 'ERR_REFUSED_BY_SERVER');
    expect(err.message).toContain(UI);
    expect((err.cause as NodeJS.ErrnoException).code).toMatch(/^(ECONNRESET|EPIPE)$/);
  });

  it('control: connectMtls with a trusted workload gets the answer', async () => {
    const srv = await strictServer();
    const socket = await connectMtls({ identity: good(), host: '127.0.0.1', port: srv.port, expect: BOARDS });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.end('GET /raw HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 200/);
  });
});
