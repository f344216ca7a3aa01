// Fuzzed Istio input throws nothing but typed errors: arbitrary text, and objects shaped like
// Istio's with random values where its fields go. Seeded and bounded.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize, isSidecarlessError } from '../../src/index.js';
import { fromIstio, resolveMode } from '../../src/istio/index.js';
import { fakePeer } from '../../src/testing/index.js';

const context = {
  namespace: 'foo',
  labels: { app: 'httpbin' },
  port: 8080,
  trustDomain: 'cluster.local',
  service: { name: 'httpbin', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
};
const peers = [fakePeer('spiffe://cluster.local/ns/foo/sa/a'), fakePeer(null)];

/** Runs the whole import on an input: success, or a SidecarlessError; anything else fails. */
function exercise(input: string | object[]): void {
  try {
    resolveMode(input, context);
    const { authorize: policy } = fromIstio(input, context);
    for (const peer of peers) {
      for (const path of ['/', '/Admin/x/', '/a%2fb']) {
        const d = authorize(policy, peer, { method: 'HEAD', path, host: 'Httpbin.foo:80', port: 8080 });
        expect(typeof d.allowed).toBe('boolean');
      }
    }
  } catch (err) {
    if (!isSidecarlessError(err)) throw err;
    expect(err.code).toMatch(
      /^ERR_(ISTIO_(INVALID|UNSUPPORTED|CONFLICT)|OPTION_INVALID|TRUST_DOMAIN_INVALID)$/,
    );
    expect(err.message.length).toBeGreaterThan(0);
  }
}

const value = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    '*',
    '',
    'STRICT',
    'UNSET',
    'DENY',
    'ALLOW',
    'AUDIT',
    'CUSTOM',
    '/admin/*',
    '*/info',
    'cluster.local/ns/a/sa/b',
    '10.0.0.0/8',
    '8080',
    'GET',
    null,
  ),
);
const names = (keys: readonly string[]) => fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 4 });
const source = names([
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'requestPrincipals',
  'remoteIpBlocks',
  'x',
]);
const operation = names([
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
  'y',
]);
const listOf = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 3 });
const rule = fc.record(
  {
    from: fc.oneof(listOf(fc.record({ source }, { requiredKeys: [] })), value),
    to: fc.oneof(listOf(fc.record({ operation }, { requiredKeys: [] })), value),
    when: fc.oneof(
      listOf(
        fc.record(
          {
            key: fc.oneof(
              fc.constantFrom(
                'source.ip',
                'source.principal',
                'destination.port',
                'connection.sni',
                'request.auth.claims[iss]',
                'x',
              ),
              value,
            ),
            values: value,
            notValues: value,
          },
          { requiredKeys: [] },
        ),
      ),
      value,
    ),
  },
  { requiredKeys: [] },
);
const spec = fc.record(
  {
    action: value,
    rules: fc.oneof(listOf(rule), value),
    selector: fc.oneof(
      fc.record({
        matchLabels: fc.dictionary(fc.constantFrom('app', 'version', '*', ''), value, { maxKeys: 2 }),
      }),
      value,
    ),
    mtls: fc.oneof(fc.record({ mode: value }, { requiredKeys: [] }), value),
    portLevelMtls: fc.oneof(
      fc.dictionary(
        fc.constantFrom('8080', '0', 'x', '70000'),
        fc.record({ mode: value }, { requiredKeys: [] }),
      ),
      value,
    ),
    peers: fc.oneof(
      listOf(
        fc.record(
          { mtls: fc.oneof(fc.record({ mode: value }, { requiredKeys: [] }), value) },
          { requiredKeys: [] },
        ),
      ),
      value,
    ),
    targets: fc.oneof(
      listOf(
        fc.record(
          { name: value, ports: listOf(fc.record({ number: value, name: value }, { requiredKeys: [] })) },
          { requiredKeys: [] },
        ),
      ),
      value,
    ),
    targetRef: value,
  },
  { requiredKeys: [] },
);
const istioObject = fc.record(
  {
    apiVersion: fc.constantFrom(
      'security.istio.io/v1',
      'security.istio.io/v1beta1',
      'authentication.istio.io/v1alpha1',
      'networking.istio.io/v1',
      'v1',
      'x',
    ),
    kind: fc.constantFrom(
      'AuthorizationPolicy',
      'PeerAuthentication',
      'Policy',
      'MeshPolicy',
      'RequestAuthentication',
      'DestinationRule',
      'Service',
      'List',
    ),
    metadata: fc.record(
      {
        name: fc.oneof(fc.constantFrom('default', 'a', 'b'), value),
        namespace: fc.oneof(fc.constantFrom('foo', 'istio-system', 'bar'), value),
        creationTimestamp: fc.oneof(fc.constantFrom('2020-01-01T00:00:00Z', 'yesterday'), value),
        annotations: fc.oneof(fc.constant({ 'istio.io/dry-run': 'true' }), value),
      },
      { requiredKeys: [] },
    ),
    spec: fc.oneof(spec, value),
  },
  { requiredKeys: ['apiVersion', 'kind'] },
);

describe('fuzzed Istio input', () => {
  it('arbitrary text throws only typed errors', () => {
    const yamlish = fc
      .array(
        fc.constantFrom(
          'a',
          ':',
          ' ',
          '\n',
          '-',
          '[',
          ']',
          '{',
          '}',
          '&x',
          '*x',
          '!!str',
          '"',
          "'",
          '#',
          '|',
          '>',
          '---',
          'kind',
          'spec',
          '\t',
          '%',
          '@',
          '?',
        ),
        { maxLength: 60 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish), (text) => exercise(text)),
      { seed: 1306, numRuns: 400 },
    );
  });

  it('Istio-shaped objects with random values throw only typed errors, as YAML and as objects', () => {
    fc.assert(
      fc.property(fc.array(istioObject, { minLength: 1, maxLength: 4 }), (objects) => {
        exercise(objects);
        exercise(objects.map((o) => JSON.stringify(o)).join('\n---\n'));
      }),
      { seed: 2026, numRuns: 400 },
    );
  });

  it('a control: a valid document from the same shapes is accepted', () => {
    expect(() =>
      fromIstio(
        [
          {
            apiVersion: 'security.istio.io/v1',
            kind: 'AuthorizationPolicy',
            metadata: { name: 'a', namespace: 'foo' },
            spec: { rules: [{}] },
          },
        ],
        context,
      ),
    ).not.toThrow();
  });
});
