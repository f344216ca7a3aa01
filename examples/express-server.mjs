// Express behind in-process mTLS: what an Istio sidecar did, without the sidecar.
//
//   npm run build && node examples/express-server.mjs
//
// STRICT mode: only callers presenting an SVID of the trusted CA get in; plaintext is reset. Each
// request is authorized by the map before Express or any middleware sees it.
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';

/** Starts the server on `port` (default: any free one) with an identity from `ca`. */
export async function main({ port = 0, ca = createLocalCa({ trustDomain: 'cluster.local' }) } = {}) {
  const app = express();
  app.get('/hello', (req, res) => {
    res.json({ hello: getPeer(req).id.toString() });
  });

  const identity = ca.identity('/ns/demo/sa/boards');
  const server = createMtlsServer(
    {
      identity,
      mode: 'STRICT',
      authorize: { '/admin/*': 'spiffe://cluster.local/ns/ops/*', '*': 'spiffe://cluster.local/*' },
    },
    app,
  );
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');

  const actual = server.address().port;
  return {
    port: actual,
    url: `https://127.0.0.1:${actual}`,
    ca,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await identity.close();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { port, ca } = await main({ port: Number(process.env.PORT ?? 0) });
  // A client SVID for curl. The server's certificate names a SPIFFE ID, not a host, so curl
  // cannot check it (-k); sidecarless clients do.
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-'));
  const client = ca.issue('/ns/demo/sa/app-ui');
  writeFileSync(join(dir, 'client.pem'), client.certChainPem());
  writeFileSync(join(dir, 'client.key'), client.privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  console.log(`listening on port ${port} (STRICT mTLS)`);
  console.log(`  curl -k --cert ${dir}/client.pem --key ${dir}/client.key https://127.0.0.1:${port}/hello`);
  console.log(`  curl http://127.0.0.1:${port}/hello    # plaintext: connection reset`);
}
