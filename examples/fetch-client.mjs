// fetch() over in-process mTLS: what an Istio sidecar did for outbound calls, without the sidecar.
//
//   npm run build && node examples/fetch-client.mjs
//
// The app keeps calling fetch('http://...'); the dispatcher presents the workload's SVID, checks
// that the server is the SPIFFE ID the destination expects (secure naming), and puts mTLS on the
// wire. A test CA plays istiod; a sidecarless server plays `boards`.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createMtlsDispatcher, createMtlsServer, getPeer, PEER_ID_HEADER } from 'sidecarless';
import { createTestCa } from 'sidecarless/testing';

const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';

/** Starts `boards`, calls it with fetch over mTLS, and returns what came back. */
export async function main({ ca = createTestCa(), log = console.log } = {}) {
  // The server side: boards, accepting app-ui only.
  const serverIdentity = ca.identity('/ns/demo/sa/boards');
  const server = createMtlsServer(
    { identity: serverIdentity, authorize: { '*': 'spiffe://cluster.local/ns/demo/sa/app-ui' } },
    (req, res) =>
      res.end(JSON.stringify({ items: ['backlog', 'doing', 'done'], caller: getPeer(req).id.toString() })),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();

  // The client side: app-ui, which expects boards at that address and nothing else.
  const identity = ca.identity('/ns/demo/sa/app-ui');
  const dispatcher = createMtlsDispatcher({
    identity,
    destinations: {
      [`127.0.0.1:${port}`]: { expect: BOARDS },
      '*': { mode: 'plaintext' },
    },
  });
  dispatcher.on('fallback', (event) => log(`plaintext fallback to ${event.address}: ${event.reason}`));

  // Node's own fetch; setGlobalDispatcher(dispatcher) from 'undici' would make it the default.
  const res = await fetch(`http://127.0.0.1:${port}/shareditems`, { dispatcher });
  const body = await res.json();
  const peer = res.headers.get(PEER_ID_HEADER); // set by the dispatcher, never by the server
  log(`GET /shareditems -> ${res.status}, served by ${peer}, server saw ${body.caller}`);

  return {
    status: res.status,
    body,
    peer,
    async close() {
      await dispatcher.close();
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
