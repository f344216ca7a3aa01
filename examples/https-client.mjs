// node:https (and the libraries built on it: axios, got) over in-process mTLS.
//
//   npm run build && node examples/https-client.mjs
//
// createMtlsAgent is an https.Agent that presents the workload's SVID and authenticates the server
// by its SPIFFE ID; with protocol 'http:' it is an http.Agent for code that calls http:// URLs,
// whose connections are mTLS all the same (as with a sidecar). getPeer(res) names the server.
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { createMtlsAgent, createMtlsServer, getPeer } from 'sidecarless';
import { createTestCa } from 'sidecarless/testing';

const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';

function get(module, url, agent) {
  return new Promise((resolve, reject) => {
    module
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode, body, peer: getPeer(res).id?.toString() }));
      })
      .on('error', reject);
  });
}

/** Starts `boards`, calls it through both agents, and returns what came back. */
export async function main({ ca = createTestCa(), log = console.log } = {}) {
  const serverIdentity = ca.identity('/ns/demo/sa/boards');
  const server = createMtlsServer(
    { identity: serverIdentity, authorize: { '*': 'spiffe://cluster.local/ns/demo/sa/app-ui' } },
    (req, res) => res.end(`hello ${getPeer(req).id}`),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();

  const identity = ca.identity('/ns/demo/sa/app-ui');
  const destinations = { [`127.0.0.1:${port}`]: { expect: BOARDS } };
  const httpsAgent = createMtlsAgent({ identity, destinations });
  const httpAgent = createMtlsAgent({ identity, destinations, protocol: 'http:' });

  const secure = await get(https, `https://127.0.0.1:${port}/a`, httpsAgent);
  log(`https:// -> ${secure.status} "${secure.body}" from ${secure.peer}`);
  const plainUrl = await get(http, `http://127.0.0.1:${port}/b`, httpAgent);
  log(`http://  -> ${plainUrl.status} "${plainUrl.body}" from ${plainUrl.peer} (mTLS on the wire)`);

  return {
    responses: [secure, plainUrl],
    async close() {
      await httpsAgent.close();
      await httpAgent.close();
      await new Promise((resolve) => server.close(resolve));
      await identity.close();
      await serverIdentity.close();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await main();
  await result.close();
}
