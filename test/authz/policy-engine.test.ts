// A policy engine (the Istio import's kind of compiled policy) decides through the same doors as a
// map policy: authorize() and a server's `authorize` option, with the request's host, port and SNI.
import { describe, expect, it } from 'vitest';
import { type AuthorizationDecision, authorize } from '../../src/authz/authorize.js';
import type { Peer } from '../../src/authz/peer.js';
import {
  type AuthorizationMode,
  type AuthorizationPolicyDescription,
  createAuthorizationPolicy,
  type NormalizedAuthorizationRequest,
  PolicyEngine,
} from '../../src/authz/policy.js';
import { createLocalCa, createMtlsServer } from '../../src/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';
import { credentialsOf, listen, mtlsRequest } from '../helpers/server.js';

/** Allows GET on port `port` of host `boards` only; records every request it was asked about. */
class PortEngine extends PolicyEngine {
  readonly mode: AuthorizationMode = 'enforce';
  readonly seen: NormalizedAuthorizationRequest[] = [];
  constructor(readonly port: number | null) {
    super();
  }
  describe(): AuthorizationPolicyDescription {
    return { mode: this.mode, authorize: [], deny: [] };
  }
  evaluate(peer: Peer, request: NormalizedAuthorizationRequest): AuthorizationDecision {
    this.seen.push(request);
    const ok =
      peer.mtls && request.method === 'GET' && request.port === this.port && request.host === 'boards';
    return {
      allowed: ok,
      verdict: ok ? 'allow' : 'deny',
      reason: ok ? 'allowed' : 'no_matching_rule',
      rule: ok ? 'engine' : null,
      matcher: null,
      method: request.method,
      path: request.path,
      mode: this.mode,
    };
  }
}

describe('PolicyEngine through authorize()', () => {
  it('gets the normalised path, the host without its port, the port and the SNI', () => {
    const engine = new PortEngine(8080);
    const peer = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
    const d = authorize(engine, peer, {
      method: 'get',
      path: '//a/./b?x=1',
      host: 'Boards:8080',
      port: 8080,
      sni: 'Boards.demo',
    });
    expect(d.allowed).toBe(true);
    expect(engine.seen).toEqual([
      { method: 'GET', path: '/a/b', host: 'boards', port: 8080, sni: 'boards.demo' },
    ]);
    expect(
      authorize(engine, peer, { method: 'GET', path: '/', host: '[::1]:8080', port: 8080 }).allowed,
    ).toBe(false);
    expect(engine.seen.at(-1)?.host).toBe('::1');
  });

  it('never sees a request the normaliser refused', () => {
    const engine = new PortEngine(8080);
    const d = authorize(engine, fakePeer('spiffe://cluster.local/x'), { method: 'GET', path: '/a%2fb' });
    expect(d.reason).toBe('bad_request');
    expect(engine.seen).toHaveLength(0);
  });

  it('refuses an object that only looks like a policy', () => {
    const forged = { mode: 'enforce', describe: () => ({}), evaluate: () => ({ allowed: true }) };
    expectCode(
      () => authorize(forged as never, fakePeer(null), { method: 'GET', path: '/' }),
      'ERR_OPTION_INVALID',
    );
  });
});

describe('PolicyEngine as a server option', () => {
  const ca = createLocalCa({ trustDomain: 'cluster.local' });
  const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));

  it('decides each request with the port the connection arrived on and the Host header', async () => {
    const engine = new PortEngine(null);
    const server = createMtlsServer(
      { identity: ca.identity('/ns/demo/sa/boards'), authorize: engine },
      (_req, res) => res.end('ok'),
    );
    const { port } = await listen(server);
    (engine as { port: number | null }).port = port;
    const allowed = await mtlsRequest(port, '/x', ui, ca.bundle(), { headers: { host: `boards:${port}` } });
    expect(allowed.status).toBe(200);
    const other = await mtlsRequest(port, '/x', ui, ca.bundle(), { headers: { host: 'reviews' } });
    expect(other.status).toBe(403);
    expect(engine.seen.map((r) => r.host)).toEqual(['boards', 'reviews']);
  });

  it('refuses deny or authorizationMode beside a compiled policy, naming the field', () => {
    const identity = ca.identity('/ns/demo/sa/boards');
    const policy = createAuthorizationPolicy({ authorize: { '*': '*' } });
    expectCode(
      () => createMtlsServer({ identity, authorize: policy, deny: { '/x': '*' } }),
      'ERR_OPTION_INVALID',
    );
    expectCode(
      () => createMtlsServer({ identity, authorize: new PortEngine(1), authorizationMode: 'audit' }),
      'ERR_OPTION_INVALID',
    );
    expectCode(
      () => createMtlsServer({ identity, protocol: 'tls', authorize: policy as never }),
      'ERR_OPTION_INVALID',
    );
  });
});
