// Benchmark: createMtlsServer against raw `https.createServer({ requestCert: true })` with the same
// certificates and the same load client, and against what users run today: a pair of haproxy
// sidecars (client → plaintext → haproxy → mTLS → haproxy → plaintext → a plain http server).
//
//   npm run build && node bench/server.bench.mjs [--rounds 5] [--requests 4000] [--handshakes 500]
//
// Each server runs in its own process (CPU and memory are its own); the load client in another.
// With two or more cores, the server side (the server, or haproxy B and its app) is pinned to one
// core and the client side (the load client, and haproxy A for the pair) to another, as each
// would share its own pod.
// Rounds are interleaved (scenario order rotates each round) and every ratio is taken within one
// round, so the shared machine's noise hits both sides alike; medians and min–max are reported.
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { createLocalCa } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '4000' },
    handshakes: { type: 'string', default: '500' },
    connections: { type: 'string', default: '10' },
    idle: { type: 'string', default: '1000' },
  },
});
const ROUNDS = Number(values.rounds);
const REQUESTS = Number(values.requests);
const HANDSHAKES = Number(values.handshakes);
const CONNECTIONS = Number(values.connections);
const IDLE = Number(values.idle);
const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-'));
const children = [];
// Never leave servers or proxies behind, whatever happens.
process.on('exit', () => {
  for (const child of children) child.kill();
});
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const CORES = availableParallelism();
function pin(pid, side) {
  if (CORES < 2) return;
  try {
    execFileSync('taskset', ['-pc', side === 'server' ? '1' : '0', String(pid)], { stdio: 'ignore' });
  } catch {
    // taskset missing: unpinned, as on one core.
  }
}

// --- material -------------------------------------------------------------------------------
const ca = createLocalCa({ trustDomain: 'cluster.local', ttl: 24 * 3_600_000 });
const pem = (svid) => ({
  cert: svid.certChainPem(),
  key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
});
const server = pem(ca.issue('/ns/demo/sa/boards'));
const client = pem(ca.issue('/ns/demo/sa/app-ui'));
const caPem = ca.bundle().toPem();
const materialFile = join(dir, 'material.json');
writeFileSync(
  materialFile,
  JSON.stringify({ trustDomain: 'cluster.local', serverCert: server.cert, serverKey: server.key, ca: caPem }),
);

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
  return { port, pid: child.pid, cpu: async () => (await ask('usage')).cpu, memory: () => ask('gc') };
}

const loader = fork(join(here, 'lib/load-child.mjs'));
children.push(loader);
pin(loader.pid, 'client');
async function load(job) {
  loader.send({ timeoutMs: 60_000, connections: CONNECTIONS, ...job });
  const [result] = await once(loader, 'message');
  return result;
}

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}

function cpuOfPid(pid) {
  // /proc/<pid>/stat fields 14 and 15: utime and stime, in clock ticks.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

async function startHaproxyPair() {
  const haproxy = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => {
    try {
      execFileSync(p, ['-v']);
      return true;
    } catch {
      return false;
    }
  });
  if (haproxy === undefined) return undefined;
  const app = await startServer('app');
  const [pa, pb] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'a.pem'), client.cert + client.key);
  writeFileSync(join(dir, 'b.pem'), server.cert + server.key);
  writeFileSync(join(dir, 'ca.pem'), caPem);
  const common = `global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 60s\n`;
  // B: the server's sidecar, demanding the client's certificate. A: the client's sidecar.
  writeFileSync(
    join(dir, 'b.cfg'),
    `${common}frontend mesh_in\n  bind 127.0.0.1:${pb} ssl crt ${dir}/b.pem ca-file ${dir}/ca.pem verify required\n  default_backend app\nbackend app\n  http-reuse always\n  server app 127.0.0.1:${app.port}\n`,
  );
  writeFileSync(
    join(dir, 'a.cfg'),
    `${common}frontend app_out\n  bind 127.0.0.1:${pa}\n  default_backend mesh\nbackend mesh\n  http-reuse always\n  server b 127.0.0.1:${pb} ssl crt ${dir}/a.pem ca-file ${dir}/ca.pem verify required\n`,
  );
  const procs = ['b', 'a'].map((name) => {
    const p = spawn(haproxy, ['-db', '-f', join(dir, `${name}.cfg`)], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    children.push(p);
    pin(p.pid, name === 'b' ? 'server' : 'client');
    return p;
  });
  for (const port of [pb, pa]) {
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise((resolve) => {
        const s = net
          .connect(port, '127.0.0.1', () => resolve(s.end() && true))
          .on('error', () => resolve(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port: pa,
    cpu: async () => cpuOfPid(procs[0].pid) + cpuOfPid(procs[1].pid) + (await app.cpu()),
  };
}

// --- scenarios ------------------------------------------------------------------------------
const mtls = { tls: true, cert: client.cert, key: client.key, ca: caPem };
const servers = {
  raw: await startServer('raw-https'),
  strict: await startServer('strict'),
  http: await startServer('plain-http'),
  permissive: await startServer('permissive'),
};
const pair = await startHaproxyPair();

const scenarios = {
  'keep-alive mTLS: raw https': {
    target: servers.raw,
    job: { ...mtls, keepAlive: true, requests: REQUESTS },
  },
  'keep-alive mTLS: createMtlsServer STRICT': {
    target: servers.strict,
    job: { ...mtls, keepAlive: true, requests: REQUESTS },
  },
  'full handshakes: raw https': {
    target: servers.raw,
    job: { ...mtls, keepAlive: false, requests: HANDSHAKES },
  },
  'full handshakes: createMtlsServer STRICT': {
    target: servers.strict,
    job: { ...mtls, keepAlive: false, requests: HANDSHAKES },
  },
  'plaintext: http.createServer': {
    target: servers.http,
    job: { tls: false, keepAlive: true, requests: REQUESTS },
  },
  'plaintext: createMtlsServer PERMISSIVE': {
    target: servers.permissive,
    job: { tls: false, keepAlive: true, requests: REQUESTS },
  },
  'keep-alive mTLS: createMtlsServer PERMISSIVE': {
    target: servers.permissive,
    job: { ...mtls, keepAlive: true, requests: REQUESTS },
  },
  ...(pair === undefined
    ? {}
    : {
        'haproxy sidecar pair (plaintext in, mTLS between)': {
          target: pair,
          job: { tls: false, keepAlive: true, requests: REQUESTS },
        },
      }),
};

const results = Object.fromEntries(Object.keys(scenarios).map((name) => [name, []]));
console.log(
  `node ${process.version}, OpenSSL ${process.versions.openssl}; ${CORES} cores${CORES >= 2 ? ', server side pinned to core 1, client side to core 0' : ''}; ${ROUNDS} rounds; ${REQUESTS} keep-alive requests, ${HANDSHAKES} handshakes, ${CONNECTIONS} connections per run`,
);
// Warm-up, two full passes: throughput triples between a cold and a warm run (JIT, TLS contexts,
// haproxy's pools); a round-one measurement would say nothing.
for (let pass = 0; pass < 2; pass++) {
  for (const { target, job } of Object.values(scenarios)) await load({ ...job, port: target.port });
}

const names = Object.keys(scenarios);
for (let round = 0; round < ROUNDS; round++) {
  const order = names.map((_, i) => names[(i + round) % names.length]);
  for (const name of order) {
    const { target, job } = scenarios[name];
    const before = await target.cpu();
    const result = await load({ ...job, port: target.port });
    const cpu = (await target.cpu()) - before;
    results[name].push({ ...result, cpuPerRequest: cpu / Math.max(1, result.requests) });
  }
}

// --- memory per idle mTLS connection ---------------------------------------------------------
async function settledMemory(target) {
  // Several collections: one full GC can leave garbage a second one frees.
  for (let i = 0; i < 3; i++) await target.memory();
  await new Promise((r) => setTimeout(r, 200));
  return target.memory();
}

async function idleCost(target) {
  const base = await settledMemory(target);
  const sockets = [];
  const context = tls.createSecureContext({ cert: client.cert, key: client.key, ca: caPem });
  for (let i = 0; i < IDLE; i++) {
    const s = tls.connect({
      host: '127.0.0.1',
      port: target.port,
      secureContext: context,
      checkServerIdentity: () => undefined,
    });
    s.on('error', () => {});
    await once(s, 'secureConnect');
    sockets.push(s);
  }
  const loaded = await settledMemory(target);
  for (const s of sockets) s.destroy();
  return {
    rss: (loaded.rss - base.rss) / IDLE,
    heap: (loaded.heapUsed + loaded.external - base.heapUsed - base.external) / IDLE,
  };
}
const memory = { raw: await idleCost(servers.raw), strict: await idleCost(servers.strict) };

// --- report ---------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs, digits = 0) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
console.log('\n| scenario | req/s median (min–max) | p99 ms | server CPU µs/request | errors |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, runs] of Object.entries(results)) {
  console.log(
    `| ${name} | ${spread(runs.map((r) => r.rps))} | ${median(runs.map((r) => r.p99)).toFixed(2)} | ${spread(runs.map((r) => r.cpuPerRequest))} | ${runs.reduce((n, r) => n + r.errors, 0)} |`,
  );
}
const ratio = (a, b, field, label, target) => {
  if (results[a] === undefined || results[b] === undefined) return;
  const rs = results[a].map((r, i) => r[field] / results[b][i][field]);
  console.log(
    `| ${label} | ${median(rs).toFixed(2)}× (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)}) | ${target} |`,
  );
};
const S = 'keep-alive mTLS: createMtlsServer STRICT';
const P = 'haproxy sidecar pair (plaintext in, mTLS between)';
console.log('\n| ratio (per round, then median) | measured | target |');
console.log('| --- | --- | --- |');
ratio(S, 'keep-alive mTLS: raw https', 'rps', 'keep-alive req/s, STRICT / raw https', '≥ 0.97×');
ratio(
  S,
  'keep-alive mTLS: raw https',
  'cpuPerRequest',
  'server CPU per request, STRICT / raw https',
  '≤ 1.05×',
);
ratio(
  'full handshakes: createMtlsServer STRICT',
  'full handshakes: raw https',
  'rps',
  'full handshakes/s, STRICT / raw https',
  '≥ 0.9×',
);
ratio(
  'plaintext: createMtlsServer PERMISSIVE',
  'plaintext: http.createServer',
  'rps',
  'plaintext req/s, PERMISSIVE / http',
  '≥ 0.95×',
);
ratio('keep-alive mTLS: createMtlsServer PERMISSIVE', S, 'rps', 'mTLS req/s, PERMISSIVE / STRICT', '≥ 0.95×');
ratio(S, P, 'rps', 'req/s, STRICT / haproxy pair', '≥ 1.8×');
ratio(S, P, 'p99', 'p99, STRICT / haproxy pair', '≤ 0.65×');
ratio(S, P, 'cpuPerRequest', 'CPU per request, STRICT / haproxy pair (both proxies + app)', '≤ 0.4×');
console.log(
  `| memory per idle mTLS connection, STRICT / raw https | ${(memory.strict.heap / memory.raw.heap).toFixed(2)}× heap+external (${(memory.strict.heap / 1024).toFixed(1)} vs ${(memory.raw.heap / 1024).toFixed(1)} KiB); RSS ${(memory.strict.rss / 1024).toFixed(1)} vs ${(memory.raw.rss / 1024).toFixed(1)} KiB | ≤ 1.1× |`,
);

for (const child of children) child.kill();
await ca.close();
rmSync(dir, { recursive: true, force: true });
