// Benchmark: time from a rotation on the (fake) Workload API to the new SVID being presented by
// the next TLS handshake of a running createMtlsServer. A client opens new connections back to
// back and reads the server's leaf serial; the time to the first handshake that shows the new
// serial includes that handshake.
//
//   npm run build && node bench/rotation.bench.mjs [--rotations 30]
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { createLocalCa, createMtlsServer, workloadApiIdentity } from '../dist/index.js';
import { createFakeWorkloadApi } from '../dist/testing/index.js';

const { values } = parseArgs({ options: { rotations: { type: 'string', default: '30' } } });
const ROTATIONS = Number(values.rotations);

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const api = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/boards'] });
const identity = workloadApiIdentity({ address: api.address });
await identity.ready();
const server = createMtlsServer({ identity }, (_req, res) => res.end('ok'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const client = ca.issue('/ns/demo/sa/app-ui', { ttl: 3_600_000 });
const context = tls.createSecureContext({
  cert: client.certChainPem(),
  key: client.privateKey.export({ format: 'pem', type: 'pkcs8' }),
  ca: ca.bundle().toPem(),
});

function serverSerial() {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      secureContext: context,
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

const times = [];
const handshakes = [];
for (let i = 0; i < ROTATIONS; i++) {
  // Idle between rotations, as in production: nothing is mid-flight when the agent rotates.
  await new Promise((r) => setTimeout(r, 50));
  const h0 = performance.now();
  await serverSerial();
  handshakes.push(performance.now() - h0);
  const t0 = performance.now();
  const [svid] = api.rotate();
  const wanted = svid.leaf.serialNumber;
  for (let attempt = 0; attempt < 1000; attempt++) {
    if ((await serverSerial()) === wanted) break;
  }
  times.push(performance.now() - t0);
}
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const pct = (xs, p) => sorted(xs)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
console.log(`node ${process.version}; ${ROTATIONS} rotations`);
console.log(
  `rotation on the fake -> next handshake presents the new SVID: median ${pct(times, 50).toFixed(1)} ms, p95 ${pct(times, 95).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`,
);
console.log(`(one full handshake alone, for scale: median ${pct(handshakes, 50).toFixed(1)} ms)`);
server.close();
await identity.close();
await api.close();
await ca.close();
