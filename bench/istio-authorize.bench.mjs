// Benchmark: authorize() per decision with a policy from fromIstio() (Istio's evaluation, both
// readings of the request) against the equivalent authorization map, on the same requests.
// Rounds are interleaved (the policy that runs first alternates); medians with their min–max.
// Loops are bounded: rounds x iterations.
//
//   npm run build && node bench/istio-authorize.bench.mjs [--rounds 9] [--iterations 200000]
//
// The Istio set: one DENY policy (POST from namespace dev) and one ALLOW policy of two rules
// (GET /shareditems* from app-ui; /admin/* from namespace ops). Requests cycle through an
// allowed GET, a GET the ALLOW rules deny, and a mixed-case path the router reading decides.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    iterations: { type: 'string', default: '200000' },
    dist: { type: 'string', default: new URL('../dist/', import.meta.url).pathname },
  },
});
const rounds = Number(values.rounds);
const iterations = Number(values.iterations);
const { authorize, createAuthorizationPolicy } = await import(`${values.dist}index.js`);
const { fromIstio } = await import(`${values.dist}istio/index.js`);
const { fakePeer } = await import(`${values.dist}testing/index.js`);

const yaml = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-dev-posts, namespace: demo }
spec: { action: DENY, rules: [{ from: [{ source: { namespaces: [dev] } }], to: [{ operation: { methods: [POST] } }] }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: boards, namespace: demo }
spec:
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/demo/sa/app-ui"] } }]
    to: [{ operation: { methods: [GET], paths: ["/shareditems*"] } }]
  - from: [{ source: { namespaces: [ops] } }]
    to: [{ operation: { paths: ["/admin/*"] } }]
`;
const istio = fromIstio(yaml, {
  namespace: 'demo',
  labels: {},
  port: 8080,
  trustDomain: 'cluster.local',
}).authorize;
const map = createAuthorizationPolicy({
  authorize: {
    'GET /shareditems/*': 'spiffe://cluster.local/ns/demo/sa/app-ui',
    '/admin/*': 'spiffe://cluster.local/ns/ops/*',
  },
  deny: { 'POST *': 'spiffe://cluster.local/ns/dev/*' },
});
const peer = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
const requests = ['/shareditems/7', '/boards', '/Admin/users'].map((path) => ({
  method: 'GET',
  path,
  host: 'boards',
  port: 8080,
}));

function run(policy) {
  let allowed = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (authorize(policy, peer, requests[i % 3]).allowed) allowed++;
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  if (allowed === 0) throw new Error('no request was allowed: the scenario is broken');
  return ns;
}

const results = { istio: [], map: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ['istio', 'map'] : ['map', 'istio'];
  for (const name of order) results[name].push(run(name === 'istio' ? istio : map));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${rounds} rounds x ${iterations} decisions`);
for (const [name, xs] of Object.entries(results)) {
  console.log(
    `${name.padEnd(6)} ${median(xs).toFixed(0)} ns/decision (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`,
  );
}
