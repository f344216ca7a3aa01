// Benchmark: gRPC through sidecarless/grpc against grpc-js's own static TLS, side by side, on the
// same certificates, service and grpc-js version:
//   createMtlsGrpcServer + createMtlsChannelCredentials
//   vs ServerCredentials.createSsl(root, [svid], true) + credentials.createSsl(root, key, chain)
// The baseline checks the peer the cheap way (OpenSSL against one CA list, a URI SAN comparison
// in checkServerIdentity); sidecarless verifies each chain against its trust domain's bundle and
// authorizes every call. Two measures on one kept-alive channel each: unary calls/s and
// server-streaming messages/s, `--concurrency` calls in flight. Rounds are interleaved (the side
// that runs first alternates), each ratio is taken within a round; medians and min–max printed.
// Both servers run in this process: the figures compare, they are not absolute.
//
//   npm run build && node bench/grpc.bench.mjs [--rounds 7] [--calls 4000] [--messages 20000] [--concurrency 16]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { createMtlsChannelCredentials, createMtlsGrpcServer } from '../dist/grpc/index.js';
import { createLocalCa } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    calls: { type: 'string', default: '4000' },
    messages: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '16' },
  },
});
const rounds = Number(values.rounds);
const calls = Number(values.calls);
const messages = Number(values.messages);
const concurrency = Number(values.concurrency);

const raw = { serialize: (b) => b, deserialize: (b) => b };
const def = (path, responseStream) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
});
const service = { echo: def('/bench.Echo/Echo', false), burst: def('/bench.Echo/Burst', true) };
const Client = grpc.makeGenericClientConstructor(service, 'Echo');
const payload = Buffer.alloc(64, 1);
const implementation = {
  echo: (call, done) => done(null, call.request),
  burst: (call) => {
    const n = call.request.readUInt32BE(0);
    for (let i = 0; i < n; i++) call.write(payload);
    call.end();
  },
};

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const serverSvid = ca.issue('/ns/bench/sa/server');
const clientSvid = ca.issue('/ns/bench/sa/client');
const root = Buffer.from(ca.bundle().toPem());
const pemKey = (svid) => Buffer.from(svid.privateKey.export({ format: 'pem', type: 'pkcs8' }));

async function ours() {
  const server = new grpc.Server();
  server.addService(service, implementation);
  const listener = createMtlsGrpcServer(
    {
      identity: ca.identity('/ns/bench/sa/server'),
      authorize: { '/bench.Echo/*': 'spiffe://cluster.local/ns/bench/sa/client' },
    },
    server,
  );
  await new Promise((r) => listener.listen(0, '127.0.0.1', r));
  const credentials = createMtlsChannelCredentials({
    identity: ca.identity('/ns/bench/sa/client'),
    expect: 'spiffe://cluster.local/ns/bench/sa/server',
  });
  const client = new Client(`127.0.0.1:${listener.address().port}`, credentials);
  return {
    client,
    close: () => {
      client.close();
      server.forceShutdown();
      listener.close();
    },
  };
}

async function baseline() {
  const server = new grpc.Server();
  server.addService(service, implementation);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(
        root,
        [{ cert_chain: Buffer.from(serverSvid.certChainPem()), private_key: pemKey(serverSvid) }],
        true,
      ),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  const expected = `URI:${serverSvid.id}`;
  const credentials = grpc.credentials.createSsl(
    root,
    pemKey(clientSvid),
    Buffer.from(clientSvid.certChainPem()),
    {
      checkServerIdentity: (_h, cert) =>
        cert.subjectaltname === expected ? undefined : new Error('wrong server'),
    },
  );
  const client = new Client(`127.0.0.1:${port}`, credentials);
  return {
    client,
    close: () => {
      client.close();
      server.forceShutdown();
    },
  };
}

const unaryOnce = (client) =>
  new Promise((resolve, reject) => client.echo(payload, (err) => (err ? reject(err) : resolve())));

async function unaryRate(client) {
  await unaryOnce(client); // connected before timing
  let left = calls;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) await unaryOnce(client);
    }),
  );
  return calls / (Number(process.hrtime.bigint() - start) / 1e9);
}

function burst(client, n) {
  return new Promise((resolve, reject) => {
    const req = Buffer.alloc(4);
    req.writeUInt32BE(n);
    const call = client.burst(req);
    call.on('data', () => {});
    call.on('error', reject);
    call.on('end', resolve);
  });
}

async function streamRate(client) {
  const per = Math.ceil(messages / concurrency);
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, () => burst(client, per)));
  return (per * concurrency) / (Number(process.hrtime.bigint() - start) / 1e9);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { unary: { ours: [], base: [], ratio: [] }, stream: { ours: [], base: [], ratio: [] } };
const sides = { ours: await ours(), base: await baseline() };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ['ours', 'base'] : ['base', 'ours'];
  for (const [measure, fn] of [
    ['unary', unaryRate],
    ['stream', streamRate],
  ]) {
    const got = {};
    for (const side of order) got[side] = await fn(sides[side].client);
    results[measure].ours.push(got.ours);
    results[measure].base.push(got.base);
    results[measure].ratio.push(got.ours / got.base);
  }
}
sides.ours.close();
sides.base.close();
await ca.close();

const range = (xs, digits) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
console.log(
  `Node ${process.version}, grpc-js ${createRequire(import.meta.url)('@grpc/grpc-js/package.json').version}, ${rounds} rounds, concurrency ${concurrency}`,
);
console.log('| measure | sidecarless/grpc (median, min–max) | grpc-js createSsl | ratio (median, min–max) |');
console.log('| --- | --- | --- | --- |');
console.log(
  `| unary calls/s | ${range(results.unary.ours, 0)} | ${range(results.unary.base, 0)} | **${range(results.unary.ratio, 3)}×** |`,
);
console.log(
  `| streamed messages/s | ${range(results.stream.ours, 0)} | ${range(results.stream.base, 0)} | **${range(results.stream.ratio, 3)}×** |`,
);
