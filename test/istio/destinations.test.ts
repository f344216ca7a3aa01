// DestinationRule → destinations: modes, expectations (never '*'), Istio's lookup path, refusals.
import { describe, expect, it } from 'vitest';
import { compileDestinations, DESTINATIONS_SEARCH_DOMAINS } from '../../src/client/destinations.js';
import { ISTIO_SEARCH_DOMAINS, istioDestinations } from '../../src/istio/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';

const ctx = { namespace: 'demo', trustDomain: 'cluster.local' };
const dr = (ns: string, name: string, spec: string, meta = '') =>
  `apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: { name: ${name}, namespace: ${ns}${meta} }\nspec: ${spec}\n`;
const LAB = dr(
  'microservices-demo',
  'destinationrule-mtls-istio-mutual',
  '{ host: "*.microservices-demo.svc.cluster.local", trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }',
);

describe('istioDestinations', () => {
  it('the labs rule: mTLS to the namespace, expecting its identities; auto elsewhere in the mesh; plaintext outside', () => {
    const d = istioDestinations(LAB, { namespace: 'microservices-demo', trustDomain: 'cluster.local' });
    expect(d['*.microservices-demo.svc.cluster.local']).toEqual({
      mode: 'mtls',
      expect: 'spiffe://cluster.local/ns/microservices-demo/*',
    });
    expect(d['*.svc.cluster.local']).toEqual({ mode: 'auto', expect: 'spiffe://cluster.local/*' });
    expect(d['*']).toEqual({ mode: 'plaintext' });
    expect(Object.values(d).every((x) => x.expect !== '*')).toBe(true);
    expect((d as Record<symbol, unknown>)[ISTIO_SEARCH_DOMAINS]).toEqual([
      'microservices-demo.svc.cluster.local',
      'svc.cluster.local',
      'cluster.local',
    ]);
    expect(Object.keys(d)).not.toContain(String(ISTIO_SEARCH_DOMAINS));
    // The clients compile it as it is.
    const table = compileDestinations(d);
    expect(table.resolve('boards.microservices-demo.svc.cluster.local', 8080, 'http:')?.mode).toBe('mtls');
    expect(table.resolve('example.com', 443, 'https:')?.mode).toBe('plaintext');
  });

  it('short names reach their service through the search domains the result carries', () => {
    const d = istioDestinations(LAB, { namespace: 'microservices-demo', trustDomain: 'cluster.local' });
    expect(ISTIO_SEARCH_DOMAINS).toBe(DESTINATIONS_SEARCH_DOMAINS);
    const boards = compileDestinations(d).resolve('boards', 8080, 'http:');
    expect(boards?.mode).toBe('mtls');
    expect(boards?.keys).toContain('*.microservices-demo.svc.cluster.local');
    // The server must prove the namespace: a workload of another namespace fails the check.
    expect(boards?.expect?.(fakePeer('spiffe://cluster.local/ns/microservices-demo/sa/boards'))).toBe(true);
    expect(boards?.expect?.(fakePeer('spiffe://cluster.local/ns/other/sa/boards'))).toBe(false);
    // A client's own searchDomains option comes first: here the short name finds no mesh key.
    expect(compileDestinations(d, ['example.com']).resolve('boards', 8080, 'http:')?.mode).toBe('plaintext');
    // Control: without the symbol (a plain copy of the keys), a short name is only itself.
    expect(compileDestinations({ ...d }).resolve('boards', 8080, 'http:')?.mode).toBe('plaintext');
  });

  it('hosts without a rule are auto, expecting the host namespace', () => {
    const d = istioDestinations('', ctx, { namespaces: ['ops'] });
    expect(d['*.demo.svc.cluster.local']).toEqual({
      mode: 'auto',
      expect: 'spiffe://cluster.local/ns/demo/*',
    });
    expect(d['*.ops.svc.cluster.local']).toEqual({ mode: 'auto', expect: 'spiffe://cluster.local/ns/ops/*' });
  });

  it('DISABLE is plaintext; portLevelSettings give host:port destinations', () => {
    const d = istioDestinations(
      dr(
        'demo',
        'boards',
        '{ host: boards, trafficPolicy: { tls: { mode: ISTIO_MUTUAL }, portLevelSettings: [{ port: { number: 9090 }, tls: { mode: DISABLE } }] } }',
      ),
      ctx,
    );
    // A short host is read in the rule's namespace.
    expect(d['boards.demo.svc.cluster.local']).toEqual({
      mode: 'mtls',
      expect: 'spiffe://cluster.local/ns/demo/*',
    });
    expect(d['boards.demo.svc.cluster.local:9090']).toEqual({ mode: 'plaintext' });
  });

  it('subjectAltNames and serviceAccounts name the expected server', () => {
    const d = istioDestinations(
      docs(
        dr(
          'demo',
          'a',
          '{ host: a.demo.svc.cluster.local, trafficPolicy: { tls: { mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/demo/sa/a-v2"] } } }',
        ),
        dr('demo', 'b', '{ host: b.demo.svc.cluster.local, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }'),
      ),
      ctx,
      { serviceAccounts: { b: 'boards', 'c.ops.svc.cluster.local': ['c1', 'c2'] } },
    );
    expect(d['a.demo.svc.cluster.local']?.expect).toEqual(['spiffe://cluster.local/ns/demo/sa/a-v2']);
    expect(d['b.demo.svc.cluster.local']?.expect).toEqual(['spiffe://cluster.local/ns/demo/sa/boards']);
    expect(d['c.ops.svc.cluster.local']).toEqual({
      mode: 'auto',
      expect: ['spiffe://cluster.local/ns/ops/sa/c1', 'spiffe://cluster.local/ns/ops/sa/c2'],
    });
  });

  it('follows the lookup path: the client namespace first, then the service namespace, then the root', () => {
    const d = istioDestinations(
      docs(
        dr('demo', 'broad', '{ host: "*.svc.cluster.local", trafficPolicy: { tls: { mode: DISABLE } } }'),
        dr(
          'ops',
          'exact',
          '{ host: x.ops.svc.cluster.local, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }',
        ),
        dr('istio-system', 'mesh', '{ host: "*.local", trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }'),
        dr(
          'other',
          'elsewhere',
          '{ host: "*.svc.cluster.local", trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }',
        ),
      ),
      ctx,
    );
    // Istio stops at the client namespace's rule, however specific the service's is.
    expect(d['x.ops.svc.cluster.local']).toEqual({ mode: 'plaintext' });
    expect(d['*.svc.cluster.local']).toEqual({ mode: 'plaintext' });
    // A rule of a third namespace only covers its own services, and is still behind the client's.
    expect(d['*.other.svc.cluster.local']).toEqual({ mode: 'plaintext' });
    // Outside the client rule, the root rule applies.
    expect(d['*.local']).toEqual({ mode: 'mtls', expect: 'spiffe://cluster.local/*' });
  });

  it('honours exportTo', () => {
    const hidden = dr(
      'ops',
      'private',
      '{ host: x.ops.svc.cluster.local, exportTo: ["."], trafficPolicy: { tls: { mode: DISABLE } } }',
    );
    expect(istioDestinations(hidden, ctx)['x.ops.svc.cluster.local']).toBeUndefined();
    expect(istioDestinations(hidden, { ...ctx, namespace: 'ops' })['x.ops.svc.cluster.local']).toEqual({
      mode: 'plaintext',
    });
  });

  it('of two rules for one host, the oldest applies; without timestamps they are refused', () => {
    const older = dr(
      'demo',
      'older',
      '{ host: y.demo.svc.cluster.local, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }',
      ', creationTimestamp: "2020-01-01T00:00:00Z"',
    );
    const newer = dr(
      'demo',
      'newer',
      '{ host: y.demo.svc.cluster.local, trafficPolicy: { tls: { mode: DISABLE } } }',
      ', creationTimestamp: "2021-01-01T00:00:00Z"',
    );
    expect(istioDestinations(docs(newer, older), ctx)['y.demo.svc.cluster.local']?.mode).toBe('mtls');
    const untimed = (n: string) =>
      dr('demo', n, '{ host: y.demo.svc.cluster.local, trafficPolicy: { tls: { mode: DISABLE } } }');
    const err = expectCode(
      () => istioDestinations(docs(untimed('one'), untimed('two')), ctx),
      'ERR_ISTIO_CONFLICT',
    );
    expect(err.message).toContain('DestinationRule/demo/two');
  });

  it.each([
    [
      'SIMPLE',
      '{ host: x.com, trafficPolicy: { tls: { mode: SIMPLE } } }',
      'ERR_ISTIO_UNSUPPORTED',
      'spec.trafficPolicy.tls.mode',
    ],
    [
      'MUTUAL with files',
      '{ host: db, trafficPolicy: { tls: { mode: MUTUAL, clientCertificate: /etc/certs/c.pem, privateKey: /etc/certs/k.pem } } }',
      'ERR_ISTIO_UNSUPPORTED',
      'spec.trafficPolicy.tls.mode',
    ],
    [
      'a DNS subjectAltName',
      '{ host: x, trafficPolicy: { tls: { mode: ISTIO_MUTUAL, subjectAltNames: [x.example.com] } } }',
      'ERR_ISTIO_UNSUPPORTED',
      'subjectAltNames[0]',
    ],
    [
      'files with ISTIO_MUTUAL',
      '{ host: x, trafficPolicy: { tls: { mode: ISTIO_MUTUAL, caCertificates: /etc/ca.pem } } }',
      'ERR_ISTIO_INVALID',
      'tls.caCertificates',
    ],
    [
      'per-port TLS on a wildcard',
      '{ host: "*.demo.svc.cluster.local", trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: DISABLE } }] } }',
      'ERR_ISTIO_UNSUPPORTED',
      'portLevelSettings[0].tls',
    ],
    [
      'TLS per subset',
      '{ host: x, subsets: [{ name: v2, labels: { version: v2 }, trafficPolicy: { tls: { mode: DISABLE } } }] }',
      'ERR_ISTIO_UNSUPPORTED',
      'spec.subsets[0].trafficPolicy',
    ],
    [
      'a tunnel',
      '{ host: x, trafficPolicy: { tunnel: { targetHost: y, targetPort: 1 } } }',
      'ERR_ISTIO_UNSUPPORTED',
      'spec.trafficPolicy.tunnel',
    ],
    [
      'an unknown mode',
      '{ host: x, trafficPolicy: { tls: { mode: STRICT } } }',
      'ERR_ISTIO_INVALID',
      'tls.mode',
    ],
    ['a bad host', '{ host: "a b" }', 'ERR_ISTIO_INVALID', 'spec.host'],
  ] as const)('refuses %s, naming the rule and the field', (_what, spec, code, field) => {
    const err = expectCode(() => istioDestinations(dr('demo', 'r', spec), ctx), code);
    expect(err.detail.field).toBe(`DestinationRule/demo/r:${err.detail.field?.split(':')[1]}`);
    expect(err.detail.field).toContain(field);
    expect(err.message).toMatch(/^DestinationRule demo\/r: /);
  });

  it('a control: load balancing settings are accepted (and reported as not applied)', () => {
    const d = istioDestinations(
      dr(
        'demo',
        'lb',
        '{ host: x, trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, tls: { mode: ISTIO_MUTUAL } } }',
      ),
      ctx,
    );
    expect(d['x.demo.svc.cluster.local']?.mode).toBe('mtls');
  });
});

function docs(...parts: string[]): string {
  return parts.join('---\n');
}
