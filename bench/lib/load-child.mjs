// A load client in its own process. Receives one job over IPC and answers with its result:
//   { port, tls, cert?, key?, ca?, keepAlive, connections, requests, timeoutMs }
//   -> { requests, errors, seconds, rps, p50, p99 }   (latencies in ms)
// Keep-alive: `connections` workers, each on its own agent with one socket, request after
// request. Without keep-alive, every request opens a new connection: a full handshake each.
// The client's TLS context is built once (a context per connection costs 40% on Node 20).
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

function percentile(sorted, p) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function runJob(job) {
  const secureContext = job.tls
    ? tls.createSecureContext({ cert: job.cert, key: job.key, ca: job.ca })
    : undefined;
  const module = job.tls ? https : http;
  const latencies = [];
  let done = 0;
  let started = 0;
  let errors = 0;
  const deadline = Date.now() + job.timeoutMs;
  // One function for every request: on Node 24, a new checkServerIdentity function per request
  // defeats keep-alive reuse (measured: a new connection for every request).
  const checkServerIdentity = () => undefined;
  const tlsOptions = job.tls ? { secureContext, checkServerIdentity, maxCachedSessions: 0 } : {};
  const agentFor = () =>
    job.keepAlive ? new module.Agent({ keepAlive: true, maxSockets: 1, ...tlsOptions }) : false;
  const one = (agent) =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = module.request(
        {
          host: '127.0.0.1',
          port: job.port,
          path: '/shareditems',
          agent,
          ...(agent === false ? tlsOptions : {}),
          headers: job.keepAlive ? {} : { connection: 'close' },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            resolve(true);
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve(false);
      });
      req.end();
    });
  const worker = async () => {
    const agent = agentFor();
    while (started < job.requests && Date.now() < deadline) {
      started++;
      if (await one(agent)) done++;
    }
    if (agent) agent.destroy();
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: job.connections }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    requests: done,
    errors,
    seconds,
    rps: done / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

process.on('message', async (job) => {
  process.send(await runJob(job));
});
