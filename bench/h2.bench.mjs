// Benchmark: HTTP/2 (allowH2: true) against HTTP/1.1 pools through createMtlsDispatcher, to one
// createMtlsServer({ protocol: 'http2' }) that speaks both (ALPN picks).
//
//   npm run build && node bench/h2.bench.mjs [--rounds 3] [--requests 3000] [--concurrency 16]
//
// The server runs in a child process; the dispatcher here keeps `--concurrency` requests in
// flight. Pools: HTTP/1.1 with 1 and with `--concurrency` connections, HTTP/2 with 1 connection
// (its streams multiplexed). Rounds interleave the pools; medians of req/s and ratios to the
// HTTP/1.1 pool of `--concurrency` connections are reported.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createLocalCa, createMtlsDispatcher } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '16' },
  },
});
const ROUNDS = Number(values.rounds);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);

const ca = createLocalCa({ trustDomain: 'cluster.local', ttl: 24 * 3_600_000 });
const serverSvid = ca.issue('/ns/demo/sa/boards');
const child = fork(new URL('./lib/h2-server-child.mjs', import.meta.url), [], { stdio: 'inherit' });
process.on('exit', () => child.kill());
child.send({
  cert: serverSvid.certChainPem(),
  key: serverSvid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
  ca: ca.bundle().toPem(),
});
const [{ port }] = await once(child, 'message');
const identity = ca.identity('/ns/demo/sa/app-ui');
await identity.ready();

const POOLS = {
  'HTTP/1.1, 1 connection': { allowH2: false, connections: 1 },
  [`HTTP/1.1, ${CONCURRENCY} connections`]: { allowH2: false, connections: CONCURRENCY },
  'HTTP/2, 1 connection': { allowH2: true, connections: 1 },
};
const BASE = `HTTP/1.1, ${CONCURRENCY} connections`;

// The protocols the responses came over, per pool: the table shows what ALPN chose.
const alpns = {};

async function measure(name, options) {
  alpns[name] ??= new Set();
  const dispatcher = createMtlsDispatcher({
    identity,
    destinations: { '*': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
    onPeer: (peer) => alpns[name].add(peer.alpn),
    ...options,
  });
  const origin = `http://127.0.0.1:${port}`;
  const one = async () => {
    const res = await dispatcher.request({ origin, path: '/items', method: 'GET' });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
  // Warm up: connections made, h2 known.
  await Promise.all(Array.from({ length: CONCURRENCY }, one));
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (sent < REQUESTS) {
        sent++;
        await one();
      }
    }),
  );
  const rate = REQUESTS / ((performance.now() - started) / 1000);
  await dispatcher.close();
  return rate;
}

const rates = Object.fromEntries(Object.keys(POOLS).map((name) => [name, []]));
const ratios = Object.fromEntries(Object.keys(POOLS).map((name) => [name, []]));
const names = Object.keys(POOLS);
for (let round = 0; round < ROUNDS; round++) {
  const got = {};
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length];
    got[name] = await measure(name, POOLS[name]);
    rates[name].push(got[name]);
  }
  for (const name of names) ratios[name].push(got[name] / got[BASE]);
}
child.send('exit');
await identity.close();
await ca.close();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const range = (xs, d) => `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;
console.log(
  `node ${process.version}, ${ROUNDS} rounds x ${REQUESTS} requests, ${CONCURRENCY} in flight, medians (min–max)\n`,
);
console.log(`| pool | ALPN | req/s | vs ${BASE} |`);
console.log('| --- | --- | --- | --- |');
for (const name of names) {
  console.log(
    `| ${name} | ${[...alpns[name]].join(', ')} | ${median(rates[name]).toFixed(0)} (${range(rates[name], 0)}) | ${median(ratios[name]).toFixed(2)}× (${range(ratios[name], 2)}) |`,
  );
}
