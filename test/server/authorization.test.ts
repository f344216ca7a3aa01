// The authorization map over real HTTP: what a denied caller sees, what the handler sees, what is
// reported, and that the server and authorize() decide with one compiled policy.
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { describe, expect, it, vi } from 'vitest';
import { authorize } from '../../src/authz/authorize.js';
import { createAuthorizationPolicy } from '../../src/authz/policy.js';
import {
  type AuthorizationEvent,
  channels,
  createLocalCa,
  createMtlsServer,
  getPeer,
  type MtlsServerOptions,
} from '../../src/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { thrownBy } from '../helpers/expect-code.js';
import { rawTlsRequest, requestText } from '../helpers/raw-http.js';
import {
  type ClientCredentials,
  credentialsOf,
  listen,
  mtlsRequest,
  onCleanup,
  plainRequest,
  type Response,
  record,
  run,
} from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const identity = ca.identity('/ns/demo/sa/boards');
const ID = {
  ui: 'spiffe://cluster.local/ns/demo/sa/app-ui',
  ops: 'spiffe://cluster.local/ns/ops/sa/admin',
  intern: 'spiffe://cluster.local/ns/ops/sa/intern',
} as const;
const uiSvid = ca.issue(ID.ui);
const ui = credentialsOf(uiSvid);
const ops = credentialsOf(ca.issue(ID.ops));
const intern = credentialsOf(ca.issue(ID.intern));

const adminOnly = { '/admin/*': 'spiffe://cluster.local/ns/ops/*', '*': 'spiffe://cluster.local/*' };

/** A server whose handler answers with the URL it was given; `handler` counts the calls. */
async function start(options: Omit<MtlsServerOptions, 'identity' | 'protocol'>) {
  const handler = vi.fn((req: IncomingMessage, res: ServerResponse) => res.end(req.url));
  const server = createMtlsServer({ identity, ...options }, handler);
  const events = record<AuthorizationEvent>(server, 'authorization');
  const { port } = await listen(server);
  return { server, port, handler, events };
}

/** The request a caller makes: with its client certificate, over TLS without one, or in plaintext. */
type Caller = ClientCredentials | 'tls' | 'plaintext';

function call(port: number, caller: Caller, path: string, method = 'GET'): Promise<Response> {
  if (caller === 'plaintext') return plainRequest(port, path, { method });
  return mtlsRequest(port, path, caller === 'tls' ? undefined : caller, ca.bundle(), { method });
}

describe('denials over HTTP', () => {
  it('are 403 with a JSON body naming the reason, and nothing else', async () => {
    const { port, handler } = await start({
      mode: 'PERMISSIVE',
      // No '*' default: a path no key covers has no matching rule.
      authorize: { '/admin/*': 'spiffe://cluster.local/ns/ops/*', '/api/*': 'spiffe://cluster.local/*' },
      deny: { '/api/secrets': ID.ui },
    });
    const cases: readonly { caller: Caller; path: string; reason: string }[] = [
      { caller: 'plaintext', path: '/api/x', reason: 'unauthenticated' },
      { caller: 'tls', path: '/api/x', reason: 'unauthenticated' },
      { caller: ui, path: '/admin/x', reason: 'peer_not_allowed' },
      { caller: ui, path: '/elsewhere', reason: 'no_matching_rule' },
      { caller: ui, path: '/api/secrets', reason: 'denied_by_rule' },
    ];
    for (const { caller, path, reason } of cases) {
      const res = await call(port, caller, path);
      expect(res.status, `${reason} ${path}`).toBe(403);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body)).toStrictEqual({ error: 'forbidden', reason });
    }
    expect(handler).not.toHaveBeenCalled();
    // Control, same server: an allowed request reaches the handler.
    expect(await call(port, ui, '/api/x')).toMatchObject({ status: 200, body: '/api/x' });
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it('a request-target that cannot be normalised safely is a 400, whoever asks', async () => {
    // Anyone may call anything, so only the target itself can be refused.
    const { port, handler, events } = await start({
      mode: 'PERMISSIVE',
      authorize: { '*': ['*', 'unauthenticated'] },
    });
    const targets = [
      ['OPTIONS', '*'],
      ['GET', 'http://127.0.0.1/admin'],
      ['GET', '/a%2fb'],
      ['GET', '/%2e%2e/etc/passwd'],
    ] as const;
    for (const [method, target] of targets) {
      const res = await rawTlsRequest(port, ops, ca.bundle(), requestText(method, target));
      expect(res.status, `${method} ${target}`).toBe(400);
      expect(JSON.parse(res.body)).toStrictEqual({ error: 'bad_request', reason: 'bad_request' });
    }
    expect(handler).not.toHaveBeenCalled();
    // The raw target is attacker-chosen text: events report no path for it.
    expect(events.map((e) => [e.method, e.path, e.reason])).toEqual(
      targets.map(([method]) => [method, null, 'bad_request']),
    );
    expect((await rawTlsRequest(port, ops, ca.bundle(), requestText('GET', '/a'))).status).toBe(200);
  });
});

describe('authorizationMode: audit', () => {
  it('lets a denied request through and reports the verdict deny', async () => {
    const { port, handler, events } = await start({ authorize: adminOnly, authorizationMode: 'audit' });
    expect(await call(port, ui, '/admin/x')).toMatchObject({ status: 200, body: '/admin/x' });
    expect(handler).toHaveBeenCalledTimes(1);
    expect(events).toEqual([
      expect.objectContaining({
        peer: ID.ui,
        path: '/admin/x',
        rule: '/admin/*',
        verdict: 'deny',
        allowed: true,
        reason: 'peer_not_allowed',
        mode: 'audit',
      }),
    ]);
  });

  it('never relaxes a bad request or a transport check', async () => {
    const { port, handler } = await start({ authorize: adminOnly, authorizationMode: 'audit' });
    expect((await rawTlsRequest(port, ui, ca.bundle(), requestText('GET', '/admin%2fx'))).status).toBe(400);
    // STRICT still resets a plaintext client.
    const curl = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}/admin/x`]);
    expect(curl.code).toBe(56);
    expect(handler).not.toHaveBeenCalled();
  });
});

describe('the handler', () => {
  it('receives the normalised path with the query as sent', async () => {
    const { port, events } = await start({ authorize: adminOnly });
    const target = '//api/./v1/../items/%7Euser?q=%2e%2e/x&next=//a';
    const res = await rawTlsRequest(port, ui, ca.bundle(), requestText('GET', target));
    expect(res).toMatchObject({ status: 200, body: '/api/items/~user?q=%2e%2e/x&next=//a' });
    expect(events).toMatchObject([{ path: '/api/items/~user', verdict: 'allow' }]);
  });
});

/** Opens one HTTP/2 session and sends every request on it, concurrently. */
async function h2Requests(
  port: number,
  client: ClientCredentials,
  paths: readonly string[],
): Promise<Response[]> {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ca: ca.bundle().toPem(),
    ...client,
    checkServerIdentity: () => undefined,
  });
  onCleanup(() => session.close());
  return Promise.all(
    paths.map(
      (path) =>
        new Promise<Response>((resolve, reject) => {
          const stream = session.request({ ':path': path });
          let status = 0;
          let headers = {};
          let body = '';
          stream.setEncoding('utf8');
          stream.on('response', (h) => {
            status = Number(h[':status']);
            headers = h;
          });
          stream.on('data', (d: string) => {
            body += d;
          });
          stream.on('end', () => resolve({ status, body, headers }));
          stream.on('error', reject);
        }),
    ),
  );
}

describe('HTTP/2', () => {
  it('authorizes every stream: one session, one stream allowed, one denied', async () => {
    const handler = vi.fn((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) =>
      res.end(`${req.url} ${getPeer(req).id}`),
    );
    const server = createMtlsServer({ identity, protocol: 'http2', authorize: adminOnly }, handler);
    const sessions = record(server, 'session');
    const events = record<AuthorizationEvent>(server, 'authorization');
    const { port } = await listen(server);
    const [allowed, denied] = await h2Requests(port, ui, ['//boards/./7?x=1', '/admin/x']);
    expect(allowed).toMatchObject({ status: 200, body: `/boards/7?x=1 ${ID.ui}` });
    expect(denied?.status).toBe(403);
    expect(JSON.parse(denied?.body ?? '')).toStrictEqual({ error: 'forbidden', reason: 'peer_not_allowed' });
    expect(handler).toHaveBeenCalledTimes(1);
    expect(sessions).toHaveLength(1);
    expect(events.map((e) => [e.path, e.verdict]).sort()).toEqual([
      ['/admin/x', 'deny'],
      ['/boards/7', 'allow'],
    ]);
  });
});

describe('decision events', () => {
  it('the authorization event and sidecarless:authz:decision carry IDs, never certificates', async () => {
    const published: unknown[] = [];
    const subscriber = (message: unknown) => published.push(message);
    diagnostics.subscribe(channels.authorization, subscriber);
    onCleanup(() => diagnostics.unsubscribe(channels.authorization, subscriber));
    const { port, events } = await start({ authorize: adminOnly });
    await call(port, ui, '/boards');
    await call(port, ui, '/admin/x');
    expect(channels.authorization).toBe('sidecarless:authz:decision');
    expect(published).toEqual(events);
    expect(events).toEqual([
      {
        peer: ID.ui,
        trustDomain: 'cluster.local',
        mtls: true,
        tls: true,
        remoteAddress: '127.0.0.1',
        method: 'GET',
        path: '/boards',
        rule: '*',
        matcher: 'spiffe://cluster.local/*',
        verdict: 'allow',
        allowed: true,
        reason: 'allowed',
        mode: 'enforce',
      },
      {
        peer: ID.ui,
        trustDomain: 'cluster.local',
        mtls: true,
        tls: true,
        remoteAddress: '127.0.0.1',
        method: 'GET',
        path: '/admin/x',
        rule: '/admin/*',
        matcher: 'spiffe://cluster.local/ns/ops/*',
        verdict: 'deny',
        allowed: false,
        reason: 'peer_not_allowed',
        mode: 'enforce',
      },
    ]);
    // Plain values only: no certificate object, no PEM, no DER.
    for (const event of events) {
      expect(Object.values(event).filter((value) => typeof value === 'object' && value !== null)).toEqual([]);
    }
    const text = JSON.stringify(published);
    expect(text).not.toContain('BEGIN');
    expect(text).not.toContain(uiSvid.leaf.raw.toString('base64').slice(0, 40));
  });
});

describe('server.policy', () => {
  const options = {
    authorize: {
      '/admin/*': 'spiffe://cluster.local/ns/ops/*',
      'GET /reports/*': ID.ui,
      '/healthz': ['*', 'unauthenticated'],
    },
    deny: { 'DELETE /admin/*': ID.intern },
  } as const;

  it('is the compiled policy the server enforces: authorize() gives the same verdicts', async () => {
    const { server, port } = await start({ mode: 'PERMISSIVE', ...options });
    const policy = server.policy;
    if (policy === undefined) return expect.fail('an HTTP server has a policy');
    const cases: readonly { caller: Caller; id: string | null; method: string; path: string }[] = [
      { caller: ops, id: ID.ops, method: 'GET', path: '/admin/x' },
      { caller: ui, id: ID.ui, method: 'GET', path: '/ADMIN/x' },
      { caller: intern, id: ID.intern, method: 'GET', path: '/admin/x' },
      { caller: intern, id: ID.intern, method: 'DELETE', path: '/admin/x' },
      { caller: ui, id: ID.ui, method: 'GET', path: '/reports/7' },
      { caller: ui, id: ID.ui, method: 'HEAD', path: '/reports/7' },
      { caller: ui, id: ID.ui, method: 'POST', path: '/reports/7' },
      { caller: ui, id: ID.ui, method: 'GET', path: '/elsewhere' },
      { caller: ui, id: ID.ui, method: 'GET', path: '/a/%2e%2e/%2e%2e/admin' },
      { caller: 'plaintext', id: null, method: 'GET', path: '/healthz' },
      { caller: 'plaintext', id: null, method: 'GET', path: '/admin/x' },
    ];
    const reasons = new Set<string>();
    for (const { caller, id, method, path } of cases) {
      const decision = authorize(policy, fakePeer(id), { method, path });
      const res = await call(port, caller, path, method);
      const expected = decision.reason === 'allowed' ? 200 : decision.reason === 'bad_request' ? 400 : 403;
      expect(res.status, `${id} ${method} ${path}: ${decision.reason}`).toBe(expected);
      if (expected !== 200 && method !== 'HEAD') expect(JSON.parse(res.body).reason).toBe(decision.reason);
      reasons.add(decision.reason);
    }
    // The table covers every outcome, so agreement is not agreement on one verdict only.
    expect([...reasons].sort()).toEqual([
      'allowed',
      'bad_request',
      'denied_by_rule',
      'no_matching_rule',
      'peer_not_allowed',
      'unauthenticated',
    ]);
  });

  it('is compiled once, frozen, and cannot be swapped', async () => {
    const { server } = await start(options);
    expect(server.policy).toBe(server.policy);
    expect(Object.isFrozen(server.policy)).toBe(true);
    expect(server.policy?.describe()).toEqual(createAuthorizationPolicy(options).describe());
    expect(() => {
      (server as { policy: unknown }).policy = createAuthorizationPolicy({ authorize: { '*': '*' } });
    }).toThrow(TypeError);
  });
});

describe('a bad authorization map', () => {
  const cases: readonly { name: string; map: Pick<MtlsServerOptions, 'authorize' | 'deny'>; key: string }[] =
    [
      { name: 'a lowercase method', map: { authorize: { 'get /x': '*' } }, key: 'get /x' },
      { name: 'an unknown method', map: { deny: { 'FETCH /x': '*' } }, key: 'FETCH /x' },
      { name: 'a star inside a path', map: { authorize: { '/a/*/b': '*' } }, key: '/a/*/b' },
      { name: 'a path not in normal form', map: { authorize: { '/a//b': '*' } }, key: '/a//b' },
      {
        name: 'keys differing only in case',
        map: { authorize: { '/Admin/*': '*', '/admin/*': '*' } },
        key: '/admin/*',
      },
      { name: 'a malformed matcher', map: { authorize: { '/x': 'spiffe://' } }, key: '/x' },
      { name: 'a matcher of the wrong type', map: { authorize: { '/x': 42 as never } }, key: '/x' },
    ];
  for (const { name, map, key } of cases) {
    it(`throws ERR_POLICY_INVALID at construction naming the key: ${name}`, () => {
      const err = thrownBy(() => createMtlsServer({ identity, ...map }), 'ERR_POLICY_INVALID');
      expect(err.detail.field).toBe(key);
      expect(err.message).toContain(key);
    });
  }
});
