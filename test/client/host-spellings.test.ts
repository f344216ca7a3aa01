// Every spelling of the keyed address, through every client, against one real server that would
// accept plaintext too (PERMISSIVE): each spelling gets mTLS or a refusal, never plaintext.
import dns from 'node:dns';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMtlsAgent } from '../../src/client/agent.js';
import { connectMtls } from '../../src/client/connect-mtls.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { EMBEDDED_IPV4_FORMS, THIS_HOST_RANGES } from '../../src/client/hosts.js';
import { createMtlsInterceptor } from '../../src/client/interceptor.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { createMtlsServer, getPeer, isSidecarlessError } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { onCleanup } from '../helpers/server.js';
import { FAKE_DNS, HOST_SPELLINGS, type HostSpelling, OTHER_FORMS } from './host-spellings.js';

const ca = createTestCa();
const client = ca.identity('/ns/demo/sa/app-ui');
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const SECRET = 'Bearer secret-token';
afterAll(() => ca.close());

interface Seen {
  readonly path: string;
  readonly mtls: boolean;
  readonly authorization: string | undefined;
}

/** A PERMISSIVE server on [::] (every loopback and unspecified address reaches it), recording each request. */
async function permissiveServer(): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createMtlsServer(
    {
      identity: ca.identity('/ns/demo/sa/boards'),
      mode: 'PERMISSIVE',
      authorize: { '*': ['*', 'unauthenticated'] },
    },
    (req, res) => {
      const mtls = getPeer(req).mtls;
      seen.push({ path: req.url ?? '', mtls, authorization: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ mtls }));
    },
  );
  server.listen(0, '::');
  await once(server, 'listening');
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        setTimeout(resolve, 2000).unref();
      }),
  );
  return { port: (server.address() as AddressInfo).port, seen };
}

type LookupCallback = (err: Error | null, address: unknown, family?: number) => void;
const realLookup = dns.lookup;
const lookups: string[] = [];

/**
 * The resolver answers the table's test names (no /etc/hosts entry can be added on a CI machine)
 * and passes every other name to the system resolver; every lookup is recorded.
 */
function fakeResolver(answers: (name: string, call: number) => readonly string[] | undefined): void {
  vi.spyOn(dns, 'lookup').mockImplementation(((
    hostname: string,
    options: unknown,
    callback?: LookupCallback,
  ) => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean };
    const call = lookups.filter((n) => n === hostname).length;
    lookups.push(hostname);
    const answer = answers(hostname, call);
    if (answer === undefined) return (realLookup as (...a: unknown[]) => void)(hostname, options, callback);
    const all = answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    process.nextTick(() => {
      if (opts.all === true) cb(null, all);
      else cb(null, all[0]?.address, all[0]?.family);
    });
  }) as unknown as typeof dns.lookup);
}

beforeEach(() => {
  lookups.length = 0;
  fakeResolver((name) => FAKE_DNS.get(name));
  onCleanup(() => vi.restoreAllMocks());
});

const destinationsFor = (port: number) => ({
  [`127.0.0.1:${port}`]: { expect: BOARDS },
  '*': { mode: 'plaintext' as const },
});

/** An http: agent with the keyed destination (closed after the test). */
function agentFor(port: number) {
  const agent = createMtlsAgent({ identity: client, destinations: destinationsFor(port), protocol: 'http:' });
  onCleanup(() => agent.close());
  return agent;
}

/** The request of one row and one client, and what the server must have seen of it. */
function expectMtls(seen: Seen[], path: string): void {
  const mine = seen.filter((s) => s.path === path);
  expect(mine).toEqual([{ path, mtls: true, authorization: SECRET }]);
}

function expectNothingSent(seen: Seen[], path: string): void {
  expect(seen.filter((s) => s.path === path)).toEqual([]);
}

const reachable = HOST_SPELLINGS.filter((s) => s.reachable && s.refused === undefined);
const byUrl = reachable.filter((s) => s.url !== undefined);
const refused = HOST_SPELLINGS.filter((s) => s.refused !== undefined);
const label = (s: HostSpelling) => `${s.url ?? s.host} (${s.form})`;

describe('host spellings: the table', () => {
  it('has a row for every form the destination rules know', () => {
    const forms = new Set(HOST_SPELLINGS.map((s) => s.form));
    const required = [
      ...EMBEDDED_IPV4_FORMS.map((f) => f.form),
      ...THIS_HOST_RANGES.map((r) => r.form),
      ...OTHER_FORMS,
    ];
    for (const form of required) expect(forms.has(form), `no spelling of form ${form}`).toBe(true);
    for (const form of forms) expect(required, `form ${form} is not a known rule`).toContain(form);
  });
});

describe.each(byUrl.map((s) => [label(s), s] as const))('%s', (_name, spelling) => {
  it('fetch through createMtlsDispatcher: mTLS, never plaintext', async () => {
    const srv = await permissiveServer();
    const dispatcher = createMtlsDispatcher({ identity: client, destinations: destinationsFor(srv.port) });
    onCleanup(() => dispatcher.destroy());
    const res = await undiciFetch(`http://${spelling.url}:${srv.port}/fetch`, {
      dispatcher,
      headers: { authorization: SECRET },
    });
    expect(await res.json()).toEqual({ mtls: true });
    expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    expectMtls(srv.seen, '/fetch');
  });

  it('fetch through createMtlsInterceptor: mTLS, never the composed dispatcher in plaintext', async () => {
    const srv = await permissiveServer();
    const mtls = createMtlsInterceptor({ identity: client, destinations: destinationsFor(srv.port) });
    const base = new Agent();
    onCleanup(async () => {
      await mtls.close();
      await base.destroy();
    });
    const res = await undiciFetch(`http://${spelling.url}:${srv.port}/interceptor`, {
      dispatcher: base.compose(mtls),
      headers: { authorization: SECRET },
    });
    expect(await res.json()).toEqual({ mtls: true });
    expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    expectMtls(srv.seen, '/interceptor');
  });
});

describe.each(reachable.map((s) => [label(s), s] as const))('%s', (_name, spelling) => {
  it('http.request through createMtlsAgent (the host option as written): mTLS', async () => {
    const srv = await permissiveServer();
    const agent = agentFor(srv.port);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .get(
          { host: spelling.host, port: srv.port, path: '/agent', agent, headers: { authorization: SECRET } },
          resolve,
        )
        .on('error', reject);
    });
    res.resume();
    await once(res, 'end');
    expect(getPeer(res).id?.toString()).toBe(BOARDS);
    expectMtls(srv.seen, '/agent');
  });

  it('connectMtls: an authenticated socket', async () => {
    const srv = await permissiveServer();
    const socket = await connectMtls({
      identity: client,
      host: spelling.host,
      port: srv.port,
      expect: BOARDS,
    });
    onCleanup(() => socket.destroy());
    expect(getPeer(socket).id?.toString()).toBe(BOARDS);
    socket.end(`GET /raw HTTP/1.1\r\nhost: x\r\nauthorization: ${SECRET}\r\nconnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString()).toContain('{"mtls":true}');
    expectMtls(srv.seen, '/raw');
  });
});

describe.each(refused.map((s) => [label(s), s] as const))('%s', (_name, spelling) => {
  // A URL cannot carry a zone id (the WHATWG URL parser refuses "[fe80::1%25lo]" before any
  // dispatcher sees it): only the host option of node:http and connectMtls can.
  it('createMtlsAgent refuses it with a typed error, before connecting', async () => {
    const srv = await permissiveServer();
    const agent = agentFor(srv.port);
    const err = await new Promise<unknown>((resolve) => {
      http
        .get({ host: spelling.host, port: srv.port, path: '/agent', agent }, () => resolve(undefined))
        .on('error', resolve);
    });
    expect(isSidecarlessError(err, spelling.refused), String(err)).toBe(true);
    expect((err as Error).message).toContain('zone id');
    expectNothingSent(srv.seen, '/agent');
  });

  it('connectMtls refuses it as an invalid option', async () => {
    // Options are checked when connectMtls is called: it throws before returning a promise.
    const err = await Promise.resolve()
      .then(() => connectMtls({ identity: client, host: spelling.host, port: 1, expect: BOARDS }))
      .then(
        () => expect.fail('connected'),
        (e: unknown) => e,
      );
    expect(isSidecarlessError(err, 'ERR_OPTION_INVALID'), String(err)).toBe(true);
    expect((err as Error).message).toContain('zone id');
  });
});

describe('DNS names: resolved once, and the checked address is the one connected to', () => {
  it('a name whose resolver changes its answer after the check still reaches the checked address', async () => {
    const srv = await permissiveServer();
    // First answer: the keyed address. Any later one (a rebinding): an address of nobody.
    fakeResolver((name, call) =>
      name === 'rebind.test' ? (call === 0 ? ['127.0.0.1'] : ['192.0.2.1']) : undefined,
    );
    const dispatcher = createMtlsDispatcher({
      identity: client,
      destinations: destinationsFor(srv.port),
      connectTimeout: 2_000,
    });
    onCleanup(() => dispatcher.destroy());
    const res = await undiciFetch(`http://rebind.test:${srv.port}/once`, {
      dispatcher,
      headers: { authorization: SECRET },
    });
    expect(await res.json()).toEqual({ mtls: true });
    expect(lookups.filter((n) => n === 'rebind.test')).toEqual(['rebind.test']);
    expectMtls(srv.seen, '/once');
  });
});

describe('searchDomains: a short name is also each name it may resolve to', () => {
  it('fetch, the interceptor and the agent send "boards" over mTLS when boards.demo.test is keyed', async () => {
    const srv = await permissiveServer();
    // "boards" resolves through the search path; the key names the full name only.
    fakeResolver((name) => (name === 'boards' ? ['127.0.0.1'] : undefined));
    const options = {
      identity: client,
      destinations: {
        [`boards.demo.test:${srv.port}`]: { expect: BOARDS },
        '*': { mode: 'plaintext' as const },
      },
      searchDomains: ['demo.test'],
    };
    const dispatcher = createMtlsDispatcher(options);
    const mtls = createMtlsInterceptor(options);
    const base = new Agent();
    const agent = createMtlsAgent({ ...options, protocol: 'http:' });
    onCleanup(async () => {
      await dispatcher.destroy();
      await mtls.close();
      await base.destroy();
      await agent.close();
    });
    const url = `http://boards:${srv.port}`;
    const headers = { authorization: SECRET };
    expect(await (await undiciFetch(`${url}/fetch`, { dispatcher, headers })).json()).toEqual({ mtls: true });
    const viaInterceptor = await undiciFetch(`${url}/interceptor`, {
      dispatcher: base.compose(mtls),
      headers,
    });
    expect(await viaInterceptor.json()).toEqual({ mtls: true });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${url}/agent`, { agent, headers }, resolve).on('error', reject);
    });
    res.resume();
    await once(res, 'end');
    expect(getPeer(res).id?.toString()).toBe(BOARDS);
    for (const path of ['/fetch', '/interceptor', '/agent']) expectMtls(srv.seen, path);
  });

  it('control: without searchDomains, "boards" gets the default', async () => {
    const srv = await permissiveServer();
    fakeResolver((name) => (name === 'boards' ? ['127.0.0.1'] : undefined));
    const dispatcher = createMtlsDispatcher({
      identity: client,
      destinations: { [`boards.demo.test:${srv.port}`]: { expect: BOARDS }, '*': { mode: 'plaintext' } },
    });
    onCleanup(() => dispatcher.destroy());
    const res = await undiciFetch(`http://boards:${srv.port}/plain`, { dispatcher });
    expect(await res.json()).toEqual({ mtls: false });
  });
});
