// One benchmark server in its own process, so its CPU and memory are its own. Started by
// server.bench.mjs with: variant, and a JSON file of PEM material. Answers IPC messages:
//   'usage'  -> { cpu: µs user+system, rss, heapUsed }   'gc' -> runs a GC first (with --expose-gc)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createMtlsServer, staticIdentity, X509Bundle } from '../../dist/index.js';

const [variant, materialFile] = process.argv.slice(2);
const material = JSON.parse(readFileSync(materialFile, 'utf8'));
const body = Buffer.from('{"items":[1,2,3]}');
const handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
};

function identity() {
  return staticIdentity({
    certChain: material.serverCert,
    key: material.serverKey,
    bundles: X509Bundle.parse(material.trustDomain, material.ca),
  });
}

let server;
switch (variant) {
  case 'raw-https':
    // What users run today: Node's own mTLS, same certificates, no SPIFFE checks at all. Node
    // issues session tickets by default: resumption whatever the certificate later turns out to be.
    server = https.createServer(
      {
        key: material.serverKey,
        cert: material.serverCert,
        ca: material.ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      handler,
    );
    break;
  case 'plain-http':
  case 'app':
    server = http.createServer(handler);
    break;
  case 'strict':
    server = createMtlsServer({ identity: identity(), mode: 'STRICT' }, handler);
    break;
  case 'strict-resumption':
    server = createMtlsServer({ identity: identity(), mode: 'STRICT', resumption: true }, handler);
    break;
  case 'permissive':
    server = createMtlsServer({ identity: identity(), mode: 'PERMISSIVE' }, handler);
    break;
  default:
    throw new Error(`unknown variant ${variant}`);
}
server.keepAliveTimeout = 60_000;
// Handshakes and how many of them resumed a session, for pair.bench.mjs.
const handshakes = { full: 0, resumed: 0 };
const count = (resumed) => {
  if (resumed) handshakes.resumed++;
  else handshakes.full++;
};
// The library's http1 server hands TLS sockets to `connection` listeners, after its checks; its
// `peer` event says whether the session was resumed. Raw https: `secureConnection`.
if (variant.startsWith('strict') || variant === 'permissive')
  server.on('peer', (event) => event.tls && count(event.resumed));
else server.on('secureConnection', (socket) => count(socket.isSessionReused()));
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (message === 'exit') process.exit(0); // lets --cpu-prof write its profile
  if (message === 'gc' && global.gc) global.gc();
  if (message === 'usage' || message === 'gc') {
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    process.send({
      cpu: cpu.user + cpu.system,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      external: memory.external,
      handshakes: { ...handshakes },
    });
  }
});
