// `sidecarless policy explain`: the report names the deciding objects; the command reads files,
// prints text or JSON, and answers usage errors and refused documents with their exit codes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPolicyExplain } from '../../src/istio/explain-command.js';
import { explainIstio, formatIstioExplanation } from '../../src/istio/index.js';
import { tempFiles } from '../helpers/server.js';

const POLICIES = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: demo }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: boards-readers, namespace: demo }
spec:
  selector: { matchLabels: { app: boards } }
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/demo/sa/app-ui"] } }]
    to: [{ operation: { methods: [GET], paths: ["/shareditems*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: other, namespace: demo }
spec: { selector: { matchLabels: { app: reviews } } }
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: { name: boards, namespace: demo }
spec: { hosts: [boards] }
`;
const context = { namespace: 'demo', labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' };

function capture(argv: string[]) {
  let out = '';
  let err = '';
  const code = runPolicyExplain(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('explainIstio', () => {
  it('names the deciding objects and what does not apply', () => {
    const e = explainIstio(POLICIES, context);
    expect(e.mode).toMatchObject({
      mode: 'STRICT',
      level: 'namespace',
      decidedBy: 'PeerAuthentication/demo/default',
    });
    expect(e.authorization.rules.map((r) => r.name)).toEqual([
      'AuthorizationPolicy/demo/boards-readers rules[0]',
    ]);
    expect(e.authorization.policies).toContainEqual({
      name: 'AuthorizationPolicy/demo/other',
      applies: false,
      why: 'its selector does not match the workload labels',
    });
    expect(e.authorization.notes.join('\n')).toContain('VirtualService/demo/boards skipped');
    expect(e.destinations[0]).toMatchObject({
      key: '*.demo.svc.cluster.local',
      mode: 'auto',
      expect: 'spiffe://cluster.local/ns/demo/*',
    });
    const text = formatIstioExplanation(e);
    expect(text).toContain('mode      STRICT  (namespace: PeerAuthentication/demo/default)');
    expect(text).toContain('ALLOW  AuthorizationPolicy/demo/boards-readers rules[0]');
    expect(text).toContain('AuthorizationPolicy/demo/other does not apply');
  });

  it("shows the library default beside Istio's when nothing decides the mode", () => {
    const text = formatIstioExplanation(explainIstio('', context));
    expect(text).toContain('mode      PERMISSIVE  (default)');
    expect(text).toContain('sidecarless without Istio documents: STRICT');
    expect(text).toContain('no ALLOW policy applies');
  });
});

describe('sidecarless policy explain', () => {
  it('prints the report for -f policies.yaml --namespace demo --labels app=boards --port 8080', () => {
    const files = tempFiles({ 'policies.yaml': POLICIES });
    const r = capture([
      '-f',
      files['policies.yaml'] as string,
      '--namespace',
      'demo',
      '--labels',
      'app=boards',
      '--port',
      '8080',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('mode      STRICT');
  });

  it('--json prints the same report as JSON', () => {
    const files = tempFiles({ 'policies.yaml': POLICIES });
    const r = capture([
      '-f',
      files.dir as string,
      '--namespace=demo',
      '--labels=app=boards',
      '--port=8080',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(JSON.parse(JSON.stringify(explainIstio(POLICIES, context))));
  });

  it('answers a usage error with 2 and a refused document with 1, naming it', () => {
    expect(capture(['--namespace', 'demo', '--port', '8080'])).toMatchObject({ code: 2, out: '' });
    expect(capture(['-f', 'x.yaml', '--namespace', 'demo', '--port', 'eighty']).err).toContain(
      '--port takes a port number',
    );
    const files = tempFiles({});
    const file = join(files.dir as string, 'jwt.yaml');
    writeFileSync(
      file,
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: jwt, namespace: demo }\nspec: { action: CUSTOM, provider: { name: x }, rules: [{}] }\n',
    );
    const r = capture(['-f', file, '--namespace', 'demo', '--port', '8080']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('ERR_ISTIO_UNSUPPORTED: AuthorizationPolicy demo/jwt: spec.action');
  });
});
