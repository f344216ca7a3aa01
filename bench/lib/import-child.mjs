// One process of import.bench.mjs: imports what its variant needs, starts an mTLS server, serves
// one request from node:https in the same process (the same client for every variant), and
// prints what that cost. Started with: variant, and a JSON file of PEM material.
//   https       node:https with requestCert: the bare Node mTLS server
//   strict      sidecarless's main entry, createMtlsServer in mode STRICT
//   dispatcher  as strict, and the request goes through createMtlsDispatcher (loads undici)
//   before      as strict, with what the package loaded at import before it deferred it: undici,
//               the ASN.1 library (@peculiar/asn1-x509), and node:http, node:http2, node:tls as
//               ES modules (on Node 24 node:http's namespace loads Node's bundled undici)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [variant, materialFile] = process.argv.slice(2);
const material = JSON.parse(readFileSync(materialFile, 'utf8'));
const handler = (_req, res) => res.end('ok');

const started = performance.now();
const https = await import('node:https');
let server;
let sidecarless;
if (variant === 'https') {
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
} else {
  // What the import cost before undici, the ASN.1 library and node:http/http2/tls were loaded
  // on first use or as CommonJS exports: all of them with the package.
  if (variant === 'before') {
    const require = createRequire(import.meta.url);
    require('undici');
    require('@peculiar/asn1-x509');
    await import('node:http');
    await import('node:http2');
    await import('node:tls');
  }
  sidecarless = await import('../../dist/index.js');
}
const imported = performance.now();
if (sidecarless !== undefined) {
  const { createMtlsServer, staticIdentity, X509Bundle } = sidecarless;
  const identity = staticIdentity({
    certChain: material.serverCert,
    key: material.serverKey,
    bundles: X509Bundle.parse(material.trustDomain, material.ca),
  });
  server = createMtlsServer({ identity, mode: 'STRICT' }, handler);
}
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();

let body;
if (variant === 'dispatcher') {
  const { createMtlsDispatcher, staticIdentity, X509Bundle } = sidecarless;
  const dispatcher = createMtlsDispatcher({
    identity: staticIdentity({
      certChain: material.clientCert,
      key: material.clientKey,
      bundles: X509Bundle.parse(material.trustDomain, material.ca),
    }),
    destinations: { '*': { expect: material.serverId } },
  });
  const res = await dispatcher.request({ origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET' });
  body = await res.body.text();
  await dispatcher.close();
} else {
  body = await new Promise((resolve, reject) => {
    https
      .get(
        {
          host: '127.0.0.1',
          port,
          ca: material.ca,
          cert: material.clientCert,
          key: material.clientKey,
          checkServerIdentity: () => undefined,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve(text));
        },
      )
      .on('error', reject);
  });
}
const served = performance.now();
if (body !== 'ok') throw new Error(`${variant}: unexpected answer ${body}`);
await new Promise((resolve) => server.close(resolve));
const memory = process.memoryUsage();
// And once garbage is collected (with --expose-gc): what the process keeps.
globalThis.gc?.();
await new Promise((resolve) => setTimeout(resolve, 50));
const kept = process.memoryUsage();
console.log(
  JSON.stringify({
    importMs: imported - started,
    // From the process's start (performance.timeOrigin): Node's own boot is the same for all.
    firstResponseMs: served,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    rssAfterGc: kept.rss,
    heapAfterGc: kept.heapUsed + kept.external,
  }),
);
