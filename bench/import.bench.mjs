// Benchmark: what importing sidecarless costs a server-only app, against the bare Node mTLS
// server (node:https with requestCert), issue 14 "a lighter import".
//
//   npm run build && node bench/import.bench.mjs [--runs 10]
//
// Each run is a new process (bench/lib/import-child.mjs) that imports what it needs, starts its
// server, serves one mTLS request and reports: the import time, the time from the process's
// start to that first response, and its RSS then. Variants are interleaved, `--runs` processes
// each; medians and min–max are reported. The `dispatcher` variant also makes the request
// through createMtlsDispatcher: what a workload that calls other services pays (undici).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLocalCa } from '../dist/index.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);
const VARIANTS = ['https', 'strict', 'dispatcher', 'before'];
const child = new URL('./lib/import-child.mjs', import.meta.url).pathname;

const ca = createLocalCa({ trustDomain: 'cluster.local', ttl: 24 * 3_600_000 });
const pem = (svid) => ({
  cert: svid.certChainPem(),
  key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
});
const server = pem(ca.issue('/ns/demo/sa/boards'));
const client = pem(ca.issue('/ns/demo/sa/app-ui'));
const dir = mkdtempSync(join(tmpdir(), 'sidecarless-import-bench-'));
const materialFile = join(dir, 'material.json');
writeFileSync(
  materialFile,
  JSON.stringify({
    trustDomain: 'cluster.local',
    serverId: 'spiffe://cluster.local/ns/demo/sa/boards',
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    ca: ca.bundle().toPem(),
  }),
);
await ca.close();

function run(variant) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child, variant, materialFile], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${variant}: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

const results = Object.fromEntries(VARIANTS.map((v) => [v, []]));
for (let i = 0; i < RUNS; i++) {
  // One process at a time, the order rotating each round: the machine's noise hits all alike.
  for (let k = 0; k < VARIANTS.length; k++) {
    const variant = VARIANTS[(i + k) % VARIANTS.length];
    results[variant].push(await run(variant));
  }
}
rmSync(dir, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stat = (variant, field, scale = 1, digits = 1) => {
  const xs = results[variant].map((r) => r[field] / scale);
  return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
};
const MB = 1024 * 1024;
const base = median(results.https.map((r) => r.rss)) / MB;
console.log(`node ${process.version}, ${RUNS} processes per variant, medians (min–max)\n`);
console.log('| variant | import ms | start → first response ms | RSS MB | RSS vs https |');
console.log('| --- | --- | --- | --- | --- |');
const NAMES = {
  https: 'node:https, requestCert',
  strict: 'sidecarless, STRICT server',
  dispatcher: 'sidecarless, STRICT server + dispatcher',
  before: 'before: STRICT server, undici, ASN.1 library, node:http/http2/tls ESM at import',
};
for (const variant of VARIANTS) {
  const rss = median(results[variant].map((r) => r.rss)) / MB;
  console.log(
    `| ${NAMES[variant]} | ${stat(variant, 'importMs')} | ${stat(variant, 'firstResponseMs')} | ${stat(variant, 'rss', MB)} | ${variant === 'https' ? '—' : `+${(rss - base).toFixed(1)} MB`} |`,
  );
}
