import { type ChildProcess, fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsDispatcher,
  createMtlsServer,
  getPeer,
  type MtlsMode,
  type RejectEvent,
} from '../../src/index.js';
import {
  connectionsOf,
  eventually,
  type Load,
  percentile,
  recordFigures,
  startLoad,
} from '../helpers/load.js';
import { onCleanup } from '../helpers/server.js';

// Issue 12, reliability: a PERMISSIVE and a STRICT port under abuse — 1 000 sockets that connect and
// close at once, then 1 000 that never send a byte together with 1 000 that drip a ClientHello a
// byte at a time or stall inside it — while valid clients keep being served. The attackers run in a
// child process (fixtures/abuse-attacker.mjs): both ends of 3 000 sockets in one process would
// exceed a 1 024-descriptor limit.
const ca = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ca.close());
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const ATTACKERS = 1_000;
const SNIFF_TIMEOUT = 500;
const HANDSHAKE_TIMEOUT = 800;
// Timers fire late on a loaded machine: how much later than its deadline a socket may be closed
// (3 s was once exceeded by 1.6 s with the machine's two cores shared by four suites). Still well
// under the 10 s handshakeTimeout default, so a deadline that is not applied fails the test.
const SLACK_MS = 6_000;
const MB = 1024 * 1024;
const RSS_BOUND_MB = 256;
const HEAP_BOUND_MB = 128;

interface Summary {
  readonly phase: string;
  readonly opened: number;
  readonly closed: number;
  readonly errors: number;
  readonly notClosed: number;
  readonly closeAfterMs: { min: number | null; p50: number | null; max: number | null };
}

function attacker(): { child: ChildProcess; ask<T>(message: object): Promise<T> } {
  const child = fork(fileURLToPath(new URL('./fixtures/abuse-attacker.mjs', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  onCleanup(() => child.kill());
  const replies: ((m: unknown) => void)[] = [];
  child.on('message', (m) => replies.shift()?.(m));
  const next = <T>() => new Promise<T>((resolve) => replies.push(resolve as (m: unknown) => void));
  const ready = next<{ phase: string }>();
  return {
    child,
    ask: async <T>(message: object) => {
      await ready;
      const reply = next<T>();
      child.send(message);
      return reply;
    },
  };
}

/** Samples this process's memory every 50 ms until stopped; returns the peaks above the start. */
function sampleMemory(): () => { rssMb: number; heapMb: number; baseRssMb: number; baseHeapMb: number } {
  const base = process.memoryUsage();
  let rss = base.rss;
  let heap = base.heapUsed;
  const timer = setInterval(() => {
    const now = process.memoryUsage();
    rss = Math.max(rss, now.rss);
    heap = Math.max(heap, now.heapUsed);
  }, 50);
  return () => {
    clearInterval(timer);
    return {
      rssMb: Math.round((rss - base.rss) / MB),
      heapMb: Math.round((heap - base.heapUsed) / MB),
      baseRssMb: Math.round(base.rss / MB),
      baseHeapMb: Math.round(base.heapUsed / MB),
    };
  };
}

/** Valid clients: mTLS through fetch (every 4th request a new connection), and plaintext in PERMISSIVE. */
function validClients(port: number, mode: MtlsMode): Load[] {
  const dispatcher = createMtlsDispatcher({
    identity: ca.identity('/ns/demo/sa/app-ui'),
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    connections: 2,
  });
  onCleanup(() => dispatcher.destroy());
  const loads = [
    startLoad(2, async (n) => {
      const res = await undiciFetch(`http://127.0.0.1:${port}/${n}`, {
        dispatcher,
        headers: n % 4 === 0 ? { connection: 'close' } : {},
      });
      const body = await res.text();
      return res.status === 200 && body === UI ? undefined : `${res.status} ${body}`;
    }),
  ];
  if (mode === 'PERMISSIVE') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    onCleanup(() => agent.destroy());
    loads.push(
      startLoad(
        1,
        () =>
          new Promise((resolve, reject) => {
            http
              .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (d: string) => {
                  body += d;
                });
                res.on('end', () => resolve(res.statusCode === 200 && body === 'null' ? undefined : body));
              })
              .on('error', reject);
          }),
      ),
    );
  }
  return loads;
}

describe.each(['PERMISSIVE', 'STRICT'] as const)('a %s port under abuse', (mode) => {
  it(`frees ${ATTACKERS} churned sockets at once, closes ${ATTACKERS} idle and ${ATTACKERS} slow ones at their deadlines, and keeps serving`, async () => {
    const server = createMtlsServer(
      {
        identity: ca.identity('/ns/demo/sa/boards'),
        mode,
        sniffTimeout: SNIFF_TIMEOUT,
        handshakeTimeout: HANDSHAKE_TIMEOUT,
      },
      (req, res) => res.end(String(getPeer(req).id)),
    );
    const reasons: Record<string, number> = {};
    server.on('reject', (e: RejectEvent) => {
      reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
    });
    // A backlog that holds every attacker: with Node's default (511) the kernel, not the server,
    // would hold the surplus on a busy machine, and its SYN-ACK retries would be what is measured.
    server.listen(0, '127.0.0.1', 4_096);
    await new Promise((resolve) => server.once('listening', resolve));
    onCleanup(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    );
    const port = (server.address() as { port: number }).port;
    const { ask } = attacker();
    const memory = sampleMemory();
    const loads = validClients(port, mode);
    const validMax = mode === 'PERMISSIVE' ? 3 : 2; // connections the valid clients hold at most

    const churnStart = performance.now();
    const churn = await ask<Summary>({ phase: 'churn', port, count: ATTACKERS });
    const churnMs = performance.now() - churnStart;
    const freed = await eventually(async () => (await connectionsOf(server)) <= validMax, 500, 5);
    const freedMs = Math.round(performance.now() - churnStart - churnMs);

    const held = await ask<{ idle: Summary; slow: Summary }>({ phase: 'hold', port, count: ATTACKERS });
    const results = await Promise.all(loads.map((l) => l.stop()));
    const peak = memory();
    const drained = await eventually(async () => (await connectionsOf(server)) <= validMax, 2_000);

    const latencies = results.flatMap((r) => r.latencies);
    recordFigures(`abuse-${mode.toLowerCase()}`, {
      attackers: { churn: churn.opened, idle: held.idle.opened, slow: held.slow.opened },
      churnSeconds: Number((churnMs / 1000).toFixed(2)),
      churnFreedWithinMs: freedMs,
      idleClosedAfterMs: held.idle.closeAfterMs,
      slowClosedAfterMs: held.slow.closeAfterMs,
      sniffTimeout: SNIFF_TIMEOUT,
      handshakeTimeout: HANDSHAKE_TIMEOUT,
      rejects: reasons,
      validRequests: results.reduce((n, r) => n + r.answered, 0),
      validFailures: results.reduce((n, r) => n + r.failures.length, 0),
      validP50Ms: Number(percentile(latencies, 50).toFixed(1)),
      validP99Ms: Number(percentile(latencies, 99).toFixed(1)),
      memoryPeakGrowth: peak,
    });

    // Valid clients were served all along.
    expect(results.flatMap((r) => r.failures)).toEqual([]);
    for (const r of results) expect(r.answered).toBeGreaterThan(20);
    // Churned sockets are freed at once (no deadline involved).
    expect(churn.opened).toBe(ATTACKERS);
    expect(freed).toBe(true);
    expect(reasons.ERR_CLIENT_ABORTED).toBe(ATTACKERS);
    // Idle sockets: closed by the sniff deadline, not before it.
    expect(held.idle).toMatchObject({ opened: ATTACKERS, closed: ATTACKERS, notClosed: 0 });
    expect(held.idle.closeAfterMs.min).toBeGreaterThanOrEqual(SNIFF_TIMEOUT - 20);
    expect(held.idle.closeAfterMs.max).toBeLessThan(SNIFF_TIMEOUT + SLACK_MS);
    expect(reasons.ERR_SNIFF_TIMEOUT).toBe(ATTACKERS);
    // Slow and stalled ClientHellos: closed by the handshake deadline.
    expect(held.slow).toMatchObject({ opened: ATTACKERS, closed: ATTACKERS, notClosed: 0 });
    expect(held.slow.closeAfterMs.min).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT - 20);
    expect(held.slow.closeAfterMs.max).toBeLessThan(100 + HANDSHAKE_TIMEOUT + SLACK_MS);
    expect(reasons.ERR_HANDSHAKE_TIMEOUT).toBe(ATTACKERS);
    // Memory stays bounded while 2 000 sockets are held.
    expect(peak.rssMb).toBeLessThan(RSS_BOUND_MB);
    expect(peak.heapMb).toBeLessThan(HEAP_BOUND_MB);
    expect(drained).toBe(true);
  });
});
