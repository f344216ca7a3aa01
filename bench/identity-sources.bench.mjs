// Measures the identity sources (prints, asserts nothing):
//
//   1. rotation latency: from fake.rotate() to the new SVID being current() in a
//      workloadApiIdentity; and from a file swap to the new SVID being current() in a
//      fileIdentity (Kubernetes ..data symlink swap, and Istio-style renames of three files);
//   2. idle cost: CPU used by an idle source over --seconds (default 60), each in its own process
//      next to an idle baseline process, with what stays active (fs watchers, sockets, timers)
//      and how many reads/calls happened while idle (0 means no polling).
//
//   npm run build && node bench/identity-sources.bench.mjs [--rotations 50] [--seconds 60]
//
// SIDECARLESS_DIST=<dir> points at another build of the package (default: ../dist/).
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const dist = process.env.SIDECARLESS_DIST
  ? pathToFileURL(`${resolve(process.env.SIDECARLESS_DIST)}/`)
  : new URL('../dist/', import.meta.url);
const { createLocalCa, fileIdentity, workloadApiIdentity } = await import(new URL('index.js', dist).href);
const { createFakeWorkloadApi } = await import(new URL('testing/index.js', dist).href);

const { values } = parseArgs({
  options: {
    rotations: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '60' },
    role: { type: 'string' },
    address: { type: 'string' },
  },
});
const ROTATIONS = Number(values.rotations);
const SECONDS = Number(values.seconds);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const next = (source) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no update within 10 s')), 10_000);
    const stop = source.subscribe((identity) => {
      clearTimeout(timer);
      stop();
      resolve(identity);
    });
  });

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const fmt = (v) => v.toFixed(2);
  return `median ${fmt(at(0.5))} ms, p95 ${fmt(at(0.95))} ms, max ${fmt(sorted[sorted.length - 1])} ms (n=${sorted.length})`;
}

function svidFiles(svid, bundle) {
  return {
    cert: svid.certChainPem(),
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    bundle: bundle.toPem(),
  };
}

async function workloadApiLatency() {
  const fake = await createFakeWorkloadApi({ svids: ['/ns/demo/sa/boards'] });
  const source = workloadApiIdentity({ address: fake.address });
  await source.ready({ timeout: 10_000 });
  const total = [];
  const afterIssue = [];
  for (let i = 0; i < ROTATIONS + 5; i++) {
    const pending = next(source);
    const t0 = performance.now();
    const [svid] = fake.rotate(); // issues (key generation + signature), then pushes
    const t1 = performance.now();
    const identity = await pending;
    const t2 = performance.now();
    if (identity.svid.leaf.serialNumber !== svid.leaf.serialNumber) throw new Error('wrong SVID');
    if (source.current() !== identity) throw new Error('not current');
    if (i >= 5) {
      total.push(t2 - t0);
      afterIssue.push(t2 - t1);
    }
  }
  await source.close();
  await fake.close();
  return { total, afterIssue };
}

async function fileLatency() {
  const ca = createLocalCa({ trustDomain: 'cluster.local' });
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-'));
  const k8s = join(dir, 'k8s');
  const istio = join(dir, 'istio');
  mkdirSync(k8s);
  mkdirSync(istio);
  // Kubernetes AtomicWriter layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>
  let version = 0;
  const stage = (svid) => {
    const stamp = `..2026_11_23_10_00_00.${String(version++).padStart(3, '0')}`;
    mkdirSync(join(k8s, stamp));
    const f = svidFiles(svid, ca.bundle());
    writeFileSync(join(k8s, stamp, 'tls.crt'), f.cert);
    writeFileSync(join(k8s, stamp, 'tls.key'), f.key);
    writeFileSync(join(k8s, stamp, 'ca.crt'), f.bundle);
    symlinkSync(stamp, join(k8s, '..data_tmp'));
    return stamp;
  };
  let current = stage(ca.issue('/ns/demo/sa/boards'));
  renameSync(join(k8s, '..data_tmp'), join(k8s, '..data'));
  for (const name of ['tls.crt', 'tls.key', 'ca.crt']) symlinkSync(join('..data', name), join(k8s, name));
  const writeIstio = (svid, suffix) => {
    const f = svidFiles(svid, ca.bundle());
    writeFileSync(join(istio, `cert-chain.pem${suffix}`), f.cert);
    writeFileSync(join(istio, `key.pem${suffix}`), f.key);
    writeFileSync(join(istio, `root-cert.pem${suffix}`), f.bundle);
  };
  writeIstio(ca.issue('/ns/demo/sa/boards'), '');

  const results = {};
  for (const [name, options] of [
    ['k8s', { preset: 'cert-manager', dir: k8s }],
    ['istio', { preset: 'istio', dir: istio }],
  ]) {
    const source = fileIdentity(options);
    await source.ready({ timeout: 10_000 });
    const samples = [];
    for (let i = 0; i < ROTATIONS + 5; i++) {
      const svid = ca.issue('/ns/demo/sa/boards');
      let swap;
      if (name === 'k8s') {
        const stamp = stage(svid); // written beforehand, as kubelet does
        swap = () => {
          renameSync(join(k8s, '..data_tmp'), join(k8s, '..data')); // the atomic swap
          rmSync(join(k8s, current), { recursive: true });
          current = stamp;
        };
      } else {
        writeIstio(svid, '.tmp');
        swap = () => {
          for (const f of ['root-cert.pem', 'key.pem', 'cert-chain.pem'])
            renameSync(join(istio, `${f}.tmp`), join(istio, f));
        };
      }
      await sleep(20); // let the staging events settle, so only the swap is measured
      const pending = next(source);
      const t0 = performance.now();
      swap();
      const identity = await pending;
      const t1 = performance.now();
      if (identity.svid.leaf.serialNumber !== svid.leaf.serialNumber) throw new Error(`${name}: wrong SVID`);
      if (i >= 5) samples.push(t1 - t0);
    }
    await source.close();
    results[name] = samples;
  }
  await ca.close();
  rmSync(dir, { recursive: true, force: true });
  return results;
}

// --- idle cost: each role runs in its own process and reports its own process.cpuUsage() ---

function summarizeResources() {
  const counts = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return Object.entries(counts)
    .map(([type, n]) => `${type}×${n}`)
    .join(' ');
}

async function idleRole(role, address) {
  let source;
  let activity = () => 0;
  let dir;
  if (role === 'workload-api') {
    source = workloadApiIdentity({ address });
    let events = 0;
    source.on('update', () => events++);
    source.on('retry', () => events++);
    activity = () => events;
    await source.ready({ timeout: 10_000 });
  } else if (role === 'file') {
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-'));
    const f = svidFiles(ca.issue('/ns/demo/sa/boards', { ttl: 3_600_000 }), ca.bundle());
    writeFileSync(join(dir, 'cert-chain.pem'), f.cert);
    writeFileSync(join(dir, 'key.pem'), f.key);
    writeFileSync(join(dir, 'root-cert.pem'), f.bundle);
    await ca.close();
    source = fileIdentity({ preset: 'istio', dir });
    await source.ready({ timeout: 10_000 });
    activity = () => source.loads; // internal counter: reads of the files
  }
  await sleep(2_000); // settle: JIT, first GC
  const before = process.cpuUsage();
  const activityBefore = activity();
  const resources = summarizeResources();
  const t0 = performance.now();
  await sleep(SECONDS * 1_000);
  const elapsed = performance.now() - t0;
  const used = process.cpuUsage(before);
  const report = {
    role,
    elapsedMs: Math.round(elapsed),
    cpuMs: (used.user + used.system) / 1_000,
    activity: activity() - activityBefore,
    watchMode: source?.watchMode,
    resources,
  };
  await source?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  return report;
}

function spawnRole(role, extra = []) {
  const child = fork(
    fileURLToPath(import.meta.url),
    ['--role', role, '--seconds', String(SECONDS), ...extra],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  return new Promise((resolve, reject) => {
    child.on('message', (message) => resolve({ child, message }));
    child.on('exit', (code) => code !== 0 && reject(new Error(`${role} exited with ${code}`)));
  });
}

if (values.role === 'fake') {
  const fake = await createFakeWorkloadApi({ svids: ['/ns/demo/sa/boards'] });
  process.send({ address: fake.address });
  process.on('disconnect', () => void fake.close());
} else if (values.role !== undefined) {
  process.send(await idleRole(values.role, values.address));
  process.disconnect();
} else {
  console.log(`node ${process.version}, ${ROTATIONS} rotations per scenario, idle ${SECONDS} s\n`);
  const wl = await workloadApiLatency();
  console.log('rotation -> current():');
  console.log(`  workloadApiIdentity, fake.rotate() -> current():  ${stats(wl.total)}`);
  console.log(
    `    of which after the fake issued the SVID (push, decode, validate, publish):  ${stats(wl.afterIssue)}`,
  );
  const files = await fileLatency();
  console.log(`  fileIdentity, ..data symlink swap -> current():   ${stats(files.k8s)}`);
  console.log(`  fileIdentity, 3 renames (Istio) -> current():     ${stats(files.istio)}`);

  console.log(`\nidle cost over ${SECONDS} s (each in its own process; fake agent in another):`);
  const { child: fakeChild, message } = await spawnRole('fake');
  const reports = await Promise.all([
    spawnRole('baseline'),
    spawnRole('workload-api', ['--address', message.address]),
    spawnRole('file'),
  ]);
  fakeChild.disconnect();
  for (const { message: r } of reports) {
    const perMinute = (r.cpuMs * 60_000) / r.elapsedMs;
    console.log(
      `  ${r.role.padEnd(13)} CPU ${r.cpuMs.toFixed(1)} ms (${perMinute.toFixed(1)} ms/min, ${((100 * r.cpuMs) / r.elapsedMs).toFixed(3)}% of a core); ` +
        `activity while idle: ${r.activity}${r.watchMode ? ` (${r.watchMode})` : ''}; active: ${r.resources}`,
    );
  }
}
