// Benchmark: authorize() per decision, path normalisation included, on a policy of 1 001
// authorize rules and 50 deny rules (50 services x 20 keys, plus "*"), against the same requests
// on a policy of the same shape with 21 rules (one service: the cost must not grow with the rule
// count), and against one `new URL()` parse (a reference for what reading a path costs at all).
// Rounds are interleaved (the scenario that runs first rotates), so machine noise spreads over all
// of them; medians are reported with their min–max, and as a ratio to the same round's new URL().
// Loops are bounded: rounds x iterations.
//
//   npm run build && node bench/authorize.bench.mjs [--rounds 15] [--iterations 200000]
//
// Scenarios (each cycles through 256 requests and 3 peers; matchers mix exact IDs, "/*" patterns,
// lists and "*"):
//   exact        an exact key decides (a Map lookup), method-specific or not
//   prefix       a prefix key decides, 2–3 segments up from a 6-segment path
//   default      no key covers the path: "*" decides
//   deny         a deny prefix rule matches the peer
//   messy        the path needs rewriting first ("//", "./", "%61", "..", a trailing "/")
//   bad          refused by normalisation ("%2f", a ".." above the root)
//   …@21         the same requests on the 21-rule policy
//   new URL()    reference: `new URL(path, base).pathname` for the "prefix" paths, nothing else
// The 256 request strings are reused, so V8 has their hashes cached; a server's req.url is a new
// string each time, which costs one more hash of the path (~10–20 ns).
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    iterations: { type: 'string', default: '200000' },
    // Where the built package is (for measuring a build made elsewhere).
    dist: { type: 'string', default: new URL('../dist/', import.meta.url).pathname },
  },
});
const ROUNDS = Number(values.rounds);
const ITERATIONS = Number(values.iterations);
const dist = values.dist.endsWith('/') ? values.dist : `${values.dist}/`;
const { authorize, createAuthorizationPolicy } = await import(`${dist}index.js`);
const { fakePeer } = await import(`${dist}testing/index.js`);

const SERVICES = 50;
const ui = fakePeer('spiffe://cluster.local/ns/demo/sa/app-ui');
const ops = fakePeer('spiffe://cluster.local/ns/ops/sa/admin');
const partner = fakePeer('spiffe://partner.example/ns/x/sa/y');
const peers = [ui, ops, partner];

/** 20 authorize keys and one deny key per service: exact, method-specific, prefixes 1–4 deep. */
function policyOf(services) {
  const authorize = {};
  const deny = {};
  const matchers = [
    'spiffe://cluster.local/ns/demo/sa/app-ui',
    'cluster.local/ns/ops/*',
    ['spiffe://cluster.local/ns/demo/*', 'spiffe://partner.example/*'],
    '*',
  ];
  for (let s = 0; s < services; s++) {
    const m = (i) => matchers[(s + i) % matchers.length];
    for (let i = 0; i < 8; i++) authorize[`/svc${s}/items/i${i}`] = m(i);
    for (let i = 0; i < 4; i++) authorize[`GET /svc${s}/items/i${i}`] = m(i + 1);
    authorize[`POST /svc${s}/items/*`] = m(2);
    authorize[`/svc${s}/*`] = m(3);
    authorize[`/svc${s}/a/*`] = m(0);
    authorize[`/svc${s}/a/b/*`] = m(1);
    authorize[`GET /svc${s}/a/b/c/*`] = m(2);
    for (let i = 0; i < 3; i++) authorize[`/svc${s}/r${i}/x/*`] = m(i);
    deny[`/svc${s}/admin/*`] = 'spiffe://partner.example/*';
  }
  authorize['*'] = 'cluster.local/ns/ops/*';
  return createAuthorizationPolicy({ authorize, deny });
}

const cycle = (f) => Array.from({ length: 256 }, (_, i) => f(i));
const pick = (i) => peers[i % peers.length];
const method = (i) => (i % 3 === 0 ? 'POST' : 'GET');
/** The requests of each scenario, for a policy of `services` services. */
function requestsFor(services) {
  const svc = (i) => `svc${i % services}`;
  const requests = {
    exact: cycle((i) => ({ method: method(i), path: `/${svc(i)}/items/i${i % 8}` })),
    prefix: cycle((i) => ({ method: method(i), path: `/${svc(i)}/a/b/q${i}/r/s` })),
    default: cycle((i) => ({ method: 'GET', path: `/nowhere${i}/a/b/c/d/e` })),
    deny: cycle((i) => ({ method: 'GET', path: `/${svc(i)}/admin/users/${i}`, peer: partner })),
    messy: cycle((i) => ({ method: 'GET', path: `//${svc(i)}/./%61/b/../b/q${i}/` })),
    bad: cycle((i) => ({ method: 'GET', path: i % 2 ? `/${svc(i)}/a%2fb` : `/../${svc(i)}/a` })),
  };
  // Flat strings, as an HTTP parser hands them over (template literals build rope strings).
  for (const list of Object.values(requests))
    for (const r of list) r.path = JSON.parse(JSON.stringify(r.path));
  return requests;
}

const big = policyOf(SERVICES);
const small = policyOf(1);
const REQUESTS = requestsFor(SERVICES);
const SMALL_REQUESTS = requestsFor(1);
let sink = 0;

function run(policy, requests) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const r = requests[i & 255];
    const d = authorize(policy, r.peer ?? pick(i), r);
    sink += d.allowed ? 1 : 0;
  }
  return Number(process.hrtime.bigint() - start) / ITERATIONS / 1000; // µs per decision
}

function runUrl(requests) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) sink += new URL(requests[i & 255].path, 'http://x').pathname.length;
  return Number(process.hrtime.bigint() - start) / ITERATIONS / 1000;
}

const scenarios = {};
for (const name of Object.keys(REQUESTS)) scenarios[name] = () => run(big, REQUESTS[name]);
for (const name of ['exact', 'prefix', 'default']) {
  scenarios[`${name}@21`] = () => run(small, SMALL_REQUESTS[name]);
}
scenarios['new URL()'] = () => runUrl(REQUESTS.prefix);

// Sanity: every scenario decides the way its name says, or the numbers measure something else.
const expectations = {
  exact: (d) => d.rule !== null && !d.rule.includes('*'),
  prefix: (d) => d.rule?.endsWith('/*'),
  default: (d) => d.rule === '*',
  deny: (d) => d.reason === 'denied_by_rule',
  messy: (d) => d.path.startsWith('/svc') && !d.path.includes('//') && d.rule?.endsWith('/*'),
  bad: (d) => d.reason === 'bad_request',
};
for (const [policy, requests] of [
  [big, REQUESTS],
  [small, SMALL_REQUESTS],
]) {
  for (const [name, check] of Object.entries(expectations)) {
    requests[name].forEach((r, i) => {
      const d = authorize(policy, r.peer ?? pick(i), r);
      if (!check(d)) {
        throw new Error(`${name}: unexpected decision ${JSON.stringify(d)} for ${r.method} ${r.path}`);
      }
    });
  }
}

console.log(`node ${process.version}, ${ROUNDS} rounds x ${ITERATIONS} decisions per scenario`);
const count = (p) => `${p.describe().authorize.length} authorize + ${p.describe().deny.length} deny rules`;
console.log(`policies: ${count(big)}; ${count(small)} (the …@21 rows)`);

// Warm-up: let every path through authorize() reach the optimising compiler.
for (const fn of Object.values(scenarios)) fn();

const names = Object.keys(scenarios);
const results = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length];
    results[name].push(scenarios[name]());
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ns = (us) => `${Math.round(us * 1000)}`;
// Each scenario over the new URL() reference of the same round: noise from other processes on the
// machine hits both alike, so the ratio holds steadier than the absolute figures.
const url = results['new URL()'];
console.log('\n| scenario | ns per decision (median) | min–max | × new URL() (median, min–max) |');
console.log('| --- | --- | --- | --- |');
for (const name of names) {
  const r = results[name];
  const ratio = r.map((x, i) => x / url[i]);
  const f = (x) => x.toFixed(2);
  const ratios = `${f(median(ratio))} (${f(Math.min(...ratio))}–${f(Math.max(...ratio))})`;
  console.log(`| ${name} | ${ns(median(r))} | ${ns(Math.min(...r))}–${ns(Math.max(...r))} | ${ratios} |`);
}
if (sink === 0.5) console.log(sink); // keeps the results observable
