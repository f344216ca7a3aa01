import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsDispatcher,
  createMtlsServer,
  getPeer,
  PEER_ID_HEADER,
  workloadApiIdentity,
} from '../../src/index.js';
import { createFakeWorkloadApi } from '../../src/testing/index.js';
import { listen } from '../helpers/server.js';

// Issue 6 end to end: both workloads get their SVIDs from a (fake) SPIRE agent's Workload API; a
// client keeps calling the server while both SVIDs rotate. Nothing is restarted or rebuilt.
const ca = createLocalCa({ trustDomain: 'cluster.local' });
const serverApi = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/boards'] });
const clientApi = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/app-ui'] });
afterAll(async () => {
  await serverApi.close();
  await clientApi.close();
  await ca.close();
});

describe('Workload API rotation under load', () => {
  it('rotates the server and the client 20 times while requests flow: 0 failed requests', async () => {
    const serverIdentity = workloadApiIdentity({ address: serverApi.address });
    const clientIdentity = workloadApiIdentity({ address: clientApi.address });
    await Promise.all([serverIdentity.ready(), clientIdentity.ready()]);
    const seenClientSerials = new Set<string>();
    const server = createMtlsServer(
      { identity: serverIdentity, authorize: { '*': 'spiffe://cluster.local/ns/demo/sa/app-ui' } },
      (req, res) => {
        seenClientSerials.add(getPeer(req).certificate?.serialNumber ?? '');
        res.end('ok');
      },
    );
    const { port } = await listen(server);
    const seenServerSerials = new Set<string>();
    const dispatcher = createMtlsDispatcher({
      identity: clientIdentity,
      destinations: { [`127.0.0.1:${port}`]: { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
      onPeer: (peer) => seenServerSerials.add(peer.certificate?.serialNumber ?? ''),
    });
    const failures: unknown[] = [];
    let requests = 0;
    let running = true;
    const worker = async () => {
      while (running && requests < 20_000) {
        requests++;
        try {
          // Every eighth request closes its connection, as real traffic turns connections over:
          // new connections must present and expect the rotated SVIDs.
          const headers = requests % 8 === 0 ? { connection: 'close' } : {};
          const res = await request(`http://127.0.0.1:${port}/shareditems`, { dispatcher, headers });
          await res.body.text();
          if (res.statusCode !== 200) failures.push(res.statusCode);
          expect(res.headers[PEER_ID_HEADER]).toBe('spiffe://cluster.local/ns/demo/sa/boards');
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    const serverSerials: string[] = [];
    for (let i = 0; i < 20; i++) {
      await sleep(60);
      const [rotated] = i % 2 === 0 ? serverApi.rotate() : clientApi.rotate();
      if (i % 2 === 0) serverSerials.push(rotated?.leaf.serialNumber ?? '');
    }
    // Let the last rotations reach new connections, then stop.
    await sleep(300);
    running = false;
    await Promise.all(workers);
    await dispatcher.close();
    await Promise.all([serverIdentity.close(), clientIdentity.close()]);

    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(100);
    // The rotations were applied on the wire, both ways: the client met the server's last SVID,
    // and each side saw several SVIDs of the other.
    expect(seenServerSerials.has(serverSerials.at(-1) ?? '')).toBe(true);
    expect(seenServerSerials.size).toBeGreaterThan(3);
    expect(seenClientSerials.size).toBeGreaterThan(3);
  });
});
