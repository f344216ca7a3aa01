import https from 'node:https';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  createMtlsAgent,
  createMtlsDispatcher,
  createMtlsServer,
  getPeer,
  type IdentitySource,
  type RejectEvent,
} from '../../src/index.js';
import { answeredAtLeast, type Load, percentile, recordFigures, startLoad } from '../helpers/load.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { listen, onCleanup, record } from '../helpers/server.js';

// Issue 12, reliability: trust changes while clients send. A CA removed from the bundle cuts its
// peers off within a second and nobody else notices; a root rotated with an overlap costs nothing.
const rootA = createLocalCa({ trustDomain: 'cluster.local' });
const rootB = createLocalCa({ trustDomain: 'cluster.local' }); // same trust domain, another key
afterAll(async () => {
  await Promise.all([rootA.close(), rootB.close()]);
});
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const CUT_OFF_BOUND_MS = 1_000;

function bundle(...cas: (typeof rootA)[]): BundleSet {
  const first = cas[0] as typeof rootA;
  return BundleSet.of(first.bundle().withAuthorities(cas.flatMap((c) => [...c.bundle().anchors()])));
}

function echoPeer(req: Parameters<typeof getPeer>[0], res: { end(b: string): void }): void {
  res.end(String(getPeer(req).id));
}

/** fetch through a dispatcher of `identity`, every 4th request on a new connection; records when each succeeded. */
function fetchLoad(
  identity: IdentitySource,
  port: number,
  expectBody: string,
  successes: number[][],
  failedAt: number[] = [],
): Load {
  const dispatcher = createMtlsDispatcher({
    identity,
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    connections: 2,
  });
  onCleanup(() => dispatcher.destroy());
  return startLoad(2, async (n) => {
    const started = performance.now();
    let res: Response;
    let body: string;
    try {
      res = (await undiciFetch(`http://127.0.0.1:${port}/${n}`, {
        dispatcher,
        headers: n % 4 === 0 ? { connection: 'close' } : {},
      })) as unknown as Response;
      body = await res.text();
    } catch (err) {
      failedAt.push(performance.now());
      throw err;
    }
    if (res.status !== 200 || body !== expectBody) return `${res.status} ${body}`;
    successes.push([started, performance.now()]);
    return undefined;
  });
}

/** node:https through createMtlsAgent, every 4th request on a new connection. */
function agentLoad(identity: IdentitySource, port: number, expectBody: string): Load {
  const agent = createMtlsAgent({ identity, destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } } });
  onCleanup(() => agent.close());
  return startLoad(
    2,
    (n) =>
      new Promise((resolve, reject) => {
        const req = https.get(
          {
            host: '127.0.0.1',
            port,
            path: `/${n}`,
            agent,
            headers: n % 4 === 0 ? { connection: 'close' } : {},
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              body += d;
            });
            res.on('end', () =>
              resolve(
                res.statusCode === 200 && body === expectBody ? undefined : `${res.statusCode} ${body}`,
              ),
            );
          },
        );
        req.on('error', reject);
      }),
  );
}

describe('trust changes under load', () => {
  it('a CA removed from the bundle: its peers are cut off within a second, the others see 0 failures', async () => {
    const serverSource = mutableIdentity(rootA.issue('/ns/demo/sa/boards'), bundle(rootA, rootB));
    const server = createMtlsServer({ identity: serverSource }, echoPeer);
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const GOOD = 'spiffe://cluster.local/ns/demo/sa/app-ui';
    const VICTIM = 'spiffe://cluster.local/ns/demo/sa/worker';
    // The victim's SVID is from root B; it trusts root A for the server.
    const good = mutableIdentity(rootA.issue(GOOD), rootA.bundles());
    const victim = mutableIdentity(rootB.issue(VICTIM), bundle(rootA, rootB));
    const goodOk: number[][] = [];
    const victimOk: number[][] = [];
    const goodLoads = [fetchLoad(good, port, GOOD, goodOk), agentLoad(good, port, GOOD)];
    const victimFailedAt: number[] = [];
    const victimLoad = fetchLoad(victim, port, VICTIM, victimOk, victimFailedAt);
    await answeredAtLeast(victimLoad, 60);
    await answeredAtLeast(goodLoads[0] as Load, 60);

    const removedAt = performance.now();
    serverSource.update({ bundles: rootA.bundles() });
    // Keep sending past the bound, so a peer that is not cut off shows.
    await new Promise((resolve) => setTimeout(resolve, CUT_OFF_BOUND_MS + 500));
    const victimResult = await victimLoad.stop();
    const goodResults = await Promise.all(goodLoads.map((l) => l.stop()));

    // Cut off: the victim's last answer (0 when none came after the change) and its first refusal.
    const lastVictimOk = Math.max(removedAt, ...victimOk.map(([, end]) => end as number));
    const cutOffMs = lastVictimOk - removedAt;
    const firstRefusalMs = Math.min(...victimFailedAt.filter((t) => t >= removedAt)) - removedAt;
    const victimOkAfterBound = victimOk.filter(([start]) => (start as number) > removedAt + CUT_OFF_BOUND_MS);
    const closedLive = rejects.filter((r) => r.reason === 'ERR_PEER_NO_LONGER_TRUSTED').length;
    recordFigures('trust-ca-removed', {
      lastVictimAnswerAfterChangeMs: Math.round(cutOffMs),
      firstVictimRefusalAfterChangeMs: Math.round(firstRefusalMs),
      boundMs: CUT_OFF_BOUND_MS,
      victimRequestsOkBefore: victimOk.filter(([s]) => (s as number) < removedAt).length,
      victimRequestsFailedAfter: victimResult.failures.length,
      victimConnectionsClosedByTrustChange: closedLive,
      goodRequests: goodResults.reduce((n, r) => n + r.answered, 0),
      goodFailures: goodResults.reduce((n, r) => n + r.failures.length, 0),
      goodP99Ms: Number(
        percentile(
          goodResults.flatMap((r) => r.latencies),
          99,
        ).toFixed(1),
      ),
    });

    expect(goodResults.flatMap((r) => r.failures)).toEqual([]);
    for (const r of goodResults) expect(r.answered).toBeGreaterThan(60);
    // Control: the victim was served until the change...
    expect(victimOk.filter(([s]) => (s as number) < removedAt).length).toBeGreaterThan(30);
    // ...and not after the bound: no request it started later succeeded, its last answer came in time.
    expect(victimOkAfterBound).toEqual([]);
    expect(cutOffMs).toBeLessThan(CUT_OFF_BOUND_MS);
    expect(firstRefusalMs).toBeLessThan(CUT_OFF_BOUND_MS);
    expect(victimResult.failures.length).toBeGreaterThan(0);
    // Every refusal is the victim's: its live connections closed, its new handshakes refused.
    expect(rejects.every((r) => r.peer === VICTIM || r.peer === null)).toBe(true);
    expect(closedLive).toBeGreaterThan(0);
  });

  it('a root rotated with an overlap (add the new root, re-issue, drop the old): 0 failures', async () => {
    const serverSource = mutableIdentity(rootA.issue('/ns/demo/sa/boards'), rootA.bundles());
    const server = createMtlsServer({ identity: serverSource }, echoPeer);
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
    const client = mutableIdentity(rootA.issue(UI), rootA.bundles());
    const ok: number[][] = [];
    const loads = [fetchLoad(client, port, UI, ok), agentLoad(client, port, UI)];
    const answered = () => loads.reduce((n, l) => n + l.answered(), 0);
    const all = { answered, stop: async () => ({}) } as unknown as Load;
    const step = async (k: number) => answeredAtLeast(all, answered() + k);

    await step(60);
    // 1. Everyone trusts both roots (servers and clients alike) before anyone presents the new one.
    serverSource.update({ bundles: bundle(rootA, rootB) });
    client.update({ bundles: bundle(rootA, rootB) });
    await step(60);
    // 2. SVIDs re-issued under the new root.
    serverSource.update({ svid: rootB.issue('/ns/demo/sa/boards') });
    await step(30);
    client.update({ svid: rootB.issue(UI) });
    await step(60);
    // 3. The old root leaves every bundle.
    serverSource.update({ bundles: rootB.bundles() });
    client.update({ bundles: rootB.bundles() });
    await step(120);
    const results = await Promise.all(loads.map((l) => l.stop()));

    recordFigures('trust-root-rotation', {
      requests: results.reduce((n, r) => n + r.answered, 0),
      failures: results.reduce((n, r) => n + r.failures.length, 0),
      rejects: rejects.map((r) => r.reason),
    });
    expect(results.flatMap((r) => r.failures)).toEqual([]);
    // Connections made under the old root are retired gracefully, never refused mid-request.
    expect(rejects.filter((r) => r.reason !== 'ERR_PEER_NO_LONGER_TRUSTED')).toEqual([]);
    expect(results.reduce((n, r) => n + r.answered, 0)).toBeGreaterThanOrEqual(330);
  });
});
