import https from 'node:https';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsAgent,
  createMtlsServer,
  type IdentitySource,
  type RejectEvent,
} from '../../src/index.js';
import { connectionsOf, eventually } from '../helpers/load.js';
import { credentialsOf, listen, onCleanup, record } from '../helpers/server.js';

// Found by the rotation-under-load suite: an https Agent with maxSockets, two callers, and some
// `connection: close` requests. Every request succeeds, but a createMtlsAgent opens more
// connections than it uses, and the sidecarless server never finishes their handshakes: it holds
// each one until the agent closes it (ERR_CLIENT_ABORTED) or until handshakeTimeout.
const ca = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ca.close());
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const client = ca.issue('/ns/demo/sa/app-ui');

async function run(agent: https.Agent, port: number): Promise<void> {
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          agent,
          method: 'POST',
          headers: i % 4 === 0 ? { connection: 'close' } : {},
        },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end('n=1');
    });
  await Promise.all(
    [0, 1].map(async () => {
      for (let i = 0; i < 40; i++) await one(i);
    }),
  );
}

async function setup() {
  const server = createMtlsServer(
    { identity: ca.identity('/ns/demo/sa/boards'), handshakeTimeout: 1_000 },
    (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    },
  );
  const rejects = record<RejectEvent>(server, 'reject');
  const { port } = await listen(server);
  return { server, rejects, port };
}

/** After the run: the server holds no more connections than the agent can have, and no handshake timed out. */
async function expectNoSurplus(server: Awaited<ReturnType<typeof setup>>, agent: https.Agent) {
  await run(agent, server.port);
  const open = await connectionsOf(server.server);
  agent.destroy();
  await eventually(async () => (await connectionsOf(server.server)) === 0, 3_000);
  // Past the handshake timeout: any handshake the server never finished has been reported by now.
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  expect(server.rejects.map((r) => `${r.reason} ${r.message}`)).toEqual([]);
  expect(open).toBeLessThanOrEqual(2);
}

describe('an https Agent with maxSockets and connection: close requests', () => {
  it('control: a plain node:https Agent with the same SVID leaves no half-made connections', async () => {
    const server = await setup();
    const agent = new https.Agent({
      ...credentialsOf(client),
      ca: ca.bundle().toPem(),
      keepAlive: true,
      maxSockets: 2,
      checkServerIdentity: () => undefined,
    });
    onCleanup(() => agent.destroy());
    await expectNoSurplus(server, agent);
  });

  it('createMtlsAgent leaves no half-made connections', async () => {
    const server = await setup();
    const identity: IdentitySource = ca.identity('/ns/demo/sa/app-ui');
    const agent = createMtlsAgent({
      identity,
      destinations: { [`127.0.0.1:${server.port}`]: { expect: BOARDS } },
      maxSockets: 2,
    });
    onCleanup(() => agent.close());
    await expectNoSurplus(server, agent);
  });
});
