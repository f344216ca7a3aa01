// The load generator of pair.bench.mjs, in its own process so its CPU is its own. One job over
// IPC, one answer:
//   { client: 'library' | 'raw', port, connection: 'keep-alive' | 'new' | 'resumed', connections,
//     durationMs, material }  ->  { requests, errors, seconds, rps, p50, p99, cpu }
// Closed loop: `connections` workers, each sending its next request when the last one ended.
// 'library' is createMtlsDispatcher (secure naming, its own SVID checks); 'raw' is an undici Pool
// sharing one SecureContext, verifying the chain only (what a hand-rolled mTLS client does).
import tls from 'node:tls';
import { Pool, request } from 'undici';
import { createMtlsDispatcher, PEER_ID_HEADER, staticIdentity, X509Bundle } from '../../dist/index.js';

function percentile(sorted, p) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function dispatcherFor(job) {
  const { material } = job;
  const origin = `https://127.0.0.1:${job.port}`;
  if (job.client === 'library') {
    return createMtlsDispatcher({
      identity: staticIdentity({
        certChain: material.clientCert,
        key: material.clientKey,
        bundles: X509Bundle.parse(material.trustDomain, material.ca),
      }),
      destinations: { [`127.0.0.1:${job.port}`]: { mode: 'mtls', expect: material.serverId } },
      connections: job.connections,
      resumption: job.connection === 'resumed',
    });
  }
  const secureContext = tls.createSecureContext({
    cert: material.clientCert,
    key: material.clientKey,
    ca: material.ca,
  });
  return new Pool(origin, {
    connections: job.connections,
    connect: {
      secureContext,
      // The certificate carries a URI SAN only: the raw client checks the chain, not the name.
      checkServerIdentity: () => undefined,
      maxCachedSessions: job.connection === 'resumed' ? 100 : 0,
    },
  });
}

async function runJob(job) {
  const dispatcher = dispatcherFor(job);
  const url = `https://127.0.0.1:${job.port}/shareditems`;
  const reset = job.connection !== 'keep-alive';
  const latencies = [];
  let requests = 0;
  let errors = 0;
  let lastError;
  const deadline = Date.now() + job.durationMs;
  const worker = async () => {
    while (Date.now() < deadline) {
      const t0 = process.hrtime.bigint();
      try {
        const res = await request(url, { dispatcher, reset });
        await res.body.dump();
        if (job.client === 'library' && res.headers[PEER_ID_HEADER] !== job.material.serverId) {
          throw new Error(`no peer header: ${JSON.stringify(res.headers)}`);
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        requests++;
      } catch (err) {
        errors++;
        lastError = `${err.code ?? ''} ${err.message}`;
      }
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: job.connections }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await dispatcher.close();
  latencies.sort((a, b) => a - b);
  return {
    requests,
    errors,
    lastError,
    seconds,
    rps: requests / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    cpuPerRequest: (cpu.user + cpu.system) / Math.max(1, requests),
  };
}

process.on('message', async (job) => {
  process.send(await runJob(job));
});
