import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { IdentitySourceEvents, ObservableSource, RetryInfo } from '../../src/identity/source-events.js';
import type { SidecarlessError, WorkloadIdentity } from '../../src/index.js';
import {
  createFakeWorkloadApi,
  type FakeWorkloadApi,
  type FakeWorkloadApiOptions,
} from '../../src/testing/fake-workload-api.js';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Registers a clean-up that runs after the file's tests, in reverse order. */
export function afterFile(cleanup: () => unknown): void {
  cleanups.push(cleanup);
}

/** A new directory under os.tmpdir(), removed after the file's tests. */
export function tempDir(prefix = 'sidecarless-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterFile(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fake Workload API, closed after the file's tests. */
export async function startFake(options: FakeWorkloadApiOptions = {}): Promise<FakeWorkloadApi> {
  const fake = await createFakeWorkloadApi(options);
  afterFile(() => fake.close());
  return fake;
}

/** A source (anything closable), closed after the file's tests. */
export function track<T extends { close(): Promise<void> }>(source: T): T {
  afterFile(() => source.close());
  return source;
}

/** Everything a source reported, in order. */
export interface Recorded<T> {
  readonly updates: T[];
  readonly errors: SidecarlessError[];
  readonly withdrawn: SidecarlessError[];
  readonly retries: RetryInfo[];
}

/** Records every event of a source. */
export function record<T = WorkloadIdentity>(source: ObservableSource<IdentitySourceEvents<T>>): Recorded<T> {
  const recorded: Recorded<T> = { updates: [], errors: [], withdrawn: [], retries: [] };
  source.on('update', (value) => recorded.updates.push(value));
  source.on('error', (err) => recorded.errors.push(err));
  source.on('withdrawn', (err) => recorded.withdrawn.push(err));
  source.on('retry', (info) => recorded.retries.push(info));
  return recorded;
}

/** Resolves with the next value a `subscribe`-style source publishes. */
export function nextUpdate<T>(source: { subscribe(listener: (value: T) => void): () => void }): Promise<T> {
  return new Promise((resolve) => {
    const stop = source.subscribe((value) => {
      stop();
      resolve(value);
    });
  });
}

/** Waits `ms` (for "nothing happens" checks only; never for "something happens"). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
