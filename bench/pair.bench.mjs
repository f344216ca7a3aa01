// Benchmark: the library on both ends against raw Node on both ends, closed loop.
//
//   npm run build && node bench/pair.bench.mjs [--rounds 3] [--seconds 5] [--connections 16]
//
// Library: createMtlsServer (STRICT; `resumption: true` for the resumed rows) in a child process,
// createMtlsDispatcher as the load generator in another. Raw: `https.createServer({ requestCert })`
// and an undici Pool sharing one SecureContext (chain verified, no SPIFFE checks, Node's default
// unsafe resumption). Rows: keep-alive; a new connection per request (a full handshake each); a
// new connection per request that resumes its session. Server and client CPU per request are
// measured separately (each in its own process; with two cores, server pinned to core 1, client to
// core 0). Rounds interleave every row (order rotates) and each ratio is taken within a round.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLocalCa } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION_MS = Number(values.seconds) * 1000;
const CONNECTIONS = Number(values.connections);
const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sidecarless-pair-'));
const children = [];
process.on('exit', () => {
  for (const child of children) child.kill();
});
const CORES = availableParallelism();
function pin(pid, side) {
  if (CORES < 2) return;
  try {
    execFileSync('taskset', ['-pc', side === 'server' ? '1' : '0', String(pid)], { stdio: 'ignore' });
  } catch {
    // taskset missing: unpinned.
  }
}

// --- material -------------------------------------------------------------------------------
const ca = createLocalCa({ trustDomain: 'cluster.local', ttl: 24 * 3_600_000 });
const pem = (svid) => ({
  cert: svid.certChainPem(),
  key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
});
const serverSvid = pem(ca.issue('/ns/demo/sa/boards'));
const clientSvid = pem(ca.issue('/ns/demo/sa/app-ui'));
const material = {
  trustDomain: 'cluster.local',
  serverId: 'spiffe://cluster.local/ns/demo/sa/boards',
  serverCert: serverSvid.cert,
  serverKey: serverSvid.key,
  clientCert: clientSvid.cert,
  clientKey: clientSvid.key,
  ca: ca.bundle().toPem(),
};
const materialFile = join(dir, 'material.json');
writeFileSync(materialFile, JSON.stringify(material));

// --- processes ------------------------------------------------------------------------------
async function startServer(variant) {
  const child = fork(join(here, 'lib/server-child.mjs'), [variant, materialFile], {
    execArgv: ['--expose-gc'],
  });
  children.push(child);
  pin(child.pid, 'server');
  const [{ port }] = await once(child, 'message');
  const ask = async (message) => {
    child.send(message);
    const [reply] = await once(child, 'message');
    return reply;
  };
  return { port, usage: () => ask('usage'), memory: () => ask('gc') };
}
const loader = fork(join(here, 'lib/pair-load-child.mjs'));
children.push(loader);
pin(loader.pid, 'client');
async function load(job) {
  loader.send({ connections: CONNECTIONS, durationMs: DURATION_MS, material, ...job });
  const [result] = await once(loader, 'message');
  return result;
}

const servers = {
  library: await startServer('strict'),
  libraryResumption: await startServer('strict-resumption'),
  raw: await startServer('raw-https'),
};
const rows = {
  'keep-alive: library': { client: 'library', server: servers.library, connection: 'keep-alive' },
  'keep-alive: raw': { client: 'raw', server: servers.raw, connection: 'keep-alive' },
  'new connection: library': { client: 'library', server: servers.library, connection: 'new' },
  'new connection: raw': { client: 'raw', server: servers.raw, connection: 'new' },
  'resumed: library': { client: 'library', server: servers.libraryResumption, connection: 'resumed' },
  'resumed: raw (unsafe)': { client: 'raw', server: servers.raw, connection: 'resumed' },
};

async function measure(row, durationMs = DURATION_MS) {
  const before = await row.server.usage();
  const result = await load({
    client: row.client,
    port: row.server.port,
    connection: row.connection,
    durationMs,
  });
  const after = await row.server.usage();
  const full = after.handshakes.full - before.handshakes.full;
  const resumed = after.handshakes.resumed - before.handshakes.resumed;
  return {
    ...result,
    serverCpuPerRequest: (after.cpu - before.cpu) / Math.max(1, result.requests),
    resumedShare: resumed / Math.max(1, full + resumed),
  };
}

console.log(
  `node ${process.version}, OpenSSL ${process.versions.openssl}; ${CORES} cores${CORES >= 2 ? ', server pinned to core 1, client to core 0' : ''}; ${ROUNDS} rounds × ${DURATION_MS / 1000} s per row; ${CONNECTIONS} connections`,
);
// Warm-up: one short pass of every row (JIT, contexts, session caches).
for (const row of Object.values(rows)) await measure(row, 1000);
const results = Object.fromEntries(Object.keys(rows).map((name) => [name, []]));
const names = Object.keys(rows);
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + round) % names.length];
    results[name].push(await measure(rows[name]));
  }
}
async function settledRss(server) {
  for (let i = 0; i < 3; i++) await server.memory();
  return (await server.memory()).rss;
}
const rss = { library: await settledRss(servers.library), raw: await settledRss(servers.raw) };

// --- report ---------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs, digits = 0) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
console.log(
  '\n| row | req/s median (min–max) | p99 ms | server CPU µs/req | client CPU µs/req | resumed | errors |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [name, runs] of Object.entries(results)) {
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  console.log(
    `| ${name} | ${spread(runs.map((r) => r.rps))} | ${median(runs.map((r) => r.p99)).toFixed(2)} | ${median(runs.map((r) => r.serverCpuPerRequest)).toFixed(0)} | ${median(runs.map((r) => r.cpuPerRequest)).toFixed(0)} | ${(100 * median(runs.map((r) => r.resumedShare))).toFixed(0)} % | ${errors}${errors ? ` (${runs.find((r) => r.lastError)?.lastError})` : ''} |`,
  );
}
const ratio = (a, b, field, label, goal) => {
  const rs = results[a].map((r, i) => r[field] / results[b][i][field]);
  console.log(
    `| ${label} | ${median(rs).toFixed(2)}× (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)}) | ${goal} |`,
  );
};
console.log('\n| ratio (per round, then median) | measured | goal |');
console.log('| --- | --- | --- |');
ratio('keep-alive: library', 'keep-alive: raw', 'rps', 'keep-alive req/s, library / raw', '—');
ratio('new connection: library', 'new connection: raw', 'rps', 'full handshakes/s, library / raw', '≥ 0.95×');
ratio(
  'new connection: library',
  'new connection: raw',
  'serverCpuPerRequest',
  'server CPU per full handshake, library / raw',
  '—',
);
ratio(
  'new connection: library',
  'new connection: raw',
  'cpuPerRequest',
  'client CPU per full handshake, library / raw',
  '—',
);
ratio('resumed: library', 'new connection: library', 'rps', 'resumed / full handshakes/s, library', '≥ 1.8×');
ratio(
  'resumed: library',
  'resumed: raw (unsafe)',
  'rps',
  "resumed/s, library / raw's unsafe resumption",
  '≥ 0.9×',
);
console.log(
  `| server RSS after the run, library / raw | ${(rss.library / 2 ** 20).toFixed(0)} MB / ${(rss.raw / 2 ** 20).toFixed(0)} MB | — |`,
);

for (const child of children) child.kill();
await ca.close();
rmSync(dir, { recursive: true, force: true });
