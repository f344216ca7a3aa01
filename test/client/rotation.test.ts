import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMtlsAgent } from '../../src/client/agent.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { BundleSet } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { caOf, httpsServer, pemOf } from '../helpers/client-servers.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { closed, createLatch, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const partner = createTestCa({ trustDomain: 'partner.example' });
afterAll(async () => {
  await ca.close();
  await partner.close();
});

describe('rotation', () => {
  it('50 rotations under continuous load: 0 failed requests, one TLS context per identity generation', async () => {
    const identity = mutableIdentity(ca.issue('/ns/demo/sa/app-ui'), ca.bundles());
    const srv = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) });
    const serials = new Set<string>();
    srv.server.on('secureConnection', (s: tls.TLSSocket) => {
      const serial = s.getPeerX509Certificate()?.serialNumber;
      if (serial !== undefined) serials.add(serial);
    });
    const dispatcher = createMtlsDispatcher({
      identity,
      destinations: { '*': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
      connections: 4,
    });
    onCleanup(() => dispatcher.destroy());
    const contexts = vi.spyOn(tls, 'createSecureContext');
    onCleanup(() => contexts.mockRestore());

    let rotating = true;
    let sent = 0;
    let done = 0;
    const failures: unknown[] = [];
    const deadline = Date.now() + 15_000;
    const worker = async (w: number) => {
      while (rotating && sent < 3_000 && Date.now() < deadline) {
        const n = sent++;
        try {
          // Every 4th request closes its connection, so new connections keep being made.
          const res = await undiciFetch(`http://127.0.0.1:${srv.port}/${w}/${n}`, {
            dispatcher,
            method: 'POST',
            body: `n=${n}`,
            headers: n % 4 === 0 ? { connection: 'close' } : {},
          });
          const body = (await res.json()) as { body: string };
          if (res.status !== 200 || body.body !== `n=${n}` || res.headers.get(PEER_ID_HEADER) === null) {
            failures.push(`${n}: ${res.status} ${JSON.stringify(body)}`);
          }
        } catch (err) {
          failures.push(err);
        }
        done++;
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    // Each rotation waits for 8 more answered requests, so load and rotations interleave on any
    // machine (bounded by the deadline).
    const answered = async (n: number) => {
      while (done < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
    };
    for (let i = 1; i <= 50; i++) {
      await answered(i * 8);
      if (i % 10 === 0) {
        // A new root: clients get the new bundle (old and new roots) before servers present it.
        ca.rotateRoot();
        identity.update({ svid: ca.issue('/ns/demo/sa/app-ui'), bundles: ca.bundles() });
        srv.server.setSecureContext({ ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) });
      } else {
        identity.update({ svid: ca.issue('/ns/demo/sa/app-ui') });
      }
    }
    await answered(51 * 8);
    rotating = false;
    await Promise.all(workers);

    expect(
      failures.map(
        (f) => `${(f as Error).cause instanceof Error ? ((f as Error).cause as Error).message : f}`,
      ),
    ).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(51 * 8);
    expect(srv.seen.length).toBe(sent);
    // New connections presented the current SVID: many of the 51 were seen by the server.
    expect(serials.size).toBeGreaterThan(25);
    // Contexts are built per identity generation, never per connection.
    const clientContexts = contexts.mock.calls.filter(([options]) =>
      new X509Certificate(String(options?.cert)).subjectAltName?.includes('/sa/app-ui'),
    ).length;
    expect(clientContexts).toBeGreaterThan(0);
    expect(clientContexts).toBeLessThanOrEqual(51);
    expect(srv.connections()).toBeGreaterThan(clientContexts);
  });

  it('a bundle change closes pooled connections to servers that no longer verify, after their request', async () => {
    const identity = mutableIdentity(
      ca.issue('/ns/demo/sa/app-ui'),
      BundleSet.of(ca.bundle(), partner.bundle()),
    );
    const latch = createLatch();
    const ours = await httpsServer(pemOf(ca.issue('/ns/demo/sa/boards')));
    const theirs = await httpsServer(pemOf(partner.issue('/ns/shop/sa/orders')), {}, (req) =>
      req.url === '/slow' ? latch.wait() : undefined,
    );
    const sockets: tls.TLSSocket[] = [];
    theirs.server.on('secureConnection', (s: tls.TLSSocket) => sockets.push(s));
    // One connection per origin, so the request in flight is on the pooled connection.
    const dispatcher = createMtlsDispatcher({
      identity,
      destinations: { '*': { expect: '*' } },
      connections: 1,
    });
    onCleanup(() => dispatcher.destroy());
    const get = (port: number, path = '/') => undiciFetch(`http://127.0.0.1:${port}${path}`, { dispatcher });
    await (await get(ours.port)).text();
    await (await get(theirs.port)).text();

    // The partner's trust domain leaves the bundle while a request to it is in flight...
    const inflight = get(theirs.port, '/slow');
    await latch.reached();
    identity.update({ bundles: BundleSet.of(ca.bundle()) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sockets[0]?.destroyed).toBe(false); // ...which is not cut,
    latch.release();
    const res = await inflight;
    expect(res.status).toBe(200);
    await res.text();
    await closed(sockets[0] as tls.TLSSocket); // ...and then its connection is closed,
    expect(theirs.connections()).toBe(1);
    await (await get(ours.port)).text();
    expect(ours.connections()).toBe(1); // while ours stays pooled.
    const cause = await get(theirs.port).then(
      () => expect.fail('succeeded'),
      (e: { cause: unknown }) => e.cause,
    );
    expect(cause).toMatchObject({ code: 'ERR_SVID_NO_BUNDLE' });
  });

  it('closes a pooled connection at the server certificate’s notAfter', async () => {
    const identity = mutableIdentity(ca.issue('/ns/demo/sa/app-ui'), ca.bundles());
    const srv = await httpsServer(pemOf(ca.issue('/ns/demo/sa/boards', { ttl: 2_500 })));
    const dispatcher = createMtlsDispatcher({
      identity,
      destinations: { '*': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 60_000,
    });
    onCleanup(() => dispatcher.destroy());
    const sockets: tls.TLSSocket[] = [];
    srv.server.on('secureConnection', (s: tls.TLSSocket) => sockets.push(s));
    await (await undiciFetch(`http://127.0.0.1:${srv.port}/a`, { dispatcher })).text();
    // The server renews its SVID, as a real one would before expiry.
    srv.server.setSecureContext(pemOf(ca.issue('/ns/demo/sa/boards')));
    expect(sockets).toHaveLength(1);
    await closed(sockets[0] as tls.TLSSocket);
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/b`, { dispatcher });
    expect(res.status).toBe(200);
    expect(sockets).toHaveLength(2);
  });

  it('the https Agent also retires connections whose server no longer verifies', async () => {
    const identity = mutableIdentity(
      ca.issue('/ns/demo/sa/app-ui'),
      BundleSet.of(ca.bundle(), partner.bundle()),
    );
    const theirs = await httpsServer(pemOf(partner.issue('/ns/shop/sa/orders')));
    const agent = createMtlsAgent({ identity, destinations: { '*': { expect: '*' } } });
    onCleanup(() => agent.close());
    const https = await import('node:https');
    const get = () =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${theirs.port}/`, { agent }, (res) => {
            const socket = res.socket as tls.TLSSocket;
            res.resume();
            res.on('end', () => resolve(socket));
          })
          .on('error', reject);
      });
    const socket = await get();
    expect(socket.destroyed).toBe(false);
    identity.update({ bundles: BundleSet.of(ca.bundle()) });
    await once(socket, 'close');
    await expect(get()).rejects.toMatchObject({ code: 'ERR_SVID_NO_BUNDLE' });
  });
});
