// Benchmark: the sidecarless clients against the fastest plain mTLS clients Node offers, side by
// side, on the same certificates and the same server:
//   createMtlsDispatcher  vs  an undici Agent whose connect() reuses one prebuilt SecureContext
//   createMtlsAgent       vs  an https.Agent with that prebuilt SecureContext
// The baselines check the server the cheap way (OpenSSL's chain check plus a URI SAN comparison in
// checkServerIdentity); sidecarless runs its full X509-SVID verification per handshake.
//
// Two measures: keep-alive requests/s (connections reused), and full handshakes/s (every request
// on a new connection, `connection: close`; no TLS session is resumed on either side, the server
// issues no tickets). The server runs in a child process; rounds are interleaved (the side that
// runs first alternates) and each ratio is taken within a round; medians and min–max are printed.
//
//   npm run build && node bench/client.bench.mjs [--rounds 15] [--requests 2000] [--handshakes 200] [--concurrency 8]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import https from 'node:https';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const { values } = parseArgs({
  options: {
    server: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '15' },
    requests: { type: 'string', default: '2000' },
    handshakes: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
  },
});

if (values.server) {
  // The child: an mTLS HTTPS server with the material the parent sends, answering "ok".
  process.once('message', ({ key, cert, ca }) => {
    const options = { key, cert, ca, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 };
    // No tickets: every new connection is a full handshake, for both clients alike.
    const full = https.createServer(
      { ...options, secureOptions: tls.constants?.SSL_OP_NO_TICKET ?? 0x4000 },
      (_req, res) => res.end('ok'),
    );
    // Tickets, for the resumption measure.
    const resuming = https.createServer(options, (_req, res) => res.end('ok'));
    full.listen(0, '127.0.0.1', () =>
      resuming.listen(0, '127.0.0.1', () =>
        process.send?.({ port: full.address().port, resumingPort: resuming.address().port }),
      ),
    );
  });
} else {
  await main();
}

async function main() {
  const { createLocalCa, createMtlsAgent, createMtlsDispatcher, staticIdentity } = await import(
    '../dist/index.js'
  );
  const ROUNDS = Number(values.rounds);
  const REQUESTS = Number(values.requests);
  const HANDSHAKES = Number(values.handshakes);
  const CONCURRENCY = Number(values.concurrency);
  const SERVER_ID = 'spiffe://cluster.local/ns/demo/sa/server';

  const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
  const serverSvid = ca.issue('/ns/demo/sa/server', { ttl: 24 * 3_600_000 });
  const clientSvid = ca.issue('/ns/demo/sa/client', { ttl: 24 * 3_600_000 });
  const pem = (svid) => svid.privateKey.export({ format: 'pem', type: 'pkcs8' });
  const child = fork(new URL(import.meta.url).pathname, ['--server'], { stdio: 'inherit' });
  child.send({ key: pem(serverSvid), cert: serverSvid.certChainPem(), ca: ca.bundle().toPem() });
  const [{ port, resumingPort }] = await once(child, 'message');
  const origin = `https://127.0.0.1:${port}`;

  // The baselines' shared material: one SecureContext, built once.
  const context = tls.createSecureContext({
    key: pem(clientSvid),
    cert: clientSvid.certChainPem(),
    ca: ca.bundle().toPem(),
  });
  const checkServerIdentity = (_host, cert) =>
    cert.subjectaltname === `URI:${SERVER_ID}` ? undefined : new Error('unexpected server identity');
  const identity = staticIdentity({ svid: clientSvid, bundles: ca.bundles() });
  const destinations = { [`127.0.0.1:${port}`]: { expect: SERVER_ID } };

  const clients = {
    dispatcher: {
      ours: () => createMtlsDispatcher({ identity, destinations }),
      base: () =>
        new Agent({
          connect(opts, cb) {
            const socket = tls.connect({
              host: opts.hostname,
              port: Number(opts.port),
              secureContext: context,
              checkServerIdentity,
            });
            socket.setNoDelay(true);
            socket.once('secureConnect', () => {
              socket.off('error', cb);
              cb(null, socket);
            });
            socket.once('error', cb);
          },
        }),
      send: async (dispatcher, close) => {
        const res = await request(`${origin}/`, {
          dispatcher,
          headers: close ? { connection: 'close' } : {},
        });
        await res.body.text();
      },
      close: (dispatcher) => dispatcher.close(),
    },
    agent: {
      ours: () => createMtlsAgent({ identity, destinations }),
      base: () =>
        new https.Agent({
          keepAlive: true,
          secureContext: context,
          checkServerIdentity,
          maxCachedSessions: 0,
        }),
      send: (agent, close) =>
        new Promise((resolve, reject) => {
          const req = https.request(
            `${origin}/`,
            { agent, headers: close ? { connection: 'close' } : {} },
            (res) => {
              res.resume();
              res.on('end', resolve);
            },
          );
          req.on('error', reject);
          req.end();
        }),
      close: (agent) => agent.destroy(),
    },
  };

  // `total` requests, `CONCURRENCY` in flight; returns requests per second (wall clock) and the
  // client process's CPU time per request in µs (less exposed to other load on a shared machine).
  async function run(kind, client, total, close) {
    let next = 0;
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    const worker = async () => {
      while (next < total) {
        next++;
        await kind.send(client, close);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    return { rate: total / seconds, cpu: (used.user + used.system) / total };
  }

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const span = (xs, digits) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

  console.log(
    `node ${process.version}, OpenSSL ${process.versions.openssl}, ${ROUNDS} rounds, ${REQUESTS} keep-alive requests / ${HANDSHAKES} handshakes per side per round, concurrency ${CONCURRENCY}`,
  );
  const rows = [];
  for (const [name, kind] of Object.entries(clients)) {
    for (const [measure, total, close] of [
      ['keep-alive req/s', REQUESTS, false],
      ['full handshakes/s', HANDSHAKES, true],
    ]) {
      const ours = [];
      const base = [];
      const ratio = [];
      const oursCpu = [];
      const baseCpu = [];
      const cpuRatio = [];
      // A warm-up round for each side, not counted.
      for (const side of ['ours', 'base']) {
        const c = kind[side]();
        await run(kind, c, Math.min(total, 200), close);
        await kind.close(c);
      }
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? ['ours', 'base'] : ['base', 'ours'];
        const got = {};
        for (const side of order) {
          const c = kind[side]();
          got[side] = await run(kind, c, total, close);
          await kind.close(c);
        }
        ours.push(got.ours.rate);
        base.push(got.base.rate);
        ratio.push(got.ours.rate / got.base.rate);
        oursCpu.push(got.ours.cpu);
        baseCpu.push(got.base.cpu);
        cpuRatio.push(got.ours.cpu / got.base.cpu);
      }
      rows.push(
        `| ${name === 'dispatcher' ? 'createMtlsDispatcher vs undici Agent' : 'createMtlsAgent vs https.Agent'} | ${measure} | ${median(ours).toFixed(0)} (${span(ours, 0)}) | ${median(base).toFixed(0)} (${span(base, 0)}) | **${median(ratio).toFixed(3)}×** (${span(ratio, 3)}) | ${median(oursCpu).toFixed(0)} / ${median(baseCpu).toFixed(0)} | ${median(cpuRatio).toFixed(3)}× (${span(cpuRatio, 3)}) |`,
      );
    }
  }
  // Stretch: opt-in resumption. createMtlsDispatcher({ resumption: true }) against a server that
  // issues tickets, against the same dispatcher without resumption; both `connection: close`.
  {
    const resumingOrigin = `https://127.0.0.1:${resumingPort}`;
    const resumingDestinations = { [`127.0.0.1:${resumingPort}`]: { expect: SERVER_ID } };
    const kind = {
      send: async (dispatcher) => {
        const res = await request(`${resumingOrigin}/`, { dispatcher, headers: { connection: 'close' } });
        await res.body.text();
      },
      close: (dispatcher) => dispatcher.close(),
    };
    const make = {
      ours: () => createMtlsDispatcher({ identity, destinations: resumingDestinations, resumption: true }),
      base: () => createMtlsDispatcher({ identity, destinations: resumingDestinations }),
    };
    const ratio = [];
    const resumed = [];
    const full = [];
    for (let r = 0; r < ROUNDS; r++) {
      const got = {};
      for (const side of r % 2 === 0 ? ['ours', 'base'] : ['base', 'ours']) {
        const c = make[side]();
        got[side] = await run(kind, c, HANDSHAKES, true);
        await kind.close(c);
      }
      resumed.push(got.ours.rate);
      full.push(got.base.rate);
      ratio.push(got.ours.rate / got.base.rate);
    }
    rows.push(
      `| createMtlsDispatcher resumption: true vs false (server with tickets) | handshakes/s | ${median(resumed).toFixed(0)} (${span(resumed, 0)}) | ${median(full).toFixed(0)} (${span(full, 0)}) | **${median(ratio).toFixed(3)}×** (${span(ratio, 3)}) | — | — |`,
    );
  }
  console.log(
    '\n| clients | measure | sidecarless (median, min–max) | baseline | ratio (median, min–max) | client CPU µs/request, ours / baseline | CPU ratio (median, min–max) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
  child.kill();
  await ca.close();
  await identity.close();
}
