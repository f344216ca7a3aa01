// Fastify behind in-process mTLS: Fastify serves on the server sidecarless makes (serverFactory).
//
//   npm run build && node examples/fastify-server.mjs
//
// STRICT mode: only callers presenting an SVID of the trusted CA get in; plaintext is reset. Each
// request is authorized by the map before Fastify's router or any hook sees it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { createLocalCa, createMtlsServer, getPeer } from 'sidecarless';

/** Starts the server on `port` (default: any free one) with an identity from `ca`. */
export async function main({ port = 0, ca = createLocalCa({ trustDomain: 'cluster.local' }) } = {}) {
  const identity = ca.identity('/ns/demo/sa/boards');
  const app = Fastify({
    serverFactory: (handler) =>
      createMtlsServer(
        {
          identity,
          mode: 'STRICT',
          authorize: { '/admin/*': 'spiffe://cluster.local/ns/ops/*', '*': 'spiffe://cluster.local/*' },
        },
        handler,
      ),
  });
  app.get('/hello', async (request) => ({ hello: getPeer(request.raw).id.toString() }));
  await app.listen({ port, host: '127.0.0.1' });

  const actual = app.server.address().port;
  return {
    port: actual,
    url: `https://127.0.0.1:${actual}`,
    ca,
    async close() {
      await app.close();
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
