import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsDispatcher,
  createMtlsServer,
  fileIdentity,
  type IdentitySource,
  isSidecarlessError,
  type ObservedIdentitySource,
  workloadApiIdentity,
} from '../../src/index.js';
import { createFakeWorkloadApi, malformedResponseKinds } from '../../src/testing/index.js';
import { svidFiles, writeAtomic } from '../helpers/identity-files.js';
import { record, tempDir } from '../helpers/identity-sources.js';
import { eventually, type Load, recordFigures, startLoad } from '../helpers/load.js';
import { listen, onCleanup } from '../helpers/server.js';

// Issue 12, reliability: identity source faults while a server built on the source is serving. The
// last good identity is kept through every fault it should survive, redaction is applied where the
// Workload API spec says so (PERMISSION_DENIED), the source recovers after the fault, and ready()
// is bounded. Workload API faults use the fake agent (behind a TCP proxy for a real restart: the
// socket goes away and comes back at the same address); file faults use fileIdentity.
const ca = createLocalCa({ trustDomain: 'cluster.local' });
afterAll(() => ca.close());
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const RETRY = { initialDelay: 20, maxDelay: 200 };
// How long a recovery may take: the retry backoff's cap plus a loaded machine's delays.
const RECOVERY_BOUND_MS = 5_000;
const figures: Record<string, unknown> = {};
afterAll(() => recordFigures('source-faults', figures));

/** A TCP proxy to the fake agent, so that the agent can "restart": gone, then back at the same address. */
async function restartableProxy(target: string) {
  const [host, port] = target.replace('tcp://', '').split(':') as [string, string];
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let listenPort = 0;
  const start = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(Number(port), host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(listenPort, '127.0.0.1');
    await new Promise((resolve) => server?.once('listening', resolve));
    listenPort = (server.address() as net.AddressInfo).port;
  };
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  };
  await start();
  onCleanup(stop);
  return { address: `tcp://127.0.0.1:${listenPort}`, start, stop };
}

/** A STRICT server on `source`, and a client sending to it continuously; the server's SVID seen per answer. */
async function serveUnderLoad(source: IdentitySource) {
  const server = createMtlsServer({ identity: source }, (_req, res) => res.end('ok'));
  const { port } = await listen(server);
  const client = ca.identity('/ns/demo/sa/app-ui');
  const served: string[] = [];
  const dispatcher = createMtlsDispatcher({
    identity: client,
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    connections: 2,
    onPeer: (peer) => served.push(peer.certificate?.serialNumber ?? ''),
  });
  onCleanup(() => dispatcher.destroy());
  const request = async (n: number) => {
    const res = await undiciFetch(`http://127.0.0.1:${port}/`, {
      dispatcher,
      headers: n % 3 === 0 ? { connection: 'close' } : {},
    });
    const body = await res.text();
    return res.status === 200 && body === 'ok' ? undefined : `${res.status} ${body}`;
  };
  return {
    port,
    served,
    load: (): Load => startLoad(2, request),
    once: () => request(0),
  };
}

const serialOf = (source: IdentitySource) => source.current().svid.leaf.serialNumber;
const noIdentity = (source: IdentitySource) => {
  try {
    source.current();
    return false;
  } catch (err) {
    return isSidecarlessError(err, 'ERR_NO_IDENTITY');
  }
};
const timed = async <T>(fn: () => Promise<T>) => {
  const started = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - started) };
};

describe('Workload API faults while serving', () => {
  it('stream end, malformed messages and an agent restart keep the last good identity; then it recovers', async () => {
    const fake = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/boards'], transport: 'tcp' });
    onCleanup(() => fake.close());
    const proxy = await restartableProxy(fake.address);
    const source: ObservedIdentitySource = workloadApiIdentity({ address: proxy.address, retry: RETRY });
    onCleanup(() => source.close());
    const events = record(source);
    await source.ready({ timeout: 5_000 });
    const { served, load } = await serveUnderLoad(source);
    const running = load();
    const first = serialOf(source);

    // 1. The agent ends the stream: nothing changes, the source calls again.
    const callsBefore = fake.calls().FetchX509SVID;
    fake.endStream();
    expect(
      await eventually(
        () => fake.calls().FetchX509SVID > callsBefore && fake.openStreams() === 1,
        RECOVERY_BOUND_MS,
      ),
    ).toBe(true);
    expect(serialOf(source)).toBe(first);

    // 2. Every malformed message the fake knows: each discarded whole, the identity unchanged.
    const kinds = Object.entries(malformedResponseKinds)
      .filter(([, k]) => k.stream !== 'FetchX509Bundles')
      .map(([kind]) => kind as keyof typeof malformedResponseKinds);
    const errorsBefore = events.errors.length;
    for (const kind of kinds) {
      expect(fake.sendMalformed(kind), kind).toBe(1);
      expect(
        await eventually(() => events.errors.length > errorsBefore + kinds.indexOf(kind), 2_000, 5),
        kind,
      ).toBe(true);
      expect(serialOf(source), kind).toBe(first);
    }
    // Recovery: the next good message is taken.
    const [second] = fake.rotate();
    expect(await eventually(() => serialOf(source) === second?.leaf.serialNumber, RECOVERY_BOUND_MS)).toBe(
      true,
    );

    // 3. The agent restarts: its socket goes away, then comes back at the same address.
    await proxy.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(serialOf(source)).toBe(second?.leaf.serialNumber); // kept while the agent is down
    await proxy.start();
    const restart = await timed(() => eventually(() => fake.openStreams() === 1, RECOVERY_BOUND_MS));
    expect(restart.value).toBe(true);
    const [third] = fake.rotate();
    expect(await eventually(() => serialOf(source) === third?.leaf.serialNumber, RECOVERY_BOUND_MS)).toBe(
      true,
    );
    // The server presented the rotated SVIDs to new connections.
    expect(await eventually(() => served.includes(third?.leaf.serialNumber ?? ''), RECOVERY_BOUND_MS)).toBe(
      true,
    );

    const result = await running.stop();
    figures.workloadApi = {
      requests: result.answered,
      failures: result.failures.length,
      malformedKinds: kinds.length,
      discarded: events.errors.filter(
        (e) => e.code === 'ERR_WORKLOAD_API_RESPONSE_INVALID' || e.code === 'ERR_NO_IDENTITY',
      ).length,
      reconnectAfterRestartMs: restart.ms,
      retries: events.retries.length,
    };
    expect(result.failures).toEqual([]);
    expect(result.answered).toBeGreaterThan(50);
    expect(events.withdrawn).toEqual([]);
  });

  it('PERMISSION_DENIED redacts the identity (mTLS refused), and serving resumes once the agent allows it again', async () => {
    const fake = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/boards'] });
    onCleanup(() => fake.close());
    const source = workloadApiIdentity({ address: fake.address, retry: RETRY });
    onCleanup(() => source.close());
    const events = record(source);
    await source.ready({ timeout: 5_000 });
    const server = await serveUnderLoad(source);
    expect(await server.once()).toBeUndefined(); // control

    fake.deny();
    expect(await eventually(() => noIdentity(source), RECOVERY_BOUND_MS)).toBe(true);
    expect(events.withdrawn.length).toBe(1);
    await expect(server.once()).rejects.toThrow(); // the server fails closed
    fake.serve();
    const recovery = await timed(() => eventually(() => !noIdentity(source), RECOVERY_BOUND_MS));
    expect(recovery.value).toBe(true);
    expect(await server.once()).toBeUndefined();
    figures.permissionDenied = { withdrawn: events.withdrawn.length, recoveryMs: recovery.ms };
  });

  it('ready() is bounded: a slow first response is waited for, an absent agent is reported in time', async () => {
    const fake = await createFakeWorkloadApi({ ca, svids: ['/ns/demo/sa/boards'] });
    onCleanup(() => fake.close());
    fake.delayFirstResponse(300);
    const slow = workloadApiIdentity({ address: fake.address, retry: RETRY });
    onCleanup(() => slow.close());
    const tooShort = await timed(() =>
      slow.ready({ timeout: 100 }).then(
        () => 'resolved',
        (e) => e.code as string,
      ),
    );
    const waited = await timed(() => slow.ready({ timeout: 5_000 }).then((i) => i.svid.id.toString()));
    const absent = workloadApiIdentity({
      address: `unix://${join(tempDir(), 'no-agent.sock')}`,
      retry: RETRY,
    });
    onCleanup(() => absent.close());
    const missing = await timed(() =>
      absent.ready({ timeout: 300 }).then(
        () => 'resolved',
        (e) => e.code as string,
      ),
    );
    figures.ready = {
      slowTimeout100Ms: tooShort,
      slowFirstResponse300Ms: waited.ms,
      absentTimeout300Ms: missing,
    };

    expect(tooShort.value).toMatch(/^ERR_(TIMEOUT|WORKLOAD_API_UNAVAILABLE)$/);
    expect(tooShort.ms).toBeLessThan(100 + RECOVERY_BOUND_MS);
    expect(waited.value).toBe(BOARDS);
    expect(missing.value).toBe('ERR_WORKLOAD_API_UNAVAILABLE');
    expect(missing.ms).toBeGreaterThanOrEqual(290);
    expect(missing.ms).toBeLessThan(300 + RECOVERY_BOUND_MS);
  });
});

describe('file faults while serving', () => {
  it('half-written and swapped files keep the last good identity; the complete files are taken', async () => {
    const dir = tempDir();
    const paths = {
      certChain: join(dir, 'cert.pem'),
      key: join(dir, 'key.pem'),
      bundle: join(dir, 'bundle.pem'),
    };
    const write = (
      files: ReturnType<typeof svidFiles>,
      which: (keyof typeof files)[] = ['bundle', 'key', 'certChain'],
    ) => {
      for (const name of which) writeAtomic(paths[name], files[name]);
    };
    const firstSvid = ca.issue('/ns/demo/sa/boards');
    write(svidFiles(firstSvid, ca.bundle()));
    const source = fileIdentity({ ...paths, pollInterval: 25 });
    onCleanup(() => source.close());
    const events = record(source);
    await source.ready({ timeout: 5_000 });
    const server = await serveUnderLoad(source);
    const running = server.load();
    const updates = () => events.updates.length;

    // 1. A new certificate written before its key (the key file still the old one): not taken.
    const second = ca.issue('/ns/demo/sa/boards');
    const secondFiles = svidFiles(second, ca.bundle());
    write(secondFiles, ['certChain']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(serialOf(source)).toBe(firstSvid.leaf.serialNumber);
    write(secondFiles, ['key']); // recovery: the pair is complete
    expect(await eventually(() => serialOf(source) === second.leaf.serialNumber, RECOVERY_BOUND_MS)).toBe(
      true,
    );

    // 2. A certificate file caught half-written (no rename: the writer is mid-way).
    const third = ca.issue('/ns/demo/sa/boards');
    const thirdFiles = svidFiles(third, ca.bundle());
    writeAtomic(paths.key, thirdFiles.key);
    writeFileSync(paths.certChain, thirdFiles.certChain.slice(0, thirdFiles.certChain.length / 2));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(serialOf(source)).toBe(second.leaf.serialNumber);
    writeFileSync(paths.certChain, thirdFiles.certChain);
    expect(await eventually(() => serialOf(source) === third.leaf.serialNumber, RECOVERY_BOUND_MS)).toBe(
      true,
    );

    // 3. Key and certificate swapped into each other's files.
    writeAtomic(paths.key, thirdFiles.certChain);
    writeAtomic(paths.certChain, thirdFiles.key);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(serialOf(source)).toBe(third.leaf.serialNumber);
    const fourth = ca.issue('/ns/demo/sa/boards');
    write(svidFiles(fourth, ca.bundle()));
    expect(await eventually(() => serialOf(source) === fourth.leaf.serialNumber, RECOVERY_BOUND_MS)).toBe(
      true,
    );
    expect(await eventually(() => server.served.includes(fourth.leaf.serialNumber), RECOVERY_BOUND_MS)).toBe(
      true,
    );

    const result = await running.stop();
    figures.files = {
      requests: result.answered,
      failures: result.failures.length,
      updates: updates(),
      reportedErrors: events.errors.length,
    };
    expect(result.failures).toEqual([]);
    expect(result.answered).toBeGreaterThan(50);
    // Nothing partial became current: every published identity's key matches its certificate.
    for (const { svid } of events.updates) expect(svid.leaf.checkPrivateKey(svid.privateKey)).toBe(true);
    // Exactly the complete pairs were published: the first files, then the three new ones.
    expect(events.updates.map((u) => u.svid.leaf.serialNumber)).toEqual([
      firstSvid.leaf.serialNumber,
      second.leaf.serialNumber,
      third.leaf.serialNumber,
      fourth.leaf.serialNumber,
    ]);
  });

  it('ready() is bounded when the files are missing, and resolves once they appear', async () => {
    const dir = tempDir();
    const paths = {
      certChain: join(dir, 'cert.pem'),
      key: join(dir, 'key.pem'),
      bundle: join(dir, 'bundle.pem'),
    };
    const source = fileIdentity({ ...paths, pollInterval: 25 });
    onCleanup(() => source.close());
    const missing = await timed(() =>
      source.ready({ timeout: 300 }).then(
        () => 'resolved',
        (e) => e.code as string,
      ),
    );
    expect(missing.value).toBe('ERR_FILE_UNREADABLE');
    expect(missing.ms).toBeLessThan(300 + RECOVERY_BOUND_MS);
    const files = svidFiles(ca.issue('/ns/demo/sa/boards'), ca.bundle());
    for (const name of ['bundle', 'key', 'certChain'] as const) writeAtomic(paths[name], files[name]);
    // The source keeps watching: once it has read the files, ready() resolves.
    const appeared = await timed(() => eventually(() => !noIdentity(source), RECOVERY_BOUND_MS));
    expect(appeared.value).toBe(true);
    expect((await source.ready({ timeout: 1_000 })).svid.id.toString()).toBe(BOARDS);
    figures.filesReady = { missingTimeout300Ms: missing, appearedMs: appeared.ms };
  });
});
