// Post-quantum hybrid key exchange: Node 24 (OpenSSL 3.5) negotiates X25519MLKEM768 by default
// between our own server and client; Node 20 (OpenSSL 3.0) and the system OpenSSL peers, which
// have no ML-KEM, fall back to X25519 cleanly, in both roles.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMtls } from '../../src/client/connect-mtls.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { createLocalCa } from '../../src/identity/local-ca.js';
import { createMtlsServer, getPeer, KEY_EXCHANGE_NOT_EXPOSED } from '../../src/index.js';
import { skipWithout } from '../helpers/programs.js';
import { freePort, NODE_MAJOR, runPeer, startPeer, workDir, writeSvid } from './peers.js';

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const files = workDir('kex');
const caPem = files.write('ca.pem', ca.bundle().toPem());
const client = ca.identity('/ns/demo/sa/app-ui');
const server = createMtlsServer(
  { identity: ca.identity('/ns/demo/sa/boards'), protocol: 'tls' },
  (socket, peer) => {
    socket.end(`id=${peer.id?.toString()}\n`);
  },
);
let port = 0;
beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await client.close();
  await ca.close();
});

/** The group our client negotiated, as its socket reports it, and the server's reply. */
async function connectAndRead(to: number, request = '') {
  const socket = await connectMtls({
    identity: client,
    host: '127.0.0.1',
    port: to,
    expect: BOARDS,
    timeout: 5_000,
  });
  const info = socket.getEphemeralKeyInfo() as { name?: string };
  const server = getPeer(socket).id?.toString();
  const version = socket.getProtocol();
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    data += d;
  });
  socket.end(request);
  await once(socket, 'close');
  return { group: info.name, server, data, version };
}

describe('our server and our client', () => {
  it(`negotiate ${NODE_MAJOR >= 24 ? 'X25519MLKEM768' : 'the best group this Node has'} (Node ${NODE_MAJOR}, OpenSSL ${process.versions.openssl})`, async () => {
    const res = await connectAndRead(port);
    expect(res.server).toBe(BOARDS);
    expect(res.data).toBe(`id=${UI}\n`);
    // Node 24 names the hybrid; Node 22 negotiates it too but getEphemeralKeyInfo() returns {} for
    // it; Node 20's OpenSSL 3.0 has no ML-KEM.
    if (NODE_MAJOR >= 24) expect(res.group).toBe('X25519MLKEM768');
    else if (NODE_MAJOR === 22) expect(res.group).toBeUndefined();
    else expect(res.group).toBe('X25519');
  });

  it('the dispatcher edge reports the same group', async () => {
    const h1 = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) =>
      res.end('ok'),
    );
    h1.listen(0, '127.0.0.1');
    await once(h1, 'listening');
    const h1Port = (h1.address() as AddressInfo).port;
    const dispatcher = createMtlsDispatcher({
      identity: client,
      destinations: { [`127.0.0.1:${h1Port}`]: { expect: BOARDS } },
    });
    try {
      const { fetch } = await import('undici');
      expect(await (await fetch(`http://127.0.0.1:${h1Port}/`, { dispatcher })).text()).toBe('ok');
      const edge = dispatcher.describe().edges[0];
      const expected =
        NODE_MAJOR >= 24 ? 'X25519MLKEM768' : NODE_MAJOR === 22 ? KEY_EXCHANGE_NOT_EXPOSED : 'X25519';
      expect(edge?.keyExchange).toBe(expected);
    } finally {
      await dispatcher.destroy();
      h1.closeAllConnections();
      await new Promise((resolve) => h1.close(resolve));
    }
  });
});

describe.skipIf(skipWithout('openssl'))(
  'system OpenSSL peers (no ML-KEM): a clean fallback to X25519',
  () => {
    const boards = writeSvid(files, 'boards', ca.issue('/ns/demo/sa/boards'));
    const ui = writeSvid(files, 'ui', ca.issue('/ns/demo/sa/app-ui'));

    it('openssl s_client against our server: handshake verified, X25519', async () => {
      const res = await runPeer('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-CAfile',
        caPem,
        '-cert',
        ui.cert,
        '-cert_chain',
        ui.chain,
        '-key',
        ui.key,
        '-verify_return_error',
        '-ign_eof',
      ]);
      expect(res.stdout).toContain('Server Temp Key: X25519');
      expect(res.stdout).toContain('Verify return code: 0 (ok)');
      expect(res.stdout).toContain(`id=${UI}`);
    });

    it('our client against openssl s_server: X25519', async () => {
      const sPort = await freePort();
      await startPeer(
        'openssl',
        [
          's_server',
          '-accept',
          `127.0.0.1:${sPort}`,
          '-cert',
          boards.cert,
          '-cert_chain',
          boards.chain,
          '-key',
          boards.key,
          '-CAfile',
          caPem,
          '-Verify',
          '3',
          '-verify_return_error',
          '-www',
        ],
        sPort,
      );
      const res = await connectAndRead(sPort, 'GET / HTTP/1.0\r\n\r\n');
      expect(res.server).toBe(BOARDS);
      expect(res.version).toBe('TLSv1.3');
      expect(res.group).toBe('X25519');
      expect(res.data).toContain(`URI:${UI}`);
    });
  },
);
