// The compiled Istio policy in a real server: probePaths under STRICT, audit and dry-run matches
// in the authorization events, the audit mode, and what describe() says.
import { describe, expect, it } from 'vitest';
import type { AuthorizationEvent } from '../../src/index.js';
import { authorize, createLocalCa, createMtlsServer } from '../../src/index.js';
import { fromIstio } from '../../src/istio/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { credentialsOf, listen, mtlsRequest, plainRequest } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const context = { namespace: 'demo', labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' };
const STRICT =
  'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: demo }\nspec: { mtls: { mode: STRICT } }\n';
const ONLY_UI =
  'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ui, namespace: demo }\nspec: { rules: [{ from: [{ source: { principals: [cluster.local/ns/demo/sa/app-ui] } }] }] }\n';
const AUDIT =
  'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: audit-admin, namespace: demo }\nspec: { action: AUDIT, rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] }\n';
const docs = (...parts: string[]) => parts.join('---\n');

async function serve(yaml: string, options = {}) {
  const events: AuthorizationEvent[] = [];
  const server = createMtlsServer(
    { identity: ca.identity('/ns/demo/sa/boards'), ...fromIstio(yaml, context, options) },
    (req, res) => res.end(req.url),
  );
  server.on('authorization', (e) => events.push(e));
  const { port } = await listen(server);
  return { port, events };
}

const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
const other = credentialsOf(ca.issue('/ns/demo/sa/other'));

describe('the Istio policy in a server', () => {
  it('probePaths: a plaintext probe passes STRICT and the policy; other plaintext requests are reset', async () => {
    const options = fromIstio(docs(STRICT, ONLY_UI), context, { probePaths: ['/healthz'] });
    expect(options.plaintextPaths).toEqual(['/healthz']);
    const { port } = await serve(docs(STRICT, ONLY_UI), { probePaths: ['/healthz'] });
    expect((await plainRequest(port, '/healthz')).status).toBe(200);
    await expect(plainRequest(port, '/boards')).rejects.toThrow(/ECONNRESET|socket hang up/);
    expect((await mtlsRequest(port, '/boards', ui, ca.bundle())).status).toBe(200);
    expect((await mtlsRequest(port, '/boards', other, ca.bundle())).status).toBe(403);
  });

  it('without probePaths there are no plaintext paths', () => {
    expect(fromIstio(docs(STRICT, ONLY_UI), context)).not.toHaveProperty('plaintextPaths');
    // PERMISSIVE already serves plaintext: probePaths exempt probes from the policy only.
    expect(fromIstio(ONLY_UI, context, { probePaths: ['/healthz'] })).not.toHaveProperty('plaintextPaths');
  });

  it('reports AUDIT matches in the authorization event, without changing the decision', async () => {
    const { port, events } = await serve(docs(ONLY_UI, AUDIT));
    expect((await mtlsRequest(port, '/admin/users', ui, ca.bundle())).status).toBe(200);
    expect((await mtlsRequest(port, '/admin/users', other, ca.bundle())).status).toBe(403);
    expect((await mtlsRequest(port, '/boards', ui, ca.bundle())).status).toBe(200);
    expect(events.map((e) => [e.verdict, e.rule, e.audit])).toEqual([
      ['allow', 'AuthorizationPolicy/demo/ui rules[0]', ['AuthorizationPolicy/demo/audit-admin rules[0]']],
      ['deny', 'AuthorizationPolicy/demo/ui rules[0]', ['AuthorizationPolicy/demo/audit-admin rules[0]']],
      ['allow', 'AuthorizationPolicy/demo/ui rules[0]', undefined],
    ]);
  });

  it('authorizationMode "audit" decides and reports, and lets denials through', async () => {
    const { port, events } = await serve(ONLY_UI, { authorizationMode: 'audit' });
    expect((await mtlsRequest(port, '/boards', other, ca.bundle())).status).toBe(200);
    expect(events[0]).toMatchObject({
      verdict: 'deny',
      allowed: true,
      mode: 'audit',
      reason: 'peer_not_allowed',
    });
  });

  it('describe() lists the rules in evaluation order and the notes', () => {
    const d = fromIstio(docs(AUDIT, ONLY_UI), context).authorize.describe();
    expect(d.authorize).toEqual([]);
    expect(d.engine?.kind).toBe('istio');
    expect(d.engine?.rules.map((r) => [r.action, r.enforced, r.name])).toEqual([
      ['ALLOW', true, 'AuthorizationPolicy/demo/ui rules[0]'],
      ['AUDIT', false, 'AuthorizationPolicy/demo/audit-admin rules[0]'],
    ]);
    const none = fromIstio('', context).authorize.describe();
    expect(none.engine?.notes.join('\n')).toContain('no ALLOW policy applies');
  });

  it('a decision in the router reading says so in its matcher', () => {
    const deny =
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: d, namespace: demo }\nspec: { action: DENY, rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] }\n';
    const policy = fromIstio(deny, context).authorize;
    const peer = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
    expect(authorize(policy, peer, { method: 'GET', path: '/admin', port: 8080 }).matcher).not.toContain(
      'router reading',
    );
    expect(authorize(policy, peer, { method: 'GET', path: '/Admin', port: 8080 }).matcher).toContain(
      'router reading',
    );
  });
});
