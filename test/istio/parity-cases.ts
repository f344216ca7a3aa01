// The decision-parity table: each case is an Istio configuration and requests with the outcome
// Istio's documentation gives (or implies), citing the page and the rule in our words. `doc`
// marks cases that reproduce an example of an Istio reference or concept page with the outcome
// that page states. Cases touching a deliberate deviation assert our decision and name the
// deviation (docs/istio.md, "Deviations"). `e2e` marks the sample that also runs through real
// servers (parity-e2e.test.ts).
import type { AuthorizationReason, ErrorCode, MtlsMode } from '../../src/index.js';
import type { FromIstioOptions, IstioContext } from '../../src/istio/index.js';

export const REF = 'https://istio.io/latest/docs/reference/config/security/authorization-policy/';
export const CONCEPTS = 'https://istio.io/latest/docs/concepts/security/';
export const AUTHN = 'https://istio.io/latest/docs/concepts/security/#authentication-policies';
export const PA_REF = 'https://istio.io/latest/docs/reference/config/security/peer_authentication/';
export const NORMALIZATION = 'https://istio.io/latest/docs/reference/config/security/normalization/';
export const BEST = 'https://istio.io/latest/docs/ops/best-practices/security/';
export const TD = 'https://istio.io/latest/docs/tasks/security/authorization/authz-td-migration/';
export const CONDITIONS = 'https://istio.io/latest/docs/reference/config/security/conditions/';
export const V1ALPHA1 = 'https://istio.io/v1.4/docs/reference/config/security/istio.authentication.v1alpha1/';
export const VALIDATION = 'https://istio.io/latest/docs/reference/config/security/authorization-policy/#Rule';

/** One request and its expected outcome. */
export interface ParityRequest {
  /** `ns/x/sa/y` (trust domain cluster.local), a full SPIFFE ID, or null for a plaintext peer. */
  readonly peer: string | null;
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  /** The destination port; default the context's port; null: not given (unknown). */
  readonly port?: number | null;
  readonly ip?: string;
  readonly sni?: string;
  readonly want: 'allow' | 'deny' | 'bad_request';
  readonly reason?: AuthorizationReason;
  /** The deciding rule (prefix of `decision.rule`). */
  readonly rule?: string;
  readonly audit?: readonly string[];
}

export interface ParityCase {
  readonly id: string;
  readonly name: string;
  /** The Istio page the case follows. */
  readonly cite: string;
  /** The rule it follows, in our words. */
  readonly rule: string;
  /** Reproduces an example of the cited page, with the outcome the page states. */
  readonly doc?: true;
  /** The deviation (docs/istio.md) the case touches: our decision is asserted. */
  readonly deviation?: string;
  readonly yaml: string;
  readonly context?: Partial<IstioContext>;
  readonly options?: FromIstioOptions;
  /** The expected mode (PeerAuthentication cases). */
  readonly mode?: MtlsMode;
  /** The expected deciding object of the mode. */
  readonly decidedBy?: string | null;
  /** The translation is refused with this code; the field path must contain `field`. */
  readonly refused?: { readonly code: ErrorCode; readonly field: string };
  readonly requests?: readonly ParityRequest[];
  readonly e2e?: true;
}

export const BASE_CONTEXT: IstioContext = {
  namespace: 'foo',
  labels: { app: 'httpbin', version: 'v1' },
  port: 8080,
  trustDomain: 'cluster.local',
};

/** The context a case runs in: the base context with the case's changes. */
export function contextOf(c: ParityCase): IstioContext {
  return { ...BASE_CONTEXT, ...c.context };
}

/** A case's peer as a SPIFFE ID (`ns/x/sa/y` is in cluster.local). */
export function peerId(peer: string): string {
  return peer.startsWith('spiffe://') ? peer : `spiffe://cluster.local/${peer}`;
}

function object(
  apiVersion: string,
  kind: string,
  ns: string | null,
  name: string,
  spec: string,
  meta = '',
): string {
  const namespace = ns === null ? '' : `, namespace: ${ns}`;
  return `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: { name: ${name}${namespace}${meta} }\nspec: ${spec}\n`;
}
const ap = (ns: string, name: string, spec: string, meta = '') =>
  object('security.istio.io/v1', 'AuthorizationPolicy', ns, name, spec, meta);
const pa = (ns: string, name: string, spec: string, meta = '') =>
  object('security.istio.io/v1beta1', 'PeerAuthentication', ns, name, spec, meta);
const policy = (ns: string, name: string, spec: string) =>
  object('authentication.istio.io/v1alpha1', 'Policy', ns, name, spec);
const docs = (...parts: string[]) => parts.join('---\n');
const at = (iso: string) => `, creationTimestamp: "${iso}"`;

const allowAll = ap('foo', 'allow-all', '{ rules: [{}] }');

export const AUTHORIZATION_CASES: readonly ParityCase[] = [
  {
    id: 'A01',
    name: 'DENY POST from namespace dev',
    cite: REF,
    rule: 'a DENY policy denies a request matching any of its rules; requests it does not match fall to the ALLOW layer (none here: allowed)',
    doc: true,
    e2e: true,
    yaml: ap(
      'foo',
      'httpbin',
      '{ action: DENY, rules: [{ from: [{ source: { namespaces: [dev] } }], to: [{ operation: { methods: [POST] } }] }] }',
    ),
    requests: [
      {
        peer: 'ns/dev/sa/sleep',
        method: 'POST',
        want: 'deny',
        reason: 'denied_by_rule',
        rule: 'AuthorizationPolicy/foo/httpbin rules[0]',
      },
      { peer: 'ns/dev/sa/sleep', method: 'GET', want: 'allow' },
      { peer: 'ns/test/sa/sleep', method: 'POST', want: 'allow' },
    ],
  },
  {
    id: 'A02',
    name: 'DENY POST on port 8080',
    cite: REF,
    rule: '`ports` compares the port the connection arrived on; the DENY applies on 8080 only',
    doc: true,
    yaml: ap(
      'foo',
      'httpbin',
      '{ action: DENY, rules: [{ to: [{ operation: { methods: [POST], ports: ["8080"] } }] }] }',
    ),
    requests: [
      { peer: 'ns/foo/sa/a', method: 'POST', port: 8080, want: 'deny', reason: 'denied_by_rule' },
      { peer: 'ns/foo/sa/a', method: 'POST', port: 9090, want: 'allow' },
      { peer: 'ns/foo/sa/a', method: 'GET', port: 8080, want: 'allow' },
    ],
  },
  {
    id: 'A03',
    name: 'AUDIT GET /user/profile/* only reports',
    cite: REF,
    rule: 'AUDIT policies mark matching requests for audit and never change allow or deny',
    doc: true,
    context: { namespace: 'ns1', labels: { app: 'myapi' } },
    yaml: ap(
      'ns1',
      'anyname',
      '{ selector: { matchLabels: { app: myapi } }, action: AUDIT, rules: [{ to: [{ operation: { methods: [GET], paths: ["/user/profile/*"] } }] }] }',
    ),
    requests: [
      {
        peer: 'ns/a/sa/b',
        path: '/user/profile/7',
        want: 'allow',
        audit: ['AuthorizationPolicy/ns1/anyname rules[0]'],
      },
      { peer: 'ns/a/sa/b', method: 'POST', path: '/user/profile/7', want: 'allow' },
    ],
  },
  {
    id: 'A04',
    name: 'allow-nothing: an empty spec denies every request in the namespace',
    cite: REF,
    rule: 'an ALLOW policy without rules matches nothing, and once an ALLOW policy applies, a request no ALLOW rule matches is denied',
    doc: true,
    e2e: true,
    yaml: ap('foo', 'allow-nothing', '{}'),
    requests: [
      { peer: 'ns/foo/sa/a', want: 'deny', reason: 'no_matching_rule' },
      { peer: null, want: 'deny', reason: 'no_matching_rule' },
    ],
  },
  {
    id: 'A05',
    name: 'allow-all: one empty rule matches every request',
    cite: REF,
    rule: 'an empty rule is always matched',
    doc: true,
    yaml: allowAll,
    requests: [
      {
        peer: 'ns/foo/sa/a',
        method: 'DELETE',
        path: '/anything',
        want: 'allow',
        rule: 'AuthorizationPolicy/foo/allow-all rules[0]',
      },
      { peer: null, want: 'allow' },
    ],
  },
  {
    id: 'A06',
    name: 'allow-nothing with a selector denies the selected workload',
    cite: REF,
    rule: 'a selector restricts a policy to matching workloads of its namespace',
    doc: true,
    context: { namespace: 'bar', labels: { app: 'httpbin' } },
    yaml: ap('bar', 'allow-nothing', '{ selector: { matchLabels: { app: httpbin } } }'),
    requests: [{ peer: 'ns/bar/sa/a', want: 'deny', reason: 'no_matching_rule' }],
  },
  {
    id: 'A07',
    name: 'allow-nothing with a selector leaves other workloads alone',
    cite: REF,
    rule: 'a workload the selector does not match has no policy, so it is allowed',
    doc: true,
    context: { namespace: 'bar', labels: { app: 'reviews' } },
    yaml: ap('bar', 'allow-nothing', '{ selector: { matchLabels: { app: httpbin } } }'),
    requests: [{ peer: 'ns/bar/sa/a', want: 'allow' }],
  },
  {
    id: 'A08',
    name: 'root-namespace selector applies in every namespace',
    cite: REF,
    rule: 'a policy in the root namespace applies mesh-wide; its selector matches workloads of all namespaces',
    doc: true,
    context: { namespace: 'foo', labels: { app: 'ratings', version: 'v1' } },
    yaml: ap('istio-system', 'allow-nothing', '{ selector: { matchLabels: { version: v1 } } }'),
    requests: [{ peer: 'ns/foo/sa/a', want: 'deny', reason: 'no_matching_rule' }],
  },
  {
    id: 'A09',
    name: 'istio.io/dry-run: a DENY that is only reported',
    cite: REF,
    rule: 'a policy annotated istio.io/dry-run is evaluated and reported but not enforced',
    doc: true,
    yaml: ap(
      'foo',
      'dry-run-example',
      '{ selector: { matchLabels: { app: httpbin } }, action: DENY, rules: [{ to: [{ operation: { paths: ["/headers"] } }] }] }',
      ', annotations: { "istio.io/dry-run": "true" }',
    ),
    requests: [
      {
        peer: 'ns/foo/sa/a',
        path: '/headers',
        want: 'allow',
        audit: ['AuthorizationPolicy/foo/dry-run-example rules[0] (dry-run DENY)'],
      },
      { peer: 'ns/foo/sa/a', path: '/ip', want: 'allow' },
    ],
  },
  {
    id: 'A10',
    name: 'CUSTOM (external authorizer) is refused',
    cite: REF,
    rule: 'CUSTOM hands the decision to an extension provider; sidecarless calls none, so it refuses the policy',
    context: { namespace: 'istio-system', labels: { app: 'istio-ingressgateway' } },
    yaml: ap(
      'istio-system',
      'ext-authz',
      '{ selector: { matchLabels: { app: istio-ingressgateway } }, action: CUSTOM, provider: { name: my-custom-authz }, rules: [{ to: [{ operation: { paths: ["/admin/*"] } }] }] }',
    ),
    refused: {
      code: 'ERR_ISTIO_UNSUPPORTED',
      field: 'AuthorizationPolicy/istio-system/ext-authz:spec.action',
    },
  },
  {
    id: 'A11',
    name: 'JWT claims in `when` are refused by name',
    cite: REF,
    rule: 'request.auth.claims come from JWT request authentication, which sidecarless does not do',
    yaml: ap(
      'foo',
      'httpbin',
      '{ rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }], when: [{ key: "request.auth.claims[iss]", values: ["https://accounts.google.com"] }] }] }',
    ),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].when[0].key' },
  },
  {
    id: 'A12',
    name: 'allow-read: GET and HEAD on app products',
    cite: CONCEPTS,
    rule: 'an ALLOW policy admits the methods it lists; another method matches no ALLOW rule and is denied',
    doc: true,
    context: { namespace: 'default', labels: { app: 'products' } },
    yaml: ap(
      'default',
      'allow-read',
      '{ selector: { matchLabels: { app: products } }, action: ALLOW, rules: [{ to: [{ operation: { methods: [GET, HEAD] } }] }] }',
    ),
    requests: [
      { peer: 'ns/default/sa/a', method: 'GET', want: 'allow' },
      { peer: 'ns/default/sa/a', method: 'HEAD', want: 'allow' },
      { peer: 'ns/default/sa/a', method: 'POST', want: 'deny', reason: 'no_matching_rule' },
    ],
  },
  {
    id: 'A13',
    name: 'tester: "/test/*" prefix and "*/info" suffix',
    cite: CONCEPTS,
    rule: 'a trailing "*" is a prefix match, a leading "*" a suffix match',
    doc: true,
    context: { namespace: 'default', labels: { app: 'products' } },
    yaml: ap(
      'default',
      'tester',
      '{ selector: { matchLabels: { app: products } }, action: ALLOW, rules: [{ to: [{ operation: { paths: ["/test/*", "*/info"] } }] }] }',
    ),
    requests: [
      { peer: 'ns/default/sa/a', path: '/test/a/b', want: 'allow' },
      { peer: 'ns/default/sa/a', path: '/v1/info', want: 'allow' },
      { peer: 'ns/default/sa/a', path: '/test', want: 'deny' },
      { peer: 'ns/default/sa/a', path: '/other', want: 'deny', reason: 'no_matching_rule' },
    ],
  },
  {
    id: 'A14',
    name: 'requestPrincipals (JWT) is refused by name',
    cite: CONCEPTS,
    rule: 'request principals come from JWTs, which sidecarless does not verify',
    context: { namespace: 'default', labels: { app: 'products' } },
    yaml: ap(
      'default',
      'disable-jwt-for-healthz',
      '{ selector: { matchLabels: { app: products } }, action: ALLOW, rules: [{ to: [{ operation: { notPaths: ["/healthz"] } }], from: [{ source: { requestPrincipals: ["*"] } }] }] }',
    ),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].from[0].source.requestPrincipals' },
  },
  {
    id: 'A15',
    name: 'deny-all beside allow-all: DENY wins',
    cite: CONCEPTS,
    rule: 'DENY policies are evaluated before ALLOW policies; an allow cannot bypass a deny',
    doc: true,
    e2e: true,
    yaml: docs(ap('foo', 'deny-all', '{ action: DENY, rules: [{}] }'), allowAll),
    requests: [
      {
        peer: 'ns/foo/sa/a',
        want: 'deny',
        reason: 'denied_by_rule',
        rule: 'AuthorizationPolicy/foo/deny-all rules[0]',
      },
      { peer: null, want: 'deny', reason: 'denied_by_rule' },
    ],
  },
  {
    id: 'A16',
    name: 'httpbin-deny: DENY notNamespaces [foo]',
    cite: CONCEPTS,
    rule: 'a "not" field matches when none of its values does; a plaintext peer has no namespace, so it is denied too',
    doc: true,
    e2e: true,
    yaml: ap(
      'foo',
      'httpbin-deny',
      '{ selector: { matchLabels: { app: httpbin, version: v1 } }, action: DENY, rules: [{ from: [{ source: { notNamespaces: [foo] } }] }] }',
    ),
    requests: [
      { peer: 'ns/foo/sa/sleep', want: 'allow' },
      { peer: 'ns/bar/sa/sleep', want: 'deny', reason: 'denied_by_rule' },
      { peer: null, want: 'deny', reason: 'denied_by_rule' },
    ],
  },
  {
    id: 'A17',
    name: 'no source: public to authenticated and unauthenticated callers',
    cite: CONCEPTS,
    rule: 'leaving `from` out allows every source, plaintext included',
    doc: true,
    yaml: ap(
      'foo',
      'httpbin',
      '{ selector: { matchLabels: { app: httpbin, version: v1 } }, action: ALLOW, rules: [{ to: [{ operation: { methods: [GET, POST] } }] }] }',
    ),
    requests: [
      { peer: null, method: 'GET', want: 'allow' },
      { peer: 'ns/x/sa/y', method: 'POST', want: 'allow' },
      { peer: 'ns/x/sa/y', method: 'DELETE', want: 'deny' },
    ],
  },
  {
    id: 'A18',
    name: 'principals ["*"]: authenticated callers only',
    cite: CONCEPTS,
    rule: '"*" matches any non-empty principal; plaintext peers have none',
    doc: true,
    e2e: true,
    yaml: ap(
      'foo',
      'httpbin',
      '{ selector: { matchLabels: { app: httpbin, version: v1 } }, action: ALLOW, rules: [{ from: [{ source: { principals: ["*"] } }], to: [{ operation: { methods: [GET, POST] } }] }] }',
    ),
    requests: [
      { peer: 'ns/x/sa/y', want: 'allow' },
      {
        peer: null,
        want: 'deny',
        reason: 'unauthenticated',
        rule: 'AuthorizationPolicy/foo/httpbin rules[0]',
      },
    ],
  },
  {
    id: 'A19',
    name: 'mongodb-policy: port 27017 from bookinfo-ratings-v2',
    cite: CONCEPTS,
    rule: 'a source and a port together: both must match',
    doc: true,
    context: { namespace: 'default', labels: { app: 'mongodb' }, port: 27017 },
    yaml: ap(
      'default',
      'mongodb-policy',
      '{ selector: { matchLabels: { app: mongodb } }, action: ALLOW, rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/bookinfo-ratings-v2"] } }], to: [{ operation: { ports: ["27017"] } }] }] }',
    ),
    requests: [
      { peer: 'ns/default/sa/bookinfo-ratings-v2', want: 'allow' },
      { peer: 'ns/default/sa/bookinfo-ratings-v1', want: 'deny', reason: 'peer_not_allowed' },
      { peer: 'ns/default/sa/bookinfo-ratings-v2', port: 27018, want: 'deny', reason: 'no_matching_rule' },
    ],
  },
  {
    id: 'A20',
    name: 'request.headers conditions are refused',
    cite: CONDITIONS,
    rule: 'sidecarless policies decide on the peer, method, path, host, port and SNI, never on headers',
    yaml: ap(
      'foo',
      'httpbin',
      '{ rules: [{ when: [{ key: "request.headers[version]", values: [v1, v2] }] }] }',
    ),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].when[0].key' },
  },
  {
    id: 'A21',
    name: 'hosts prefix "test.abc.*"',
    cite: CONCEPTS,
    rule: 'prefix match: "test.abc.*" matches test.abc.com and test.abc.com.cn',
    doc: true,
    yaml: ap('foo', 'hosts', '{ rules: [{ to: [{ operation: { hosts: ["test.abc.*"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', host: 'test.abc.com', want: 'allow' },
      { peer: 'ns/a/sa/b', host: 'test.abc.com.cn', want: 'allow' },
      { peer: 'ns/a/sa/b', host: 'abc.com', want: 'deny' },
    ],
  },
  {
    id: 'A22',
    name: 'hosts suffix "*.abc.com"',
    cite: CONCEPTS,
    rule: 'suffix match: "*.abc.com" matches eng.abc.com and test.eng.abc.com, not abc.com',
    doc: true,
    yaml: ap('foo', 'hosts', '{ rules: [{ to: [{ operation: { hosts: ["*.abc.com"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', host: 'eng.abc.com', want: 'allow' },
      { peer: 'ns/a/sa/b', host: 'test.eng.abc.com', want: 'allow' },
      { peer: 'ns/a/sa/b', host: 'abc.com', want: 'deny' },
    ],
  },
  {
    id: 'A23',
    name: 'ALLOW-with-positive-matching: exactly /public',
    cite: BEST,
    rule: 'an exact path allows that path only',
    doc: true,
    yaml: ap('foo', 'foo', '{ action: ALLOW, rules: [{ to: [{ operation: { paths: ["/public"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', path: '/public', want: 'allow' },
      { peer: 'ns/a/sa/b', path: '/public/data', want: 'deny' },
      { peer: 'ns/a/sa/b', path: '/PUBLIC', want: 'deny' },
    ],
  },
  {
    id: 'A24',
    name: 'DENY-with-negative-matching: everything but /public',
    cite: BEST,
    rule: 'DENY notPaths [/public] denies every other path, with the same result as A23',
    doc: true,
    yaml: ap('foo', 'foo', '{ action: DENY, rules: [{ to: [{ operation: { notPaths: ["/public"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', path: '/public', want: 'allow' },
      { peer: 'ns/a/sa/b', path: '/private', want: 'deny', reason: 'denied_by_rule' },
    ],
  },
  {
    id: 'A25',
    name: 'trust domain migration without aliases: the old principal no longer matches',
    cite: TD,
    rule: 'a principal names its trust domain; after a move to new-td, old-td/... matches no one',
    doc: true,
    context: { namespace: 'default', labels: { app: 'httpbin' }, trustDomain: 'new-td' },
    yaml: ap(
      'default',
      'service-httpbin.default.svc.cluster.local',
      '{ rules: [{ from: [{ source: { principals: [old-td/ns/sleep-allow/sa/sleep] } }], to: [{ operation: { methods: [GET] } }] }], selector: { matchLabels: { app: httpbin } } }',
    ),
    requests: [
      { peer: 'spiffe://new-td/ns/sleep-allow/sa/sleep', want: 'deny', reason: 'peer_not_allowed' },
      { peer: 'spiffe://new-td/ns/default/sa/sleep', want: 'deny' },
    ],
  },
  {
    id: 'A26',
    name: 'trust domain migration with aliases: the old principal stands for the new one',
    cite: TD,
    rule: 'with trustDomainAliases [old-td], a principal of old-td also matches new-td',
    doc: true,
    context: {
      namespace: 'default',
      labels: { app: 'httpbin' },
      trustDomain: 'new-td',
      trustDomainAliases: ['old-td'],
    },
    yaml: ap(
      'default',
      'service-httpbin.default.svc.cluster.local',
      '{ rules: [{ from: [{ source: { principals: [old-td/ns/sleep-allow/sa/sleep] } }], to: [{ operation: { methods: [GET] } }] }], selector: { matchLabels: { app: httpbin } } }',
    ),
    requests: [
      { peer: 'spiffe://new-td/ns/sleep-allow/sa/sleep', want: 'allow' },
      { peer: 'spiffe://new-td/ns/default/sa/sleep', want: 'deny', reason: 'peer_not_allowed' },
    ],
  },
  {
    id: 'A27',
    name: '"cluster.local" in a principal points to the current trust domain',
    cite: TD,
    rule: 'cluster.local/... in a policy means the mesh trust domain (and its aliases), whatever it is called',
    doc: true,
    context: { namespace: 'default', labels: { app: 'httpbin' }, trustDomain: 'old-td' },
    yaml: ap(
      'default',
      'httpbin',
      '{ rules: [{ from: [{ source: { principals: [cluster.local/ns/sleep-allow/sa/sleep] } }] }] }',
    ),
    requests: [
      { peer: 'spiffe://old-td/ns/sleep-allow/sa/sleep', want: 'allow' },
      { peer: 'spiffe://cluster.local/ns/sleep-allow/sa/sleep', want: 'deny' },
    ],
  },
  {
    id: 'A28',
    name: 'dot segments are resolved before matching',
    cite: NORMALIZATION,
    rule: '/public/./data/abc/../xyz is normalised to /public/data/xyz (RFC 3986, option BASE)',
    doc: true,
    yaml: ap('foo', 'p', '{ rules: [{ to: [{ operation: { paths: ["/public/data/xyz"] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', path: '/public/./data/abc/../xyz', want: 'allow' }],
  },
  {
    id: 'A29',
    name: 'slashes are merged before matching',
    cite: NORMALIZATION,
    rule: "/some//data///abc becomes /some/data/abc under MERGE_SLASHES, the library's normalisation",
    deviation: 'merge-slashes',
    yaml: ap('foo', 'p', '{ rules: [{ to: [{ operation: { paths: ["/some/data/abc"] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', path: '/some//data///abc', want: 'allow' }],
  },
  {
    id: 'A30',
    name: 'an encoded slash is refused with 400',
    cite: NORMALIZATION,
    rule: 'Istio decodes %2F only under DECODE_AND_MERGE_SLASHES; the library refuses it',
    deviation: 'encoded-separators',
    yaml: allowAll,
    requests: [
      { peer: 'ns/a/sa/b', path: '/some%2fdata/%61%62%63', want: 'bad_request', reason: 'bad_request' },
    ],
  },
  {
    id: 'A31',
    name: 'a raw backslash is refused with 400',
    cite: NORMALIZATION,
    rule: 'Istio BASE turns "\\" into "/"; the library refuses it',
    deviation: 'backslash',
    yaml: allowAll,
    requests: [{ peer: 'ns/a/sa/b', path: '/some\\data', want: 'bad_request' }],
  },
  {
    id: 'A32',
    name: 'the query is not part of the path',
    cite: NORMALIZATION,
    rule: 'anything after "?" is left out when comparing paths',
    doc: true,
    yaml: ap('foo', 'p', '{ rules: [{ to: [{ operation: { paths: ["/foo"] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', path: '/foo?v=1', want: 'allow' }],
  },
  {
    id: 'A33',
    name: 'a lowercase method is decided as its uppercase',
    cite: NORMALIZATION,
    rule: 'Istio answers a method not in upper case with 400; the library uppercases it, as routers do',
    deviation: 'method-case',
    yaml: ap('foo', 'd', '{ action: DENY, rules: [{ to: [{ operation: { methods: [GET] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', method: 'get', want: 'deny', reason: 'denied_by_rule' }],
  },
  {
    id: 'A34',
    name: 'percent-encoded unreserved characters are decoded',
    cite: NORMALIZATION,
    rule: '%61%62%63 is abc (BASE decodes letters, digits, "-", ".", "_", "~")',
    doc: true,
    yaml: ap('foo', 'p', '{ rules: [{ to: [{ operation: { paths: ["/abc"] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', path: '/%61%62%63', want: 'allow' }],
  },
  {
    id: 'A35',
    name: 'overlapping ALLOW rules: any rule allows',
    cite: REF,
    rule: 'a request matching any rule of any ALLOW policy is allowed (no most-specific rule decides)',
    e2e: true,
    yaml: ap(
      'foo',
      'ui-and-admin',
      '{ rules: [{ from: [{ source: { principals: [cluster.local/ns/foo/sa/ui] } }], to: [{ operation: { paths: ["/*"] } }] }, { from: [{ source: { principals: [cluster.local/ns/ops/sa/admin] } }], to: [{ operation: { paths: ["/admin/*"] } }] }] }',
    ),
    requests: [
      {
        peer: 'ns/foo/sa/ui',
        path: '/admin/x',
        want: 'allow',
        rule: 'AuthorizationPolicy/foo/ui-and-admin rules[0]',
      },
      {
        peer: 'ns/ops/sa/admin',
        path: '/admin/x',
        want: 'allow',
        rule: 'AuthorizationPolicy/foo/ui-and-admin rules[1]',
      },
      { peer: 'ns/ops/sa/admin', path: '/boards', want: 'deny', reason: 'peer_not_allowed' },
    ],
  },
  {
    id: 'A36',
    name: 'ALLOW rules of several policies add up',
    cite: CONCEPTS,
    rule: 'several policies on one workload apply additively',
    yaml: docs(
      ap('foo', 'a', '{ rules: [{ from: [{ source: { principals: [cluster.local/ns/foo/sa/a] } }] }] }'),
      ap('foo', 'b', '{ rules: [{ from: [{ source: { principals: [cluster.local/ns/foo/sa/b] } }] }] }'),
    ),
    requests: [
      { peer: 'ns/foo/sa/a', want: 'allow', rule: 'AuthorizationPolicy/foo/a' },
      { peer: 'ns/foo/sa/b', want: 'allow', rule: 'AuthorizationPolicy/foo/b' },
      { peer: 'ns/foo/sa/c', want: 'deny', reason: 'peer_not_allowed' },
    ],
  },
  {
    id: 'A37',
    name: 'DENY on /admin/* beside allow-all',
    cite: REF,
    rule: 'deny if any DENY rule matches, before any ALLOW',
    yaml: docs(
      allowAll,
      ap('foo', 'no-admin', '{ action: DENY, rules: [{ to: [{ operation: { paths: ["/admin/*"] } }] }] }'),
    ),
    requests: [
      { peer: 'ns/foo/sa/a', path: '/admin/users', want: 'deny', reason: 'denied_by_rule' },
      { peer: 'ns/foo/sa/a', path: '/boards', want: 'allow' },
    ],
  },
  {
    id: 'A38',
    name: 'an AUDIT policy is not an ALLOW policy',
    cite: REF,
    rule: 'with only AUDIT policies there is no ALLOW policy, so requests are allowed',
    yaml: ap('foo', 'audit', '{ action: AUDIT, rules: [{}] }'),
    requests: [{ peer: null, want: 'allow', audit: ['AuthorizationPolicy/foo/audit rules[0]'] }],
  },
  {
    id: 'A39',
    name: 'a dry-run ALLOW policy does not turn on default deny',
    cite: REF,
    rule: 'dry-run policies are not enforced, so they do not count as ALLOW policies',
    yaml: ap(
      'foo',
      'only-a',
      '{ rules: [{ from: [{ source: { principals: [cluster.local/ns/foo/sa/a] } }] }] }',
      ', annotations: { "istio.io/dry-run": "true" }',
    ),
    requests: [{ peer: 'ns/foo/sa/b', want: 'allow' }],
  },
  {
    id: 'A40',
    name: 'noAllowPolicy: "deny" (the library option) denies without an ALLOW policy',
    cite: REF,
    rule: "Istio allows when no ALLOW policy applies; the option turns that into deny, as the library's maps do",
    options: { noAllowPolicy: 'deny' },
    yaml: ap('foo', 'deny-dev', '{ action: DENY, rules: [{ from: [{ source: { namespaces: [dev] } }] }] }'),
    requests: [{ peer: 'ns/foo/sa/a', want: 'deny', reason: 'no_matching_rule' }],
  },
  {
    id: 'A41',
    name: 'notPrincipals ["*"] means "no principal"',
    cite: REF,
    rule: '"*" matches any non-empty value, so notPrincipals ["*"] matches exactly the peers without one',
    yaml: ap(
      'foo',
      'mtls-only',
      '{ action: DENY, rules: [{ from: [{ source: { notPrincipals: ["*"] } }] }] }',
    ),
    requests: [
      { peer: null, want: 'deny', reason: 'denied_by_rule' },
      { peer: 'ns/x/sa/y', want: 'allow' },
    ],
  },
  {
    id: 'A42',
    name: 'principal prefix match',
    cite: REF,
    rule: '"cluster.local/ns/ops/*" is a string prefix: ns/ops matches, ns/opsx does not',
    yaml: ap('foo', 'ops', '{ rules: [{ from: [{ source: { principals: ["cluster.local/ns/ops/*"] } }] }] }'),
    requests: [
      { peer: 'ns/ops/sa/a', want: 'allow' },
      { peer: 'ns/opsx/sa/a', want: 'deny' },
    ],
  },
  {
    id: 'A43',
    name: 'principal suffix match spans trust domains',
    cite: REF,
    rule: '"*/sa/admin" is a string suffix: any trust domain and namespace',
    yaml: ap('foo', 'admins', '{ rules: [{ from: [{ source: { principals: ["*/sa/admin"] } }] }] }'),
    requests: [
      { peer: 'spiffe://partner.example/ns/x/sa/admin', want: 'allow' },
      { peer: 'ns/x/sa/admin2', want: 'deny' },
    ],
  },
  {
    id: 'A44',
    name: 'namespaces match under any trust domain',
    cite: REF,
    rule: '`namespaces` is derived from the peer certificate: /ns/<namespace>/ in any principal',
    yaml: ap('foo', 'from-foo', '{ rules: [{ from: [{ source: { namespaces: [foo] } }] }] }'),
    requests: [
      { peer: 'spiffe://partner.example/ns/foo/sa/x', want: 'allow' },
      { peer: 'ns/bar/sa/x', want: 'deny', reason: 'peer_not_allowed' },
    ],
  },
  {
    id: 'A45',
    name: 'namespace prefix match',
    cite: CONCEPTS,
    rule: 'prefix matching applies to namespaces too: "prod-*"',
    yaml: ap('foo', 'prod', '{ rules: [{ from: [{ source: { namespaces: ["prod-*"] } }] }] }'),
    requests: [
      { peer: 'ns/prod-eu/sa/x', want: 'allow' },
      { peer: 'ns/staging/sa/x', want: 'deny' },
    ],
  },
  {
    id: 'A46',
    name: 'ALLOW with notNamespaces also admits plaintext peers',
    cite: BEST,
    rule: 'negative matching in an ALLOW policy admits anything not named, plaintext included: why ALLOW-with-positive-matching is safer',
    yaml: ap('foo', 'not-untrusted', '{ rules: [{ from: [{ source: { notNamespaces: [untrusted] } }] }] }'),
    requests: [
      { peer: null, want: 'allow' },
      { peer: 'ns/untrusted/sa/x', want: 'deny' },
    ],
  },
  {
    id: 'A47',
    name: "ipBlocks: the connection's remote address",
    cite: REF,
    rule: 'ipBlocks takes single addresses and CIDR ranges of the source address',
    e2e: true,
    yaml: ap(
      'foo',
      'one-address',
      '{ rules: [{ from: [{ source: { ipBlocks: ["127.0.0.1", "10.0.0.0/8"] } }] }] }',
    ),
    requests: [
      { peer: 'ns/a/sa/b', ip: '127.0.0.1', want: 'allow' },
      { peer: 'ns/a/sa/b', ip: '127.0.0.2', want: 'deny', reason: 'peer_not_allowed' },
      { peer: 'ns/a/sa/b', ip: '10.1.2.3', want: 'allow' },
    ],
  },
  {
    id: 'A48',
    name: 'notIpBlocks in a DENY policy; IPv4-mapped IPv6 is the IPv4 address',
    cite: REF,
    rule: 'a notIpBlocks source matches addresses outside the blocks',
    yaml: ap(
      'foo',
      'only-local',
      '{ action: DENY, rules: [{ from: [{ source: { notIpBlocks: ["127.0.0.1"] } }] }] }',
    ),
    requests: [
      { peer: 'ns/a/sa/b', ip: '10.0.0.5', want: 'deny' },
      { peer: 'ns/a/sa/b', ip: '127.0.0.1', want: 'allow' },
      { peer: 'ns/a/sa/b', ip: '::ffff:127.0.0.1', want: 'allow' },
    ],
  },
  {
    id: 'A49',
    name: 'when source.ip',
    cite: CONDITIONS,
    rule: 'source.ip takes single addresses or CIDR ranges',
    yaml: ap('foo', 'c', '{ rules: [{ when: [{ key: source.ip, values: ["10.1.0.0/16"] }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', ip: '10.1.2.3', want: 'allow' },
      { peer: 'ns/a/sa/b', ip: '10.2.0.1', want: 'deny', reason: 'no_matching_rule' },
    ],
  },
  {
    id: 'A50',
    name: 'when destination.port',
    cite: CONDITIONS,
    rule: 'destination.port is the port the request arrived on',
    yaml: ap('foo', 'c', '{ rules: [{ when: [{ key: destination.port, values: ["8080"] }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', port: 8080, want: 'allow' },
      { peer: 'ns/a/sa/b', port: 9090, want: 'deny' },
    ],
  },
  {
    id: 'A51',
    name: 'when connection.sni',
    cite: CONDITIONS,
    rule: 'connection.sni is the server name the client sent',
    yaml: ap(
      'foo',
      'c',
      '{ rules: [{ when: [{ key: connection.sni, values: ["httpbin.foo.svc.cluster.local"] }] }] }',
    ),
    requests: [
      { peer: 'ns/a/sa/b', sni: 'httpbin.foo.svc.cluster.local', want: 'allow' },
      { peer: 'ns/a/sa/b', want: 'deny' },
    ],
  },
  {
    id: 'A52',
    name: 'when source.principal notValues',
    cite: CONDITIONS,
    rule: 'a condition matches when one of `values` matches and none of `notValues` does',
    yaml: ap(
      'foo',
      'c',
      '{ rules: [{ when: [{ key: source.principal, notValues: [cluster.local/ns/foo/sa/bad] }] }] }',
    ),
    requests: [
      { peer: 'ns/foo/sa/bad', want: 'deny' },
      { peer: 'ns/foo/sa/good', want: 'allow' },
    ],
  },
  {
    id: 'A53',
    name: 'when source.namespace',
    cite: CONDITIONS,
    rule: "source.namespace is the namespace of the peer's principal",
    yaml: ap('foo', 'c', '{ rules: [{ when: [{ key: source.namespace, values: [foo] }] }] }'),
    requests: [
      { peer: 'ns/foo/sa/a', want: 'allow' },
      { peer: 'ns/bar/sa/a', want: 'deny' },
    ],
  },
  {
    id: 'A54',
    name: 'notMethods',
    cite: REF,
    rule: 'an operation with notMethods [DELETE] matches every other method',
    yaml: ap('foo', 'c', '{ rules: [{ to: [{ operation: { notMethods: [DELETE] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', method: 'GET', want: 'allow' },
      { peer: 'ns/a/sa/b', method: 'DELETE', want: 'deny' },
    ],
  },
  {
    id: 'A55',
    name: 'HEAD is denied by a DENY on GET',
    cite: REF,
    rule: 'Istio matches methods exactly, so HEAD escapes a GET DENY; routers answer HEAD with the GET route, so the library denies it',
    deviation: 'head-as-get',
    yaml: ap(
      'foo',
      'd',
      '{ action: DENY, rules: [{ to: [{ operation: { methods: [GET], paths: ["/secret"] } }] }] }',
    ),
    requests: [
      { peer: 'ns/a/sa/b', method: 'HEAD', path: '/secret', want: 'deny', reason: 'denied_by_rule' },
      { peer: 'ns/a/sa/b', method: 'HEAD', path: '/public', want: 'allow' },
    ],
  },
  {
    id: 'A56',
    name: 'an ALLOW on GET does not allow HEAD',
    cite: REF,
    rule: 'methods are matched exactly: an ALLOW for GET only does not cover HEAD',
    yaml: ap('foo', 'get', '{ rules: [{ to: [{ operation: { methods: [GET] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', method: 'HEAD', want: 'deny', reason: 'no_matching_rule' }],
  },
  {
    id: 'A57',
    name: 'a DENY path covers every case spelling',
    cite: BEST,
    rule: 'Istio compares paths case-sensitively (the page shows a filter to lowercase them); the library denies /ADMIN when /admin* is denied',
    deviation: 'path-case',
    e2e: true,
    yaml: ap('foo', 'no-admin', '{ action: DENY, rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', path: '/ADMIN/users', want: 'deny', reason: 'denied_by_rule' },
      { peer: 'ns/a/sa/b', path: '/boards', want: 'allow' },
    ],
  },
  {
    id: 'A58',
    name: 'an ALLOW path stays case-sensitive',
    cite: REF,
    rule: 'exact match is case-sensitive: /Public allows /Public only',
    yaml: ap('foo', 'p', '{ rules: [{ to: [{ operation: { paths: ["/Public"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', path: '/Public', want: 'allow' },
      { peer: 'ns/a/sa/b', path: '/public', want: 'deny' },
    ],
  },
  {
    id: 'A59',
    name: 'a DENY on an exact path covers its trailing-slash spelling',
    cite: REF,
    rule: "Istio's exact match misses /admin/; routers route it to /admin, so the library denies it",
    deviation: 'trailing-slash',
    yaml: ap('foo', 'd', '{ action: DENY, rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', path: '/admin/', want: 'deny' },
      { peer: 'ns/a/sa/b', path: '/administrator', want: 'allow' },
    ],
  },
  {
    id: 'A60',
    name: 'ALLOW notPaths cannot be bypassed by case',
    cite: BEST,
    rule: 'ALLOW with notPaths [/admin*] admits /ADMIN in Istio; the library denies it (the negative-matching risk the page describes)',
    deviation: 'path-case',
    yaml: ap('foo', 'not-admin', '{ rules: [{ to: [{ operation: { notPaths: ["/admin*"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', path: '/ADMIN', want: 'deny' },
      { peer: 'ns/a/sa/b', path: '/boards', want: 'allow' },
    ],
  },
  {
    id: 'A61',
    name: 'hosts ["example.com", "example.com:*"] as the best-practices page writes them',
    cite: BEST,
    rule: 'Istio matches hosts against the authority with its port; servers hand the library the host without it',
    deviation: 'host-port',
    yaml: ap('foo', 'h', '{ rules: [{ to: [{ operation: { hosts: ["example.com", "example.com:*"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', host: 'example.com', want: 'allow' },
      { peer: 'ns/a/sa/b', host: 'other.com', want: 'deny' },
    ],
  },
  {
    id: 'A62',
    name: 'hosts with a fixed port are refused',
    cite: REF,
    rule: "the library cannot see the authority's port, so a host pattern naming one is refused",
    deviation: 'host-port',
    yaml: ap('foo', 'h', '{ rules: [{ to: [{ operation: { hosts: ["example.com:8080"] } }] }] }'),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].to[0].operation.hosts[0]' },
  },
  {
    id: 'A63',
    name: 'hosts match case-insensitively',
    cite: REF,
    rule: 'the hosts match is case-insensitive',
    yaml: ap('foo', 'h', '{ rules: [{ to: [{ operation: { hosts: ["Boards.Demo"] } }] }] }'),
    requests: [{ peer: 'ns/a/sa/b', host: 'boards.demo', want: 'allow' }],
  },
  {
    id: 'A64',
    name: 'path templates are refused',
    cite: REF,
    rule: 'path templates ({*}, {**}) are not supported; refused, not ignored',
    yaml: ap('foo', 't', '{ rules: [{ to: [{ operation: { paths: ["/foo/{*}/bar"] } }] }] }'),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].to[0].operation.paths[0]' },
  },
  {
    id: 'A65',
    name: 'remoteIpBlocks is refused',
    cite: REF,
    rule: 'remoteIpBlocks comes from X-Forwarded-For or PROXY protocol, which the library does not trust',
    yaml: ap('foo', 'r', '{ rules: [{ from: [{ source: { remoteIpBlocks: ["1.2.3.4"] } }] }] }'),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].from[0].source.remoteIpBlocks' },
  },
  {
    id: 'A66',
    name: 'targetRefs is refused',
    cite: REF,
    rule: 'a policy attached by targetRef cannot be placed on a workload; refused, not ignored',
    yaml: ap(
      'foo',
      'waypoint',
      '{ targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }], rules: [{}] }',
    ),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.targetRefs' },
  },
  {
    id: 'A67',
    name: "`from: []` is refused, as Istio's validation does",
    cite: VALIDATION,
    rule: 'an empty `from` list is not "any source": Istio refuses it',
    yaml: ap('foo', 'e', '{ rules: [{ from: [] }] }'),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'spec.rules[0].from' },
  },
  {
    id: 'A68',
    name: 'an empty source is refused',
    cite: VALIDATION,
    rule: 'a `from` entry must name at least one source field',
    yaml: ap('foo', 'e', '{ rules: [{ from: [{ source: {} }] }] }'),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'spec.rules[0].from[0].source' },
  },
  {
    id: 'A69',
    name: 'DENY without rules is refused',
    cite: VALIDATION,
    rule: 'a DENY policy without rules never triggers; Istio refuses it',
    yaml: ap('foo', 'd', '{ action: DENY }'),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'spec.rules' },
  },
  {
    id: 'A70',
    name: 'a policy of another namespace does not apply',
    cite: CONCEPTS,
    rule: 'a policy applies to the namespace in its metadata (or to the mesh from the root namespace)',
    yaml: ap('bar', 'allow-nothing', '{}'),
    requests: [{ peer: 'ns/foo/sa/a', want: 'allow' }],
  },
  {
    id: 'A71',
    name: 'a root-namespace policy without selector applies mesh-wide',
    cite: CONCEPTS,
    rule: 'a policy in the root namespace applies to all namespaces',
    yaml: ap('istio-system', 'allow-nothing', '{}'),
    requests: [{ peer: 'ns/foo/sa/a', want: 'deny', reason: 'no_matching_rule' }],
  },
  {
    id: 'A72',
    name: 'a principal written with spiffe:// is refused',
    cite: REF,
    rule: 'principals are "<trust domain>/ns/<namespace>/sa/<account>", without the scheme',
    yaml: ap(
      'foo',
      'p',
      '{ rules: [{ from: [{ source: { principals: ["spiffe://cluster.local/ns/a/sa/b"] } }] }] }',
    ),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'spec.rules[0].from[0].source.principals[0]' },
  },
  {
    id: 'A73',
    name: 'namespaces ["*"] needs a namespace: plaintext peers have none',
    cite: CONCEPTS,
    rule: 'presence match: "*" is anything but empty',
    yaml: ap('foo', 'n', '{ rules: [{ from: [{ source: { namespaces: ["*"] } }] }] }'),
    requests: [
      { peer: null, want: 'deny', reason: 'unauthenticated' },
      { peer: 'ns/x/sa/y', want: 'allow' },
    ],
  },
  {
    id: 'A74',
    name: 'probePaths let kubelet probes through under STRICT',
    cite: CONCEPTS,
    rule: 'Istio rewrites probes to its agent, past mTLS and authorization; the library does so only for paths given as probePaths',
    options: { probePaths: ['/healthz'] },
    yaml: docs(
      pa('foo', 'default', '{ mtls: { mode: STRICT } }'),
      ap('foo', 'authn', '{ rules: [{ from: [{ source: { principals: ["*"] } }] }] }'),
    ),
    mode: 'STRICT',
    requests: [
      { peer: null, path: '/healthz', want: 'allow', rule: 'probePaths' },
      { peer: null, path: '/boards', want: 'deny', reason: 'unauthenticated' },
      { peer: null, method: 'POST', path: '/healthz', want: 'deny' },
    ],
  },
  {
    id: 'A75',
    name: 'an attribute not given matches in DENY and fails in ALLOW',
    cite: REF,
    rule: 'for a DENY rule, missing attributes are treated as matches',
    yaml: ap('foo', 'd', '{ action: DENY, rules: [{ to: [{ operation: { ports: ["8080"] } }] }] }'),
    requests: [
      { peer: 'ns/a/sa/b', port: null, want: 'deny', reason: 'denied_by_rule' },
      { peer: 'ns/a/sa/b', port: 9090, want: 'allow' },
    ],
  },
  {
    id: 'A76',
    name: 'destination.ip conditions are refused',
    cite: CONDITIONS,
    rule: 'the library does not decide on the destination address; refused, not ignored',
    deviation: 'unknown-keys',
    yaml: ap('foo', 'c', '{ rules: [{ when: [{ key: destination.ip, values: ["10.0.0.1"] }] }] }'),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.rules[0].when[0].key' },
  },
  {
    id: 'A77',
    name: 'a path pattern that can never match a normalised path is refused',
    cite: NORMALIZATION,
    rule: 'paths are compared after normalisation, so "/a//b" could never match anything',
    deviation: 'pattern-form',
    yaml: ap('foo', 'd', '{ action: DENY, rules: [{ to: [{ operation: { paths: ["/a//b"] } }] }] }'),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'spec.rules[0].to[0].operation.paths[0]' },
  },
];

export const MODE_CASES: readonly ParityCase[] = [
  {
    id: 'M01',
    name: 'namespace-wide STRICT',
    cite: PA_REF,
    rule: 'a policy without selector applies to every workload of its namespace',
    doc: true,
    e2e: true,
    yaml: pa('foo', 'default', '{ mtls: { mode: STRICT } }'),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/foo/default',
  },
  {
    id: 'M02',
    name: 'PERMISSIVE namespace, STRICT finance: finance',
    cite: PA_REF,
    rule: 'the workload-specific policy is narrower and wins',
    doc: true,
    context: { labels: { app: 'finance' } },
    yaml: docs(
      pa('foo', 'default', '{ mtls: { mode: PERMISSIVE } }'),
      pa('foo', 'finance', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT } }'),
    ),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/foo/finance',
  },
  {
    id: 'M03',
    name: 'PERMISSIVE namespace, STRICT finance: another workload',
    cite: PA_REF,
    rule: 'a workload the selector does not match gets the namespace policy',
    doc: true,
    e2e: true,
    context: { labels: { app: 'reviews' } },
    yaml: docs(
      pa('foo', 'default', '{ mtls: { mode: PERMISSIVE } }'),
      pa('foo', 'finance', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT } }'),
    ),
    mode: 'PERMISSIVE',
    decidedBy: 'PeerAuthentication/foo/default',
  },
  {
    id: 'M04',
    name: 'STRICT with port 8080 DISABLE: on 8080',
    cite: PA_REF,
    rule: 'portLevelMtls overrides the workload mode on that workload port',
    doc: true,
    context: { labels: { app: 'finance' }, port: 8080 },
    yaml: pa(
      'foo',
      'default',
      '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT }, portLevelMtls: { 8080: { mode: DISABLE } } }',
    ),
    mode: 'DISABLE',
    decidedBy: 'PeerAuthentication/foo/default spec.portLevelMtls[8080]',
  },
  {
    id: 'M05',
    name: 'STRICT with port 8080 DISABLE: on another port',
    cite: PA_REF,
    rule: 'other ports keep the workload mode',
    doc: true,
    context: { labels: { app: 'finance' }, port: 9090 },
    yaml: pa(
      'foo',
      'default',
      '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT }, portLevelMtls: { 8080: { mode: DISABLE } } }',
    ),
    mode: 'STRICT',
  },
  {
    id: 'M06',
    name: 'UNSET workload mode with port 8080 DISABLE inherits the namespace elsewhere',
    cite: PA_REF,
    rule: 'UNSET inherits from the parent; the port-level setting still applies on its port',
    doc: true,
    context: { labels: { app: 'finance' }, port: 9090 },
    yaml: docs(
      pa('foo', 'ns', '{ mtls: { mode: STRICT } }'),
      pa(
        'foo',
        'default',
        '{ selector: { matchLabels: { app: finance } }, mtls: { mode: UNSET }, portLevelMtls: { 8080: { mode: DISABLE } } }',
      ),
    ),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/foo/ns',
  },
  {
    id: 'M07',
    name: 'example-workload-policy: port 80 DISABLE, the namespace STRICT for the rest',
    cite: AUTHN,
    rule: 'port-level mTLS is keyed by the workload (container) port, not the Service port',
    doc: true,
    context: { labels: { app: 'example-app' }, port: 80 },
    yaml: docs(
      pa('foo', 'example-policy', '{ mtls: { mode: STRICT } }'),
      pa(
        'foo',
        'example-workload-policy',
        '{ selector: { matchLabels: { app: example-app } }, portLevelMtls: { 80: { mode: DISABLE } } }',
      ),
    ),
    mode: 'DISABLE',
  },
  {
    id: 'M08',
    name: 'example-workload-policy on another workload port',
    cite: AUTHN,
    rule: 'the workload policy has no mode of its own: other ports inherit the namespace',
    doc: true,
    context: { labels: { app: 'example-app' }, port: 8000 },
    yaml: docs(
      pa('foo', 'example-policy', '{ mtls: { mode: STRICT } }'),
      pa(
        'foo',
        'example-workload-policy',
        '{ selector: { matchLabels: { app: example-app } }, portLevelMtls: { 80: { mode: DISABLE } } }',
      ),
    ),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/foo/example-policy',
  },
  {
    id: 'M09',
    name: 'mesh-wide UNSET means PERMISSIVE',
    cite: AUTHN,
    rule: 'mesh-wide policies with an unset mode use PERMISSIVE',
    doc: true,
    yaml: pa('istio-system', 'default', '{ mtls: { mode: UNSET } }'),
    mode: 'PERMISSIVE',
    decidedBy: null,
  },
  {
    id: 'M10',
    name: 'no PeerAuthentication at all: PERMISSIVE',
    cite: PA_REF,
    rule: 'UNSET with no parent is treated as PERMISSIVE (sidecarless alone would be STRICT: reported)',
    yaml: allowAll,
    mode: 'PERMISSIVE',
    decidedBy: null,
  },
  {
    id: 'M11',
    name: 'mesh STRICT, namespace PERMISSIVE',
    cite: AUTHN,
    rule: 'the narrowest matching policy applies: namespace over mesh',
    yaml: docs(
      pa('istio-system', 'default', '{ mtls: { mode: STRICT } }'),
      pa('foo', 'default', '{ mtls: { mode: PERMISSIVE } }'),
    ),
    mode: 'PERMISSIVE',
    decidedBy: 'PeerAuthentication/foo/default',
  },
  {
    id: 'M12',
    name: 'mesh STRICT, namespace without a mode',
    cite: AUTHN,
    rule: 'an unset mode inherits the parent scope',
    yaml: docs(
      pa('istio-system', 'default', '{ mtls: { mode: STRICT } }'),
      pa('foo', 'default', '{ mtls: {} }'),
    ),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/istio-system/default',
  },
  {
    id: 'M13',
    name: 'workload UNSET inherits the namespace DISABLE',
    cite: AUTHN,
    rule: 'UNSET at the workload level inherits the namespace policy',
    yaml: docs(
      pa('foo', 'default', '{ mtls: { mode: DISABLE } }'),
      pa('foo', 'w', '{ selector: { matchLabels: { app: httpbin } }, mtls: { mode: UNSET } }'),
    ),
    mode: 'DISABLE',
    decidedBy: 'PeerAuthentication/foo/default',
  },
  {
    id: 'M14',
    name: 'two namespace-wide policies: the newer is ignored',
    cite: AUTHN,
    rule: 'with several namespace-wide policies Istio ignores the newer ones',
    doc: true,
    yaml: docs(
      pa('foo', 'old', '{ mtls: { mode: STRICT } }', at('2020-01-01T00:00:00Z')),
      pa('foo', 'new', '{ mtls: { mode: DISABLE } }', at('2021-01-01T00:00:00Z')),
    ),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/foo/old',
  },
  {
    id: 'M15',
    name: 'two workload policies: the oldest is picked',
    cite: AUTHN,
    rule: 'when several workload-specific policies match, Istio picks the oldest',
    doc: true,
    yaml: docs(
      pa(
        'foo',
        'b',
        '{ selector: { matchLabels: { app: httpbin } }, mtls: { mode: PERMISSIVE } }',
        at('2022-05-01T00:00:00Z'),
      ),
      pa(
        'foo',
        'a',
        '{ selector: { matchLabels: { version: v1 } }, mtls: { mode: STRICT } }',
        at('2022-01-01T00:00:00Z'),
      ),
    ),
    mode: 'STRICT',
    decidedBy: 'PeerAuthentication/foo/a',
  },
  {
    id: 'M16',
    name: 'two namespace-wide policies without timestamps are refused',
    cite: AUTHN,
    rule: 'Istio applies the oldest; files carry no creationTimestamp, so the winner cannot be told',
    yaml: docs(
      pa('foo', 'one', '{ mtls: { mode: STRICT } }'),
      pa('foo', 'two', '{ mtls: { mode: DISABLE } }'),
    ),
    refused: { code: 'ERR_ISTIO_CONFLICT', field: 'PeerAuthentication/foo/' },
  },
  {
    id: 'M17',
    name: 'a root-namespace policy with a selector is ignored',
    cite: AUTHN,
    rule: 'mesh-wide means the root namespace without a selector; workload-specific means a regular namespace with one',
    deviation: 'root-selector',
    yaml: pa(
      'istio-system',
      'odd',
      '{ selector: { matchLabels: { app: httpbin } }, mtls: { mode: STRICT } }',
    ),
    mode: 'PERMISSIVE',
    decidedBy: null,
  },
  {
    id: 'M18',
    name: 'portLevelMtls without a selector is refused',
    cite: PA_REF,
    rule: "port-level settings only apply when a workload selector is specified; Istio's validation refuses them otherwise",
    yaml: pa('foo', 'default', '{ mtls: { mode: STRICT }, portLevelMtls: { 8080: { mode: DISABLE } } }'),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'spec.portLevelMtls' },
  },
  {
    id: 'M19',
    name: 'a PeerAuthentication of another namespace does not apply',
    cite: PA_REF,
    rule: 'a policy applies to workloads of its own namespace',
    yaml: pa('bar', 'default', '{ mtls: { mode: STRICT } }'),
    mode: 'PERMISSIVE',
  },
  {
    id: 'M20',
    name: 'the labs: v1alpha1 Policy "default" with STRICT peers',
    cite: V1ALPHA1,
    rule: 'a namespace Policy named default without targets applies to every service of the namespace',
    context: { namespace: 'microservices-demo', labels: { app: 'boards' } },
    yaml: policy('microservices-demo', 'default', '{ peers: [{ mtls: { mode: STRICT } }] }'),
    mode: 'STRICT',
    decidedBy: 'Policy/microservices-demo/default',
  },
  {
    id: 'M21',
    name: 'v1alpha1 `- mtls:` with no value is STRICT',
    cite: V1ALPHA1,
    rule: "the mTLS mode defaults to STRICT (the enum's first value)",
    doc: true,
    context: { namespace: 'frod' },
    yaml: 'apiVersion: authentication.istio.io/v1alpha1\nkind: Policy\nmetadata:\n  name: default\n  namespace: frod\nspec:\n  peers:\n  - mtls:\n',
    mode: 'STRICT',
  },
  {
    id: 'M22',
    name: 'v1alpha1 `mtls: {}` is STRICT',
    cite: V1ALPHA1,
    rule: 'an mtls method with no mode is STRICT',
    yaml: policy('foo', 'default', '{ peers: [{ mtls: {} }] }'),
    mode: 'STRICT',
  },
  {
    id: 'M23',
    name: 'v1alpha1 target without peers disables mTLS for the service',
    cite: V1ALPHA1,
    rule: 'a Policy that targets a service and lists no peer methods turns peer authentication off (productpage-mTLS-disable)',
    doc: true,
    context: {
      namespace: 'frod',
      labels: { app: 'productpage' },
      port: 9080,
      service: { name: 'productpage', ports: [{ name: 'http', port: 9080 }] },
    },
    yaml: docs(
      policy('frod', 'default', '{ peers: [{ mtls: {} }] }'),
      policy('frod', 'productpage-mtls-disable', '{ targets: [{ name: productpage }] }'),
    ),
    mode: 'DISABLE',
    decidedBy: 'Policy/frod/productpage-mtls-disable',
  },
  {
    id: 'M24',
    name: 'v1alpha1 target ports are Service ports',
    cite: V1ALPHA1,
    rule: 'target ports name the Service port (8000), not the workload port it forwards to (9000)',
    context: {
      labels: { app: 'backend' },
      port: 9000,
      service: { name: 'backend', ports: [{ name: 'http', port: 8000, targetPort: 9000 }] },
    },
    yaml: docs(
      policy('foo', 'default', '{ peers: [{ mtls: { mode: PERMISSIVE } }] }'),
      policy(
        'foo',
        'backend',
        '{ targets: [{ name: backend, ports: [{ number: 8000 }] }], peers: [{ mtls: {} }] }',
      ),
    ),
    mode: 'STRICT',
    decidedBy: 'Policy/foo/backend',
  },
  {
    id: 'M25',
    name: 'v1alpha1 target on another port falls back to the namespace',
    cite: V1ALPHA1,
    rule: "a target whose ports do not include the workload's does not select it",
    context: {
      labels: { app: 'backend' },
      port: 9001,
      service: {
        name: 'backend',
        ports: [
          { name: 'http', port: 8000, targetPort: 9000 },
          { name: 'admin', port: 8001, targetPort: 9001 },
        ],
      },
    },
    yaml: docs(
      policy('foo', 'default', '{ peers: [{ mtls: { mode: PERMISSIVE } }] }'),
      policy(
        'foo',
        'backend',
        '{ targets: [{ name: backend, ports: [{ name: http }] }], peers: [{ mtls: {} }] }',
      ),
    ),
    mode: 'PERMISSIVE',
    decidedBy: 'Policy/foo/default',
  },
  {
    id: 'M26',
    name: 'v1alpha1 origins (JWT) are refused by name',
    cite: V1ALPHA1,
    rule: 'origin authentication verifies JWTs, which sidecarless does not do',
    context: {
      labels: { app: 'productpage' },
      service: { name: 'productpage', ports: [{ port: 9000, targetPort: 8080 }] },
    },
    yaml: policy(
      'foo',
      'productpage-mtls-with-jwt',
      '{ targets: [{ name: productpage, ports: [{ number: 9000 }] }], peers: [{ mtls: }], origins: [{ jwt: { issuer: "https://securetoken.google.com" } }], principalBinding: USE_ORIGIN }',
    ),
    refused: { code: 'ERR_ISTIO_UNSUPPORTED', field: 'spec.origins' },
  },
  {
    id: 'M27',
    name: 'v1alpha1 and v1 together are refused',
    cite: PA_REF,
    rule: 'no Istio release served v1alpha1 authentication policies beside PeerAuthentication',
    yaml: docs(
      policy('foo', 'default', '{ peers: [{ mtls: {} }] }'),
      pa('foo', 'default', '{ mtls: { mode: STRICT } }'),
    ),
    refused: { code: 'ERR_ISTIO_CONFLICT', field: 'Policy/foo/default' },
  },
  {
    id: 'M28',
    name: 'MeshPolicy PERMISSIVE, namespace Policy STRICT',
    cite: V1ALPHA1,
    rule: 'the namespace policy is narrower than the mesh policy',
    yaml: docs(
      'apiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata: { name: default }\nspec: { peers: [{ mtls: { mode: PERMISSIVE } }] }\n',
      policy('foo', 'default', '{ peers: [{ mtls: { mode: STRICT } }] }'),
    ),
    mode: 'STRICT',
    decidedBy: 'Policy/foo/default',
  },
  {
    id: 'M29',
    name: 'a v1alpha1 namespace Policy must be named default',
    cite: V1ALPHA1,
    rule: 'a Policy without targets applies namespace-wide only under the name "default"',
    yaml: policy('foo', 'strict', '{ peers: [{ mtls: {} }] }'),
    refused: { code: 'ERR_ISTIO_INVALID', field: 'metadata.name' },
  },
];

export const ALL_CASES: readonly ParityCase[] = [...AUTHORIZATION_CASES, ...MODE_CASES];
