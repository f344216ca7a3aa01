// Load and leak accounting for the reliability suites (test/reliability/): continuous clients, the
// resources a process holds, the subscriptions a source has, and bounded waits.
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { IdentitySource, WorkloadIdentity } from '../../src/index.js';

/** What `process.getActiveResourcesInfo()` reports, counted by type. */
export type ResourceCounts = Readonly<Record<string, number>>;

/** The active handles and requests of this process, by type (`TCPSocketWrap`, `TLSWrap`, `Timeout`, ...). */
export function resourceCounts(): ResourceCounts {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/**
 * The resources that hold a socket or a server (everything but timers and immediates, which
 * undici's and vitest's own clocks start and stop as they please).
 */
export function socketResources(counts: ResourceCounts): ResourceCounts {
  return Object.fromEntries(
    Object.entries(counts).filter(([type]) => !/^(Timeout|Immediate|TTYWrap|FSReqCallback)$/.test(type)),
  );
}

/** `server.getConnections()` as a promise. */
export function connectionsOf(server: Pick<Server, 'getConnections'>): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** An identity source that counts its live subscriptions, to show that clients and servers unsubscribe. */
export interface CountedSource extends IdentitySource {
  /** Subscriptions not yet undone. */
  subscriptions(): number;
}

/** Wraps `source` so that its live subscriptions can be counted. */
export function countSubscriptions(source: IdentitySource): CountedSource {
  let live = 0;
  return {
    ready: (options) => source.ready(options),
    current: () => source.current(),
    subscribe(listener: (identity: WorkloadIdentity) => void) {
      const stop = source.subscribe(listener);
      live++;
      let stopped = false;
      return () => {
        if (!stopped) live--;
        stopped = true;
        stop();
      };
    },
    close: () => source.close(),
    [Symbol.asyncDispose]: () => source.close(),
    subscriptions: () => live,
  };
}

/** Polls `condition` every `interval` ms until it holds or `timeout` ms have passed; returns whether it held. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeout: number,
  interval = 20,
): Promise<boolean> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The p-th percentile (0-100) of a list of numbers, nearest rank; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** What a load run did: answered requests, failures with their reasons, latencies. */
export interface LoadResult {
  readonly sent: number;
  readonly answered: number;
  readonly failures: readonly string[];
  readonly latencies: readonly number[];
}

/** A running load: `answered()` so far, and `stop()` to end it and get the result. */
export interface Load {
  answered(): number;
  stop(): Promise<LoadResult>;
}

/**
 * Runs `workers` loops, each calling `request(n)` again as soon as it settles, until `stop()`, at
 * most `maxRequests` requests in all or until `maxMs` has passed (bounded on any machine). A
 * request that throws or resolves with a string counts as a failure with that reason.
 */
export function startLoad(
  workers: number,
  request: (n: number, worker: number) => Promise<string | undefined>,
  { maxRequests = 50_000, maxMs = 30_000 } = {},
): Load {
  let running = true;
  let sent = 0;
  let answered = 0;
  const failures: string[] = [];
  const latencies: number[] = [];
  const deadline = Date.now() + maxMs;
  const loop = async (worker: number) => {
    while (running && sent < maxRequests && Date.now() < deadline) {
      const n = sent++;
      const started = performance.now();
      try {
        const problem = await request(n, worker);
        if (problem !== undefined) failures.push(`#${n}: ${problem}`);
      } catch (err) {
        failures.push(`#${n}: ${describeError(err)}`);
      }
      latencies.push(performance.now() - started);
      answered++;
    }
  };
  const loops = Array.from({ length: workers }, (_, w) => loop(w));
  return {
    answered: () => answered,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { sent, answered, failures, latencies };
    },
  };
}

/** An error and its causes on one line (undici wraps the connector's error in `cause`). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let at: unknown = err;
  for (let depth = 0; at !== undefined && at !== null && depth < 4; depth++) {
    const e = at as { code?: unknown; message?: unknown; cause?: unknown };
    parts.push(`${e.code === undefined ? '' : `${String(e.code)} `}${String(e.message ?? at)}`);
    at = e.cause;
  }
  return parts.join(' <- ');
}

/** Waits until `load` has answered `n` requests in all, bounded by `timeout` ms. */
export async function answeredAtLeast(load: Load, n: number, timeout = 10_000): Promise<void> {
  await eventually(() => load.answered() >= n, timeout, 2);
}

/**
 * Records a suite's figures: printed as one `[figures]` line, and written to
 * `temp/reliability/<name>-node<major>.json` so test/reliability/README.md can be refreshed from them.
 */
export function recordFigures(name: string, figures: Record<string, unknown>): void {
  const major = process.versions.node.split('.')[0];
  const line = JSON.stringify({ name, node: process.versions.node, ...figures });
  console.log(`[figures] ${line}`);
  const dir = join(process.cwd(), 'temp', 'reliability');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}-node${major}.json`), `${line}\n`);
}
