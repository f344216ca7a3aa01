// Benchmark: SpiffeId.parse, and verifyPeerChain against node:crypto doing the bare minimum on
// the same DER: `new X509Certificate` for each presented certificate plus `checkIssued` and
// `verify` for each link (the bundle's root is parsed once, up front, on both sides, as a server
// holds its bundle). Rounds are interleaved and each ratio is taken within a round, so machine
// noise hits both sides alike; the medians of those ratios are reported with their spread.
//
//   npm run build && node bench/verify-peer-chain.bench.mjs [--rounds 9] [--iterations 800]
//
// Scenarios (P-256, DER input):
//   chain2        leaf + root (root in the bundle), same DER every time (a peer reconnecting)
//   chain3        leaf + intermediate + root, same DER every time
//   chain2-cold   1100 distinct leaves cycled: the parse memo (1024 entries) never hits
//   chain3-cold   600 distinct CAs cycled (1200 certificates): leaf and intermediate both unseen
import { X509Certificate } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createLocalCa, SpiffeId, verifyPeerChain } from '../dist/index.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '9' }, iterations: { type: 'string', default: '800' } },
});
const ROUNDS = Number(values.rounds);
const ITERATIONS = Number(values.iterations);
const COLD_LEAVES = 1100;
const COLD_CAS = 600;

function baseline(ders, root, rootPublicKey) {
  const certs = ders.map((der) => new X509Certificate(der));
  for (let i = 0; i < certs.length; i++) {
    const child = certs[i];
    const issuer = certs[i + 1] ?? root;
    const key = certs[i + 1] === undefined ? rootPublicKey : issuer.publicKey;
    if (!child.checkIssued(issuer) || !child.verify(key)) throw new Error('baseline: chain does not verify');
  }
}

function setup() {
  const single = createLocalCa({ trustDomain: 'cluster.local' });
  const layered = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
  const chain = (ca) => ca.issue('/ns/demo/sa/boards').certChainDer();
  const withRoot = (ca, ders) => ({ ders, bundles: ca.bundles(), root: ca.bundle().authorities[0] });
  const scenarios = {
    chain2: [withRoot(single, chain(single))],
    chain3: [withRoot(layered, chain(layered))],
    'chain2-cold': Array.from({ length: COLD_LEAVES }, () => withRoot(single, chain(single))),
    'chain3-cold': Array.from({ length: COLD_CAS }, () => {
      const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
      return withRoot(ca, chain(ca));
    }),
  };
  for (const cases of Object.values(scenarios)) {
    for (const c of cases) c.rootPublicKey = c.root.publicKey;
  }
  return scenarios;
}

function time(fn, n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / n / 1000; // µs per operation
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, digits = 1) => x.toFixed(digits);

console.log(
  `node ${process.version}, OpenSSL ${process.versions.openssl}, ${ROUNDS} rounds x ${ITERATIONS} iterations`,
);
const t0 = Date.now();
const scenarios = setup();
console.log(`setup (issuing ${2 + COLD_LEAVES + COLD_CAS} chains) took ${Date.now() - t0} ms`);

const ids = ['spiffe://cluster.local/ns/demo/sa/boards', 'spiffe://example.org/a/b/c/d', 'spiffe://td/x'];
const results = { 'SpiffeId.parse': { ours: [] } };
for (const name of Object.keys(scenarios)) results[name] = { ours: [], base: [], ratio: [] };

// Each scenario walks its cases with its own cursor, so a cold case comes round again only
// after more verifications than the memo holds.
const cursors = Object.fromEntries(Object.keys(scenarios).map((name) => [name, { ours: 0, base: 0 }]));
const next = (name, side) => {
  const cases = scenarios[name];
  return cases[cursors[name][side]++ % cases.length];
};

// Warm-up: JIT both paths, and let the warm scenarios' memo fill.
for (const name of Object.keys(scenarios)) {
  for (let i = 0; i < 200; i++) {
    const c = next(name, 'ours');
    verifyPeerChain(c.ders, c.bundles);
    const b = next(name, 'base');
    baseline(b.ders, b.root, b.rootPublicKey);
  }
}

for (let round = 0; round < ROUNDS; round++) {
  results['SpiffeId.parse'].ours.push(time((i) => SpiffeId.parse(ids[i % 3]), ITERATIONS * 20));
  for (const name of Object.keys(scenarios)) {
    // Alternate which side runs first, so neither always gets the warmer caches.
    const runOurs = () =>
      time(() => {
        const c = next(name, 'ours');
        verifyPeerChain(c.ders, c.bundles);
      }, ITERATIONS);
    const runBase = () =>
      time(() => {
        const c = next(name, 'base');
        baseline(c.ders, c.root, c.rootPublicKey);
      }, ITERATIONS);
    const [ours, base] = round % 2 === 0 ? [runOurs(), runBase()] : [runBase(), runOurs()].reverse();
    results[name].ours.push(ours);
    results[name].base.push(base);
    results[name].ratio.push(ours / base);
  }
}

console.log(
  '\n| scenario | verifyPeerChain µs/op (median, min–max) | node:crypto minimum µs/op | ratio (median, min–max) |',
);
console.log('| --- | --- | --- | --- |');
for (const [name, r] of Object.entries(results)) {
  const ours = `${fmt(median(r.ours), 2)} (${fmt(Math.min(...r.ours), 2)}–${fmt(Math.max(...r.ours), 2)})`;
  if (r.base === undefined) {
    console.log(`| ${name} | ${ours} | — | — |`);
    continue;
  }
  const base = `${fmt(median(r.base))} (${fmt(Math.min(...r.base))}–${fmt(Math.max(...r.base))})`;
  const ratio = `${fmt(median(r.ratio), 2)}× (${fmt(Math.min(...r.ratio), 2)}–${fmt(Math.max(...r.ratio), 2)})`;
  console.log(`| ${name} | ${ours} | ${base} | ${ratio} |`);
}
